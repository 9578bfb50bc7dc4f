"""wifi_networks: sealed WiFi credentials per kommune or site; device_health.net_status: "no network"

Revision ID: 0008_wifi_networks
Revises: 0007_ingest_workers
Create Date: 2026-12-07

A new table, and one nullable column on device_health (the WiFi outcome a node reported in its newest
uplink, docs/formats/payload.md "Network status"); nothing else changes.
"""

import sqlalchemy as sa
from alembic import op

revision = "0008_wifi_networks"
down_revision = "0007_ingest_workers"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "wifi_networks",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("kommune_kode", sa.String(4), nullable=False),
        sa.Column("site", sa.String(200), nullable=False),
        sa.Column("ssid", sa.String(64), nullable=False),
        sa.Column("password_sealed", sa.LargeBinary, nullable=False),
        sa.Column("created_by", sa.String(80), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.UniqueConstraint("kommune_kode", "site", "ssid", name="uq_wifi_networks_place_ssid"),
    )
    with op.batch_alter_table("device_health") as b:
        b.add_column(sa.Column("net_status", sa.String(24), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("device_health") as b:
        b.drop_column("net_status")
    op.drop_table("wifi_networks")
