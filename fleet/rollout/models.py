"""Tables of OTA check-ins and rollouts (migrations 0002_rollouts and 0004_checkin_auth), on the registry's
declarative Base."""

from datetime import datetime

from sqlalchemy import (JSON, BigInteger, DateTime, ForeignKey, Integer, LargeBinary, String, Text,
                        UniqueConstraint)
from sqlalchemy.orm import Mapped, mapped_column

from ..registry.models import Base, utcnow

# silent: in an open wave, not heard from within the rollout's wave timeout (reason: "was <state before>")
DEVICE_STATES = ("pending", "downloading", "installed", "confirmed", "failed", "rolled_back", "silent")
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
    seed: Mapped[str | None] = mapped_column(String(32))            # orders the devices (waves.order)
    wave_timeout_s: Mapped[int | None] = mapped_column(Integer)     # None: a wave waits for every device
    wave_opened_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))  # of the highest open wave
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
    seen_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))  # its last check-in as a member

    __table_args__ = (UniqueConstraint("rollout_id", "device", name="uq_rollout_devices"),)


class CheckinAuth(Base):
    """A device's check-in key (sealed: fleet/registry/sealing.py, context "<device>/checkin_key") and what its
    check-ins did. A row exists for every device given a key, and for a keyless device the server already
    knew when it first checked in without one (fleet serve --accept-keyless)."""

    __tablename__ = "ota_checkin_auth"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    device: Mapped[str] = mapped_column(String(32))
    key_sealed: Mapped[bytes | None] = mapped_column(LargeBinary)             # None: keyless; never shown
    key_created_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    last_seq: Mapped[int] = mapped_column(BigInteger, default=0)               # the highest accepted "seq"
    accepted: Mapped[int] = mapped_column(Integer, default=0)                  # with a valid MAC
    unauthenticated: Mapped[int] = mapped_column(Integer, default=0)           # keyless, accepted
    rejected: Mapped[int] = mapped_column(Integer, default=0)
    rejected_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    rejected_reason: Mapped[str | None] = mapped_column(String(20))

    __table_args__ = (UniqueConstraint("device", name="uq_ota_checkin_auth_device"),)

    def __repr__(self) -> str:  # never the sealed key
        return f"<CheckinAuth {self.device} key={'yes' if self.key_sealed else 'no'}>"
