"""Every table of the one database: the registry's (devices, audit log, API tokens), telemetry's (uplinks,
readings, health, alerts) and the OTA store's (check-ins, rollouts, check-in keys). Schema changes go
through a new Alembic migration in migrations/versions/ (one linear history).
"""

from datetime import datetime, timezone

from sqlalchemy import (JSON, BigInteger, Boolean, CheckConstraint, DateTime, Float, ForeignKey, Index, Integer,
                        LargeBinary, PrimaryKeyConstraint, SmallInteger, String, Text, UniqueConstraint)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

KINDS = ("waste", "env")
STATES = ("enrolling", "enrolled", "active", "silent", "retired")


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


class Base(DeclarativeBase):
    pass


class Device(Base):
    __tablename__ = "devices"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    dev_eui: Mapped[str] = mapped_column(String(16))                     # 16 upper-case hex digits
    join_eui: Mapped[str] = mapped_column(String(16))
    app_key_sealed: Mapped[bytes] = mapped_column(LargeBinary)           # see sealing.py; never shown
    name: Mapped[str] = mapped_column(String(80))
    kommune_kode: Mapped[str] = mapped_column(String(4))
    kommune_navn: Mapped[str] = mapped_column(String(40))
    site: Mapped[str] = mapped_column(String(200))
    latitude: Mapped[float | None] = mapped_column(Float)
    longitude: Mapped[float | None] = mapped_column(Float)
    board: Mapped[str] = mapped_column(String(40))
    kind: Mapped[str] = mapped_column(String(10))                        # waste | env
    sensors: Mapped[list] = mapped_column(JSON, default=list)
    firmware_version: Mapped[str | None] = mapped_column(String(40))
    state: Mapped[str] = mapped_column(String(12))
    last_seen: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow, onupdate=utcnow)

    __table_args__ = (
        UniqueConstraint("dev_eui", name="uq_devices_dev_eui"),     # what makes a second enrollment fail
        CheckConstraint("kind IN ('waste', 'env')", name="ck_devices_kind"),
        Index("ix_devices_kommune_id", "kommune_kode", "id"),       # one kommune's devices, in order
    )

    def __repr__(self) -> str:  # no key material, sealed or not
        return (f"<Device {self.dev_eui} kommune={self.kommune_kode} site={self.site!r} kind={self.kind} "
                f"state={self.state}>")


class AuditEntry(Base):
    """One change: who did what to which device, when. Written in the change's own transaction."""

    __tablename__ = "audit_log"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    operator: Mapped[str] = mapped_column(String(80))
    action: Mapped[str] = mapped_column(String(40))                      # device.enroll, device.update, ...
    kommune_kode: Mapped[str | None] = mapped_column(String(4))
    dev_eui: Mapped[str | None] = mapped_column(String(16))
    changes: Mapped[dict] = mapped_column(JSON, default=dict)            # field -> [old, new]; secrets masked
    note: Mapped[str | None] = mapped_column(Text)

    __table_args__ = (Index("ix_audit_dev_eui", "dev_eui"), Index("ix_audit_kommune_at", "kommune_kode", "at"))


class WifiNetwork(Base):
    """A WiFi network of one kommune (site '') or of one site in it (migration 0008_wifi_networks). The
    password is sealed (fleet/registry/sealing.py, context "wifi/<kommune>/<site>/<ssid>"), never shown."""

    __tablename__ = "wifi_networks"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    kommune_kode: Mapped[str] = mapped_column(String(4))
    site: Mapped[str] = mapped_column(String(200))                       # '' = every site of the kommune
    ssid: Mapped[str] = mapped_column(String(64))                        # 1 to 32 bytes of UTF-8
    password_sealed: Mapped[bytes] = mapped_column(LargeBinary)          # an open network seals b''
    created_by: Mapped[str] = mapped_column(String(80))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)

    __table_args__ = (UniqueConstraint("kommune_kode", "site", "ssid", name="uq_wifi_networks_place_ssid"),)

    def __repr__(self) -> str:  # never the password, sealed or not
        return f"<WifiNetwork {self.ssid!r} kommune={self.kommune_kode} site={self.site!r}>"


