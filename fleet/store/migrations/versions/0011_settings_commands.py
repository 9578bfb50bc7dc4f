"""settings_commands: `fleet settings set` per device (seq, values) and the node's acknowledgement

Revision ID: 0011_settings_commands
Revises: 0010_diagnostics
Create Date: 2026-12-07

A new table only; nothing else changes. (Another branch may add a 0008 of its own: the two chain in
either order, as neither touches the other's tables.)
"""

import sqlalchemy as sa
from alembic import op

revision = "0011_settings_commands"
down_revision = "0010_diagnostics"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "settings_commands",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("dev_eui", sa.String(16), nullable=False),
        sa.Column("kommune_kode", sa.String(4), nullable=False),
        sa.Column("seq", sa.Integer, nullable=False),
        sa.Column("settings", sa.JSON, nullable=False),
        sa.Column("state", sa.String(10), nullable=False),
        sa.Column("result", sa.String(16), nullable=True),
        sa.Column("operator", sa.String(80), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("acked_at", sa.DateTime(timezone=True), nullable=True),
        sa.UniqueConstraint("dev_eui", "seq", name="uq_settings_commands_seq"),
    )


def downgrade() -> None:
    op.drop_table("settings_commands")
