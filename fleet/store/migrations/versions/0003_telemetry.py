"""telemetry: uplinks, decoded readings, device health, alerts, API tokens

Revision ID: 0003_telemetry
Revises: 0001
Create Date: 2026-11-23

A branch from 0001 (rollouts are another branch); the registry upgrades to all heads.
"""

import sqlalchemy as sa
from alembic import op

revision = "0003_telemetry"
down_revision = "0001"
branch_labels = None
depends_on = None

BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def _device_fk(primary_key=False):
    return sa.Column("device_id", sa.Integer, sa.ForeignKey("devices.id", ondelete="CASCADE"), nullable=False,
                     primary_key=primary_key)


def upgrade() -> None:
    op.create_table(
        "uplinks",
        sa.Column("id", BigId, primary_key=True),
        _device_fk(),
        sa.Column("dedup_key", sa.String(120), nullable=False),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("f_cnt", sa.BigInteger, nullable=False),
        sa.Column("f_port", sa.Integer, nullable=False),
        sa.Column("rssi", sa.Float, nullable=True),
        sa.Column("snr", sa.Float, nullable=True),
        sa.Column("dr", sa.Integer, nullable=True),
        sa.Column("frequency", sa.BigInteger, nullable=True),
        sa.Column("gateways", sa.Integer, nullable=False),
        sa.Column("source", sa.String(12), nullable=False),
        sa.Column("payload", sa.LargeBinary, nullable=False),
        sa.UniqueConstraint("dedup_key", name="uq_uplinks_dedup_key"),
    )
    op.create_index("ix_uplinks_device_at", "uplinks", ["device_id", "received_at"])

    op.create_table(
        "readings",
        sa.Column("id", BigId, primary_key=True),
        sa.Column("uplink_id", BigId, sa.ForeignKey("uplinks.id", ondelete="CASCADE"), nullable=False),
        _device_fk(),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("kind", sa.String(10), nullable=False),
        *[sa.Column(c, sa.Integer, nullable=True) for c in (
            "dist_mm", "fill_bp", "temp_cdeg", "batt_mv", "rh_permille", "pressure_pa", "co2_ppm", "pm2_5_ugm3",
            "pm10_ugm3")],
        *[sa.Column(c, sa.Boolean, nullable=True) for c in ("tilt", "pickup", "fire")],
        sa.Column("faults", sa.String(120), nullable=True),
    )
    op.create_index("ix_readings_device_at", "readings", ["device_id", "at"])
    op.create_index("ix_readings_uplink", "readings", ["uplink_id"])

    op.create_table(
        "device_health",
        _device_fk(primary_key=True),
        sa.Column("last_seen", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_f_cnt", sa.BigInteger, nullable=False),
        sa.Column("uplinks", sa.Integer, nullable=False),
        sa.Column("lost_uplinks", sa.Integer, nullable=False),
        sa.Column("interval_s", sa.Integer, nullable=True),
        sa.Column("rssi", sa.Float, nullable=True),
        sa.Column("snr", sa.Float, nullable=True),
        sa.Column("dr", sa.Integer, nullable=True),
        sa.Column("firmware_version", sa.String(40), nullable=True),
        sa.Column("reading_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("battery_mv", sa.Integer, nullable=True),
        sa.Column("fill_bp", sa.Integer, nullable=True),
        sa.Column("fill_rate_bp_h", sa.Integer, nullable=True),
        sa.Column("full_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("temp_cdeg", sa.Integer, nullable=True),
        sa.Column("tilt", sa.Boolean, nullable=True),
        sa.Column("fire", sa.Boolean, nullable=True),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_health_fill", "device_health", ["fill_bp"])
    op.create_index("ix_health_battery", "device_health", ["battery_mv"])

    op.create_table(
        "alerts",
        sa.Column("id", BigId, primary_key=True),
        _device_fk(),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("severity", sa.String(8), nullable=False),
        sa.Column("state", sa.String(10), nullable=False),
        sa.Column("message", sa.Text, nullable=False),
        sa.Column("value", sa.Float, nullable=True),
        sa.Column("opened_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("resolved_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("acked_by", sa.String(80), nullable=True),
        sa.Column("open_key", sa.String(40), nullable=True),
        sa.UniqueConstraint("open_key", name="uq_alerts_open_key"),
    )
    op.create_index("ix_alerts_state_device", "alerts", ["state", "device_id"])
    op.create_index("ix_alerts_device", "alerts", ["device_id"])

    op.create_table(
        "api_tokens",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("token_id", sa.String(16), nullable=False),
        sa.Column("token_hash", sa.String(64), nullable=False),
        sa.Column("kommune_kode", sa.String(4), nullable=True),
        sa.Column("role", sa.String(16), nullable=False),
        sa.Column("name", sa.String(80), nullable=False),
        sa.Column("created_by", sa.String(80), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_used_at", sa.DateTime(timezone=True), nullable=True),
        sa.UniqueConstraint("token_id", name="uq_api_tokens_token_id"),
    )


def downgrade() -> None:
    op.drop_table("api_tokens")
    op.drop_index("ix_alerts_device", table_name="alerts")
    op.drop_index("ix_alerts_state_device", table_name="alerts")
    op.drop_table("alerts")
    op.drop_index("ix_health_battery", table_name="device_health")
    op.drop_index("ix_health_fill", table_name="device_health")
    op.drop_table("device_health")
    op.drop_index("ix_readings_uplink", table_name="readings")
    op.drop_index("ix_readings_device_at", table_name="readings")
    op.drop_table("readings")
    op.drop_index("ix_uplinks_device_at", table_name="uplinks")
    op.drop_table("uplinks")
