"""ingest_workers: each `fleet ingest mqtt` process's heartbeat and lag, for `fleet status`

Revision ID: 0007_ingest_workers
Revises: 0006_one_history
Create Date: 2026-12-07

A new table only; nothing else changes.
"""

import sqlalchemy as sa
from alembic import op

revision = "0007_ingest_workers"
down_revision = "0006_one_history"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "ingest_workers",
        sa.Column("client_id", sa.String(128), primary_key=True),
        sa.Column("host", sa.String(255), nullable=False),
        sa.Column("pid", sa.Integer, nullable=False),
        sa.Column("broker", sa.String(255), nullable=False),
        sa.Column("topics", sa.Text, nullable=False),
        sa.Column("state", sa.String(10), nullable=False),
        sa.Column("connected", sa.Boolean, nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("heartbeat_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("heartbeat_s", sa.Float, nullable=False),
        sa.Column("received", sa.BigInteger, nullable=False),
        sa.Column("stored", sa.BigInteger, nullable=False),
        sa.Column("duplicates", sa.BigInteger, nullable=False),
        sa.Column("malformed", sa.BigInteger, nullable=False),
        sa.Column("ignored", sa.BigInteger, nullable=False),
        sa.Column("pending", sa.Integer, nullable=False),
        sa.Column("oldest_pending_s", sa.Float, nullable=True),
        sa.Column("broker_held", sa.BigInteger, nullable=True),
        sa.Column("behind", sa.Boolean, nullable=False),
        sa.Column("behind_reason", sa.Text, nullable=True),
    )


def downgrade() -> None:
    op.drop_table("ingest_workers")