# ---- telemetry (migrations 0003_telemetry, 0005_readings_by_uplink): uplinks, decoded readings, device health,
# alerts, API tokens ----

BigId = BigInteger().with_variant(Integer, "sqlite")  # SQLite's rowid alias must be INTEGER


class UplinkRow(Base):
    """One uplink as stored (a duplicate delivery has the same dedup_key and is not stored again)."""

    __tablename__ = "uplinks"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    device_id: Mapped[int] = mapped_column(ForeignKey("devices.id", ondelete="CASCADE"))
    dedup_key: Mapped[str] = mapped_column(String(120))        # the event id, else DevEUI/FCnt/time
    received_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    f_cnt: Mapped[int] = mapped_column(BigInteger)
    f_port: Mapped[int] = mapped_column(Integer)
    rssi: Mapped[float | None] = mapped_column(Float)            # best gateway
    snr: Mapped[float | None] = mapped_column(Float)
    dr: Mapped[int | None] = mapped_column(Integer)
    frequency: Mapped[int | None] = mapped_column(BigInteger)
    gateways: Mapped[int] = mapped_column(Integer, default=0)
    source: Mapped[str] = mapped_column(String(12))              # chirpstack | tts | os2iot
    payload: Mapped[bytes] = mapped_column(LargeBinary)

    __table_args__ = (UniqueConstraint("dedup_key", name="uq_uplinks_dedup_key"),
                      Index("ix_uplinks_device_at", "device_id", "received_at"))


class ReadingRow(Base):
    """One decoded reading (a frame carries several); units in the names as in docs/formats/payload.md.

    The time-series table (migration 0005_readings_by_uplink): written only by TelemetryStore.ingest,
    never updated, keyed by its uplink and its place in the frame, so a reading is stored once. It has no
    foreign keys: the uplink, its device and its readings are checked and written in ONE ingest
    transaction, and checking two keys per row was half of what the server did at ingest. Deleting an
    uplink deletes its readings (the trigger tr_uplinks_delete_readings, made by the migration; a
    migration that rebuilds `uplinks` on SQLite must make it again), and deleting a device deletes its
    uplinks (their foreign key cascades), so a removed device leaves no readings behind.
    """

    __tablename__ = "readings"

    uplink_id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=False)  # uplinks.id
    seq: Mapped[int] = mapped_column(SmallInteger, primary_key=True, autoincrement=False)  # 0 = oldest
    device_id: Mapped[int] = mapped_column(Integer)               # the uplink's device (devices.id)
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    kind: Mapped[str] = mapped_column(String(10))
    dist_mm: Mapped[int | None] = mapped_column(Integer)
    fill_bp: Mapped[int | None] = mapped_column(Integer)
    temp_cdeg: Mapped[int | None] = mapped_column(Integer)
    batt_mv: Mapped[int | None] = mapped_column(Integer)
    rh_permille: Mapped[int | None] = mapped_column(Integer)
    pressure_pa: Mapped[int | None] = mapped_column(Integer)
    co2_ppm: Mapped[int | None] = mapped_column(Integer)
    pm2_5_ugm3: Mapped[int | None] = mapped_column(Integer)
    pm10_ugm3: Mapped[int | None] = mapped_column(Integer)
    tilt: Mapped[bool | None] = mapped_column(Boolean)
    pickup: Mapped[bool | None] = mapped_column(Boolean)
    fire: Mapped[bool | None] = mapped_column(Boolean)
    faults: Mapped[str | None] = mapped_column(String(120))      # channel names, comma-separated

    __table_args__ = (PrimaryKeyConstraint("uplink_id", "seq", name="pk_readings"),
                      Index("ix_readings_device_at", "device_id", "at"),
                      {"sqlite_with_rowid": False})              # SQLite: one b-tree, the key's, not two


