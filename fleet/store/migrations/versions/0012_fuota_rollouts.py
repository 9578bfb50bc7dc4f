"""fuota_rollouts: LoRaWAN (FUOTA) rollouts and their devices' FUOTA states, moved by ingest

Revision ID: 0012_fuota_rollouts
Revises: 0011_settings_commands
Create Date: 2026-12-07

New tables only; nothing else changes.
"""

import sqlalchemy as sa
from alembic import op

revision = "0012_fuota_rollouts"
down_revision = "0011_settings_commands"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "fuota_rollouts",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("kommune_kode", sa.String(4), nullable=False),
        sa.Column("board", sa.String(40), nullable=False),
        sa.Column("version", sa.String(40), nullable=False),
        sa.Column("from_version", sa.String(40), nullable=True),
        sa.Column("waves", sa.JSON, nullable=False),
        sa.Column("halt_at", sa.Integer, nullable=False),
        sa.Column("state", sa.String(10), nullable=False),
        sa.Column("open_waves", sa.Integer, nullable=False),
        sa.Column("forgiven", sa.Integer, nullable=False),
        sa.Column("seed", sa.String(32), nullable=False),
        sa.Column("wave_timeout_s", sa.Integer, nullable=True),
        sa.Column("wave_opened_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("payload_sha256", sa.String(64), nullable=False),
        sa.Column("payload_bytes", sa.Integer, nullable=False),
        sa.Column("dr", sa.SmallInteger, nullable=False),
        sa.Column("loss", sa.Float, nullable=False),
        sa.Column("freq_hz", sa.Integer, nullable=False),
        sa.Column("folder", sa.Text, nullable=False),
        sa.Column("sessions", sa.JSON, nullable=False),
        sa.Column("operator", sa.String(80), nullable=False),
        sa.Column("note", sa.Text, nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_fuota_rollouts_kommune_state", "fuota_rollouts", ["kommune_kode", "state"])
    op.create_table(
        "fuota_rollout_devices",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("rollout_id", sa.Integer, sa.ForeignKey("fuota_rollouts.id", ondelete="CASCADE"), nullable=False),
        sa.Column("dev_eui", sa.String(16), nullable=False),
        sa.Column("position", sa.Integer, nullable=False),
        sa.Column("wave", sa.Integer, nullable=False),
        sa.Column("state", sa.String(14), nullable=False),
        sa.Column("reason", sa.String(200), nullable=True),
        sa.Column("received", sa.Integer, nullable=False),
        sa.Column("missing", sa.Integer, nullable=True),
        sa.Column("session", sa.Integer, nullable=True),
        sa.Column("seen_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.UniqueConstraint("rollout_id", "dev_eui", name="uq_fuota_rollout_devices_dev"),
    )
    op.create_index("ix_fuota_rollout_devices_dev_eui", "fuota_rollout_devices", ["dev_eui"])


def downgrade() -> None:
    op.drop_index("ix_fuota_rollout_devices_dev_eui", "fuota_rollout_devices")
    op.drop_table("fuota_rollout_devices")
    op.drop_index("ix_fuota_rollouts_kommune_state", "fuota_rollouts")
    op.drop_table("fuota_rollouts")
