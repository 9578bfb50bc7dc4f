"""diagnostics: each device's last diagnostics, its counts per release, and the rollout's soak and
per-member counts (docs/formats/diagnostics.md, docs/fleet-admin.md "Diagnostics per release")

Revision ID: 0010_diagnostics
Revises: 0009_rollout_member_indexes
Create Date: 2026-12-07

New nullable columns and a new table; existing rows keep their values (a rollout without a soak owes none).
"""

import sqlalchemy as sa
from alembic import op

revision = "0010_diagnostics"
down_revision = "0009_rollout_member_indexes"
branch_labels = None
depends_on = None

_OTA = (("diag_cause", sa.String(12)), ("diag_boots", sa.Integer), ("diag_watchdog", sa.Integer),
        ("diag_heap_min", sa.Integer), ("diag_exception", sa.String(8)),
        ("diag_at", sa.DateTime(timezone=True)))
_MEMBER = (("diag_checkins", sa.Integer), ("resets", sa.Integer), ("watchdog_resets", sa.Integer))


def upgrade() -> None:
    with op.batch_alter_table("ota_devices") as b:
        for name, typ in _OTA:
            b.add_column(sa.Column(name, typ, nullable=True))
    with op.batch_alter_table("rollout_devices") as b:
        for name, typ in _MEMBER:
            b.add_column(sa.Column(name, typ, nullable=True))
    with op.batch_alter_table("rollouts") as b:
        b.add_column(sa.Column("soak", sa.Integer, nullable=True))
    op.create_table(
        "release_diagnostics",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("device", sa.String(32), nullable=False),
        sa.Column("version", sa.String(40), nullable=False),
        sa.Column("source", sa.String(8), nullable=False),
        sa.Column("kommune_kode", sa.String(4), nullable=False),
        sa.Column("board", sa.String(40), nullable=False),
        sa.Column("checkins", sa.Integer, nullable=False),
        sa.Column("resets", sa.Integer, nullable=False),
        sa.Column("watchdog_resets", sa.Integer, nullable=False),
        sa.Column("heap_min", sa.Integer, nullable=True),
        sa.Column("exception", sa.String(8), nullable=True),
        sa.Column("last_cause", sa.String(12), nullable=True),
        sa.Column("last_boots", sa.Integer, nullable=True),
        sa.Column("last_watchdog", sa.Integer, nullable=True),
        sa.Column("first_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_at", sa.DateTime(timezone=True), nullable=False),
        sa.UniqueConstraint("device", "version", "source", name="uq_release_diagnostics"),
    )


def downgrade() -> None:
    op.drop_table("release_diagnostics")
    with op.batch_alter_table("rollouts") as b:
        b.drop_column("soak")
    with op.batch_alter_table("rollout_devices") as b:
        for name, _ in reversed(_MEMBER):
            b.drop_column(name)
    with op.batch_alter_table("ota_devices") as b:
        for name, _ in reversed(_OTA):
            b.drop_column(name)
