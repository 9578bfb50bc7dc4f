"""OTA check-ins and staged rollouts

Revision ID: 0002_rollouts
Revises: 0001
Create Date: 2026-11-22
"""

import sqlalchemy as sa
from alembic import op

revision = "0002_rollouts"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "ota_devices",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("device", sa.String(32), nullable=False),
        sa.Column("kommune_kode", sa.String(4), nullable=False),
        sa.Column("board", sa.String(40), nullable=False),
        sa.Column("version", sa.String(40), nullable=True),
        sa.Column("counter", sa.BigInteger, nullable=True),
        sa.Column("release", sa.String(64), nullable=True),
        sa.Column("slot", sa.String(4), nullable=True),
        sa.Column("state", sa.String(12), nullable=False),
        sa.Column("reason", sa.String(40), nullable=True),
        sa.Column("detail", sa.String(200), nullable=True),
        sa.Column("target", sa.String(64), nullable=True),
        sa.Column("checkins", sa.Integer, nullable=False),
        sa.Column("first_seen", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_seen", sa.DateTime(timezone=True), nullable=False),
        sa.UniqueConstraint("device", name="uq_ota_devices_device"),
    )
    op.create_index("ix_ota_devices_kommune_board", "ota_devices", ["kommune_kode", "board"])
    op.create_table(
        "rollouts",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("kommune_kode", sa.String(4), nullable=False),
        sa.Column("boards", sa.JSON, nullable=False),
        sa.Column("version", sa.String(40), nullable=False),
        sa.Column("counter", sa.BigInteger, nullable=False),
        sa.Column("manifest", sa.String(64), nullable=False),
        sa.Column("waves", sa.JSON, nullable=False),
        sa.Column("halt_at", sa.Integer, nullable=False),
        sa.Column("state", sa.String(12), nullable=False),
        sa.Column("wave", sa.Integer, nullable=False),
        sa.Column("forgiven", sa.Integer, nullable=False),
        sa.Column("note", sa.Text, nullable=True),
        sa.Column("operator", sa.String(80), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint("state IN ('running', 'paused', 'halted', 'aborted', 'completed')",
                           name="ck_rollouts_state"),
    )
    op.create_index("ix_rollouts_kommune", "rollouts", ["kommune_kode", "id"])
    op.create_table(
        "rollout_devices",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("rollout_id", sa.Integer, sa.ForeignKey("rollouts.id", ondelete="CASCADE"), nullable=False),
        sa.Column("device", sa.String(32), nullable=False),
        sa.Column("position", sa.Integer, nullable=False),
        sa.Column("wave", sa.Integer, nullable=False),
        sa.Column("state", sa.String(12), nullable=False),
        sa.Column("reason", sa.String(40), nullable=True),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.UniqueConstraint("rollout_id", "device", name="uq_rollout_devices"),
        sa.CheckConstraint("state IN ('pending', 'downloading', 'installed', 'confirmed', 'failed', "
                           "'rolled_back')", name="ck_rollout_devices_state"),
    )


def downgrade() -> None:
    op.drop_table("rollout_devices")
    op.drop_index("ix_rollouts_kommune", table_name="rollouts")
    op.drop_table("rollouts")
    op.drop_index("ix_ota_devices_kommune_board", table_name="ota_devices")
    op.drop_table("ota_devices")