class DeviceHealth(Base):
    """What the newest uplinks say about one device; one row per device that was ever heard."""

    __tablename__ = "device_health"

    device_id: Mapped[int] = mapped_column(ForeignKey("devices.id", ondelete="CASCADE"), primary_key=True)
    last_seen: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    last_f_cnt: Mapped[int] = mapped_column(BigInteger)
    uplinks: Mapped[int] = mapped_column(Integer, default=0)
    lost_uplinks: Mapped[int] = mapped_column(Integer, default=0)   # frame-counter gaps
    interval_s: Mapped[int | None] = mapped_column(Integer)         # expected time between uplinks
    rssi: Mapped[float | None] = mapped_column(Float)
    snr: Mapped[float | None] = mapped_column(Float)
    dr: Mapped[int | None] = mapped_column(Integer)
    firmware_version: Mapped[str | None] = mapped_column(String(40))
    reading_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))  # the newest reading
    battery_mv: Mapped[int | None] = mapped_column(Integer)
    fill_bp: Mapped[int | None] = mapped_column(Integer)
    fill_rate_bp_h: Mapped[int | None] = mapped_column(Integer)
    full_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))     # forecast
    temp_cdeg: Mapped[int | None] = mapped_column(Integer)
    tilt: Mapped[bool | None] = mapped_column(Boolean)
    fire: Mapped[bool | None] = mapped_column(Boolean)
    net_status: Mapped[str | None] = mapped_column(String(24))      # the node's failed WiFi join, if reported
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)

    __table_args__ = (Index("ix_health_fill", "fill_bp"), Index("ix_health_battery", "battery_mv"))


ALERT_KINDS = ("full", "fire", "tilt", "silent", "battery", "lost_uplinks", "wrong_kommune")
ALERT_STATES = ("open", "acked", "resolved")


class AlertRow(Base):
    """An alert on one device. At most one open (or acked) alert per device and kind: `open_key` holds
    "device_id:kind" while it is open and NULL once resolved (NULLs do not collide in a unique index)."""

    __tablename__ = "alerts"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    device_id: Mapped[int] = mapped_column(ForeignKey("devices.id", ondelete="CASCADE"))
    kind: Mapped[str] = mapped_column(String(16))
    severity: Mapped[str] = mapped_column(String(8))             # critical | warning
    state: Mapped[str] = mapped_column(String(10))
    message: Mapped[str] = mapped_column(Text)
    value: Mapped[float | None] = mapped_column(Float)
    opened_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    last_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    resolved_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    acked_by: Mapped[str | None] = mapped_column(String(80))
    open_key: Mapped[str | None] = mapped_column(String(40))

    __table_args__ = (UniqueConstraint("open_key", name="uq_alerts_open_key"),
                      Index("ix_alerts_state_device", "state", "device_id"),
                      Index("ix_alerts_device", "device_id"))


class IngestWorker(Base):
    """One `fleet ingest mqtt` process as it last reported itself (a heartbeat every few seconds): whether
    it keeps up. `pending` messages are received from the broker but not yet committed, the oldest of them
    waiting `oldest_pending_s`; `broker_held` is what the broker says it holds for all its clients
    ($SYS/broker/store/messages/count), when it says so. `fleet status` reads these rows: a heartbeat that
    stopped coming is a worker that is down (or hung)."""

    __tablename__ = "ingest_workers"

    client_id: Mapped[str] = mapped_column(String(128), primary_key=True)
    host: Mapped[str] = mapped_column(String(255))
    pid: Mapped[int] = mapped_column(Integer)
    broker: Mapped[str] = mapped_column(String(255))     # mqtt://host:port, never credentials
    topics: Mapped[str] = mapped_column(Text)
    state: Mapped[str] = mapped_column(String(10))       # running | stopped
    connected: Mapped[bool] = mapped_column(Boolean)
    started_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    heartbeat_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    heartbeat_s: Mapped[float] = mapped_column(Float)    # the promised interval
    received: Mapped[int] = mapped_column(BigInteger)
    stored: Mapped[int] = mapped_column(BigInteger)
    duplicates: Mapped[int] = mapped_column(BigInteger)
    malformed: Mapped[int] = mapped_column(BigInteger)
    ignored: Mapped[int] = mapped_column(BigInteger)
    pending: Mapped[int] = mapped_column(Integer)
    oldest_pending_s: Mapped[float | None] = mapped_column(Float)
    broker_held: Mapped[int | None] = mapped_column(BigInteger)
    behind: Mapped[bool] = mapped_column(Boolean)
    behind_reason: Mapped[str | None] = mapped_column(Text)


