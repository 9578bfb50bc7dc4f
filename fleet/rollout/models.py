"""Tables of OTA check-ins and rollouts (migration 0002_rollouts), on the registry's declarative Base."""

from datetime import datetime

from sqlalchemy import JSON, BigInteger, DateTime, ForeignKey, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from ..registry.models import Base, utcnow

DEVICE_STATES = ("pending", "downloading", "installed", "confirmed", "failed", "rolled_back")
ROLLOUT_STATES = ("running", "paused", "halted", "aborted", "completed")


class OtaDevice(Base):
    """What a device said in its last check-in."""

    __tablename__ = "ota_devices"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    device: Mapped[str] = mapped_column(String(32))            # the DevEUI in the device's ota/config.json
    kommune_kode: Mapped[str] = mapped_column(String(4))
    board: Mapped[str] = mapped_column(String(40))
    version: Mapped[str | None] = mapped_column(String(40))    # the release it runs
    counter: Mapped[int | None] = mapped_column(BigInteger)
    release: Mapped[str | None] = mapped_column(String(64))    # SHA-256 (hex) of the manifest it runs
    slot: Mapped[str | None] = mapped_column(String(4))
    state: Mapped[str] = mapped_column(String(12))             # the client's last outcome (client.STATES)
    reason: Mapped[str | None] = mapped_column(String(40))
    detail: Mapped[str | None] = mapped_column(String(200))
    target: Mapped[str | None] = mapped_column(String(64))     # the manifest it last tried
    checkins: Mapped[int] = mapped_column(Integer, default=0)
    first_seen: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    last_seen: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)

    __table_args__ = (UniqueConstraint("device", name="uq_ota_devices_device"),)


class Rollout(Base):
    __tablename__ = "rollouts"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    kommune_kode: Mapped[str] = mapped_column(String(4))
    boards: Mapped[list] = mapped_column(JSON)
    version: Mapped[str] = mapped_column(String(40))
    counter: Mapped[int] = mapped_column(BigInteger)
    manifest: Mapped[str] = mapped_column(String(64))          # SHA-256 hex: REPO/manifests/<manifest>.json
    waves: Mapped[list] = mapped_column(JSON)                  # cumulative shares in per mille, last 1000
    halt_at: Mapped[int] = mapped_column(Integer)              # per mille of failures that halts it
    state: Mapped[str] = mapped_column(String(12))
    wave: Mapped[int] = mapped_column(Integer, default=0)      # the highest open wave (0-based)
    forgiven: Mapped[int] = mapped_column(Integer, default=0)  # failures before the last resume
    note: Mapped[str | None] = mapped_column(Text)
    operator: Mapped[str] = mapped_column(String(80))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class RolloutDevice(Base):
    __tablename__ = "rollout_devices"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    rollout_id: Mapped[int] = mapped_column(ForeignKey("rollouts.id", ondelete="CASCADE"))
    device: Mapped[str] = mapped_column(String(32))
    position: Mapped[int] = mapped_column(Integer)
    wave: Mapped[int] = mapped_column(Integer)
    state: Mapped[str] = mapped_column(String(12))
    reason: Mapped[str | None] = mapped_column(String(40))
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)

    __table_args__ = (UniqueConstraint("rollout_id", "device", name="uq_rollout_devices"),)
