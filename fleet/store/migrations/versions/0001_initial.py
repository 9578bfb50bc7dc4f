"""devices and the audit log

Revision ID: 0001
Revises:
Create Date: 2026-11-22
"""

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "devices",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("dev_eui", sa.String(16), nullable=False),
        sa.Column("join_eui", sa.String(16), nullable=False),
        sa.Column("app_key_sealed", sa.LargeBinary, nullable=False),
        sa.Column("name", sa.String(80), nullable=False),
        sa.Column("kommune_kode", sa.String(4), nullable=False),
        sa.Column("kommune_navn", sa.String(40), nullable=False),
        sa.Column("site", sa.String(200), nullable=False),
        sa.Column("latitude", sa.Float, nullable=True),
        sa.Column("longitude", sa.Float, nullable=True),
        sa.Column("board", sa.String(40), nullable=False),
        sa.Column("kind", sa.String(10), nullable=False),
        sa.Column("sensors", sa.JSON, nullable=False),
        sa.Column("firmware_version", sa.String(40), nullable=True),
        sa.Column("state", sa.String(12), nullable=False),
        sa.Column("last_seen", sa.DateTime(timezone=True), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.UniqueConstraint("dev_eui", name="uq_devices_dev_eui"),
        sa.CheckConstraint("kind IN ('waste', 'env')", name="ck_devices_kind"),
    )
    op.create_index("ix_devices_kommune_id", "devices", ["kommune_kode", "id"])
    op.create_table(
        "audit_log",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("operator", sa.String(80), nullable=False),
        sa.Column("action", sa.String(40), nullable=False),
        sa.Column("kommune_kode", sa.String(4), nullable=True),
        sa.Column("dev_eui", sa.String(16), nullable=True),
        sa.Column("changes", sa.JSON, nullable=False),
        sa.Column("note", sa.Text, nullable=True),
    )
    op.create_index("ix_audit_dev_eui", "audit_log", ["dev_eui"])
    op.create_index("ix_audit_kommune_at", "audit_log", ["kommune_kode", "at"])


def downgrade() -> None:
    op.drop_index("ix_audit_kommune_at", table_name="audit_log")
    op.drop_index("ix_audit_dev_eui", table_name="audit_log")
    op.drop_table("audit_log")
    op.drop_index("ix_devices_kommune_id", table_name="devices")
    op.drop_table("devices")