class ApiToken(Base):
    """A bearer token for `fleet serve`'s API: one kommune's (or cross-kommune). Only a SHA-256 of the
    token is stored; `token_id` is its public part, for listing and revoking."""

    __tablename__ = "api_tokens"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    token_id: Mapped[str] = mapped_column(String(16))
    token_hash: Mapped[str] = mapped_column(String(64))
    kommune_kode: Mapped[str | None] = mapped_column(String(4))
    role: Mapped[str] = mapped_column(String(16))
    name: Mapped[str] = mapped_column(String(80))
    created_by: Mapped[str] = mapped_column(String(80))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    revoked_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    last_used_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))

    __table_args__ = (UniqueConstraint("token_id", name="uq_api_tokens_token_id"),)

    def __repr__(self) -> str:  # never the hash
        return f"<ApiToken {self.token_id} kommune={self.kommune_kode} role={self.role}>"


# ---- OTA check-ins and rollouts (migrations 0002_rollouts, 0004_checkin_auth) ----

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
    # its last diagnostics (docs/formats/diagnostics.md), as counted on the device since its power-on
    diag_cause: Mapped[str | None] = mapped_column(String(12))
    diag_boots: Mapped[int | None] = mapped_column(Integer)
    diag_watchdog: Mapped[int | None] = mapped_column(Integer)
    diag_heap_min: Mapped[int | None] = mapped_column(Integer)
    diag_exception: Mapped[str | None] = mapped_column(String(8))
    diag_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))

    __table_args__ = (UniqueConstraint("device", name="uq_ota_devices_device"),)


class ReleaseDiagnostics(Base):
    """A device's diagnostics while it ran one release, from one source ("checkin" or "uplink", the record
    on FPort 221): the resets and watchdog resets reported on that release (differences of the device's
    counters), its lowest free heap and its last exception hash. fleet.rollout.diagnostics writes it;
    `fleet status` sums it per release (a device's check-ins when it has any, else its uplinks)."""

    __tablename__ = "release_diagnostics"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    device: Mapped[str] = mapped_column(String(32))
    version: Mapped[str] = mapped_column(String(40))
    source: Mapped[str] = mapped_column(String(8), default="checkin")
    kommune_kode: Mapped[str] = mapped_column(String(4))
    board: Mapped[str] = mapped_column(String(40))
    checkins: Mapped[int] = mapped_column(Integer, default=0)         # reports (check-ins or records)
    resets: Mapped[int] = mapped_column(Integer, default=0)           # boots that were not deep-sleep wakes
    watchdog_resets: Mapped[int] = mapped_column(Integer, default=0)
    heap_min: Mapped[int | None] = mapped_column(Integer)
    exception: Mapped[str | None] = mapped_column(String(8))
    last_cause: Mapped[str | None] = mapped_column(String(12))
    last_boots: Mapped[int | None] = mapped_column(Integer)            # the counters of its newest report
    last_watchdog: Mapped[int | None] = mapped_column(Integer)
    first_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    last_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)

    __table_args__ = (UniqueConstraint("device", "version", "source", name="uq_release_diagnostics"),)


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
    soak: Mapped[int | None] = mapped_column(Integer)           # check-ins a confirmed member owes (None: 0)
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
    # what its check-ins' diagnostics counted on its current release: the old one until it confirms the
    # rollout's, then the new one (fleet.rollout.diagnostics)
    diag_checkins: Mapped[int | None] = mapped_column(Integer)
    resets: Mapped[int | None] = mapped_column(Integer)
    watchdog_resets: Mapped[int | None] = mapped_column(Integer)

    __table_args__ = (UniqueConstraint("rollout_id", "device", name="uq_rollout_devices"),
                      # a check-in's step and wave timeout are index seeks (migration 0009)
                      Index("ix_rollout_devices_state_wave", "rollout_id", "state", "wave", "seen_at"),
                      Index("ix_rollout_devices_position", "rollout_id", "position"))


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


# ---- settings by downlink (migration 0011_settings_commands): fleet/settings/store.py ----

