"""rollouts: check-in keys, wave timeouts ("silent" devices), per-rollout device order

Revision ID: 0004_checkin_auth
Revises: 0002_rollouts
Create Date: 2026-11-24

Continues the rollouts branch (0001 -> 0002_rollouts -> here); telemetry is another branch from 0001, and
the registry upgrades to all heads.
"""

import sqlalchemy as sa
from alembic import op

revision = "0004_checkin_auth"
down_revision = "0002_rollouts"
branch_labels = None
depends_on = None

_OLD_STATES = "'pending', 'downloading', 'installed', 'confirmed', 'failed', 'rolled_back'"


def _states_check(batch, states: str):
    batch.create_check_constraint("ck_rollout_devices_state", f"state IN ({states})")


def upgrade() -> None:
    op.create_table(
        "ota_checkin_auth",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("device", sa.String(32), nullable=False),
        sa.Column("key_sealed", sa.LargeBinary, nullable=True),
        sa.Column("key_created_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_seq", sa.BigInteger, nullable=False, server_default="0"),
        sa.Column("accepted", sa.Integer, nullable=False, server_default="0"),
        sa.Column("unauthenticated", sa.Integer, nullable=False, server_default="0"),
        sa.Column("rejected", sa.Integer, nullable=False, server_default="0"),
        sa.Column("rejected_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("rejected_reason", sa.String(20), nullable=True),
        sa.UniqueConstraint("device", name="uq_ota_checkin_auth_device"),
    )
    with op.batch_alter_table("rollouts") as b:
        b.add_column(sa.Column("seed", sa.String(32), nullable=True))
        b.add_column(sa.Column("wave_timeout_s", sa.Integer, nullable=True))
        b.add_column(sa.Column("wave_opened_at", sa.DateTime(timezone=True), nullable=True))
    # SQLite: the batch copies the table without its CHECK constraint (not reflected), then adds the new one
    with op.batch_alter_table("rollout_devices") as b:
        if op.get_bind().dialect.name != "sqlite":
            b.drop_constraint("ck_rollout_devices_state", type_="check")
        b.add_column(sa.Column("seen_at", sa.DateTime(timezone=True), nullable=True))
        _states_check(b, _OLD_STATES + ", 'silent'")


def downgrade() -> None:
    op.execute("UPDATE rollout_devices SET state = 'pending', reason = NULL WHERE state = 'silent'")
    with op.batch_alter_table("rollout_devices") as b:
        if op.get_bind().dialect.name != "sqlite":
            b.drop_constraint("ck_rollout_devices_state", type_="check")
        b.drop_column("seen_at")
        _states_check(b, _OLD_STATES)
    with op.batch_alter_table("rollouts") as b:
        b.drop_column("wave_opened_at")
        b.drop_column("wave_timeout_s")
        b.drop_column("seed")
    op.drop_table("ota_checkin_auth")