class SettingsCommand(Base):
    """One `fleet settings set` for one device: the values, the seq its downlink carries (per device, from 1)
    and what the node answered in its acknowledgement (docs/formats/settings.md)."""

    __tablename__ = "settings_commands"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    dev_eui: Mapped[str] = mapped_column(String(16))
    kommune_kode: Mapped[str] = mapped_column(String(4))
    seq: Mapped[int] = mapped_column(Integer)
    settings: Mapped[dict] = mapped_column(JSON)                            # key -> value, as sent
    state: Mapped[str] = mapped_column(String(10))                          # queued | applied | refused
    result: Mapped[str | None] = mapped_column(String(16))                  # the node's RESULT name
    operator: Mapped[str] = mapped_column(String(80))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    acked_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))

    __table_args__ = (UniqueConstraint("dev_eui", "seq", name="uq_settings_commands_seq"),)


# ---- LoRaWAN (FUOTA) rollouts (migration 0012_fuota_rollouts): fleet/fuota/store.py ----


class FuotaRollout(Base):
    """A FUOTA deployment run as a rollout (`fleet rollout start --via lorawan`, fleet.fuota.store): its waves,
    halt threshold and state, what its sessions are planned from (never a key: McKey is not kept), and one
    entry per multicast session prepared (`sessions`: [{"n", "wave", "devices", "session_gps", "timeout",
    "nb_frag", "fragments", "mc_addr", "dir"}])."""

    __tablename__ = "fuota_rollouts"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    kommune_kode: Mapped[str] = mapped_column(String(4))
    board: Mapped[str] = mapped_column(String(40))
    version: Mapped[str] = mapped_column(String(40))
    counter: Mapped[int | None] = mapped_column(BigInteger)                 # its signed manifest's counter (0013)
    from_version: Mapped[str | None] = mapped_column(String(40))
    waves: Mapped[list] = mapped_column(JSON)                               # cumulative shares, per mille
    halt_at: Mapped[int] = mapped_column(Integer)                           # per mille
    state: Mapped[str] = mapped_column(String(10))                          # running|paused|halted|done|aborted
    open_waves: Mapped[int] = mapped_column(Integer)
    forgiven: Mapped[int] = mapped_column(Integer, default=0)
    seed: Mapped[str] = mapped_column(String(32))
    wave_timeout_s: Mapped[int | None] = mapped_column(Integer)
    wave_opened_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    payload_sha256: Mapped[str] = mapped_column(String(64))
    payload_bytes: Mapped[int] = mapped_column(Integer)
    dr: Mapped[int] = mapped_column(SmallInteger)
    loss: Mapped[float] = mapped_column(Float)
    freq_hz: Mapped[int] = mapped_column(Integer)
    folder: Mapped[str] = mapped_column(Text)                               # the deployment folder, as given
    sessions: Mapped[list] = mapped_column(JSON, default=list)
    operator: Mapped[str] = mapped_column(String(80))
    note: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)

    __table_args__ = (Index("ix_fuota_rollouts_kommune_state", "kommune_kode", "state"),)


class FuotaRolloutDevice(Base):
    """One device of a FUOTA rollout: its wave, session and FUOTA state (fleet.fuota.rollout.STATES), with
    what its last FragSessionStatusAns counted."""

    __tablename__ = "fuota_rollout_devices"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    rollout_id: Mapped[int] = mapped_column(ForeignKey("fuota_rollouts.id", ondelete="CASCADE"))
    dev_eui: Mapped[str] = mapped_column(String(16))                        # 16 lower-case hex digits
    position: Mapped[int] = mapped_column(Integer)
    wave: Mapped[int] = mapped_column(Integer)
    state: Mapped[str] = mapped_column(String(14))
    reason: Mapped[str | None] = mapped_column(String(200))
    received: Mapped[int] = mapped_column(Integer, default=0)
    missing: Mapped[int | None] = mapped_column(Integer)
    session: Mapped[int | None] = mapped_column(Integer)
    seen_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)

    __table_args__ = (UniqueConstraint("rollout_id", "dev_eui", name="uq_fuota_rollout_devices_dev"),
                      Index("ix_fuota_rollout_devices_dev_eui", "dev_eui"))
