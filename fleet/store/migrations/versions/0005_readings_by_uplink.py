"""readings keyed by (uplink_id, seq), without foreign keys; deleting an uplink deletes its readings

Revision ID: 0005_readings_by_uplink
Revises: 0003_telemetry
Create Date: 2026-11-30

`readings` was keyed by its own id and had two foreign keys (to its uplink and to its device): the server
checked both for every reading, and that was half of its work at ingest (docs/ingest.md, "Storage").
Now a reading is keyed by its uplink and its place in the frame (seq 0 = the oldest), and has no foreign
keys: TelemetryStore.ingest writes an uplink and its readings in one transaction, after looking the
device up in it. A trigger on `uplinks` deletes an uplink's readings with it, so that deleting a device
(its uplinks cascade) still deletes its readings.

The table is made anew and the readings copied, their order within each uplink kept (the old ids were
given oldest first); downgrade does the reverse. The same steps on SQLite and PostgreSQL, but the trigger.
"""

import sqlalchemy as sa
from alembic import op

revision = "0005_readings_by_uplink"
down_revision = "0003_telemetry"
branch_labels = None
depends_on = None

BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
VALUES = ("kind", "dist_mm", "fill_bp", "temp_cdeg", "batt_mv", "rh_permille", "pressure_pa", "co2_ppm",
          "pm2_5_ugm3", "pm10_ugm3", "tilt", "pickup", "fire", "faults")
_TRIGGER = "tr_uplinks_delete_readings"
_PG_FUNCTION = "readings_follow_uplinks"


def _value_columns():
    return [sa.Column("kind", sa.String(10), nullable=False),
            *[sa.Column(c, sa.Integer, nullable=True) for c in VALUES[1:10]],
            *[sa.Column(c, sa.Boolean, nullable=True) for c in VALUES[10:13]],
            sa.Column("faults", sa.String(120), nullable=True)]


def _create_trigger() -> None:
    if op.get_bind().dialect.name == "postgresql":
        # One DELETE per statement on uplinks (also the cascade from a deleted device), over all its rows.
        op.execute(f"""
            CREATE FUNCTION {_PG_FUNCTION}() RETURNS trigger LANGUAGE plpgsql SET search_path FROM CURRENT AS $$
            BEGIN
                DELETE FROM readings r USING gone g WHERE r.uplink_id = g.id;
                RETURN NULL;
            END $$""")
        op.execute(f"CREATE TRIGGER {_TRIGGER} AFTER DELETE ON uplinks REFERENCING OLD TABLE AS gone "
                   f"FOR EACH STATEMENT EXECUTE FUNCTION {_PG_FUNCTION}()")
    else:
        op.execute(f"CREATE TRIGGER {_TRIGGER} AFTER DELETE ON uplinks "
                   f"BEGIN DELETE FROM readings WHERE uplink_id = OLD.id; END")


def _drop_trigger() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute(f"DROP TRIGGER IF EXISTS {_TRIGGER} ON uplinks")
        op.execute(f"DROP FUNCTION IF EXISTS {_PG_FUNCTION}()")
    else:
        op.execute(f"DROP TRIGGER IF EXISTS {_TRIGGER}")


def upgrade() -> None:
    op.drop_index("ix_readings_uplink", table_name="readings")
    op.drop_index("ix_readings_device_at", table_name="readings")
    op.rename_table("readings", "readings_0003")
    op.create_table(
        "readings",
        sa.Column("uplink_id", BigId, nullable=False, autoincrement=False),
        sa.Column("seq", sa.SmallInteger, nullable=False, autoincrement=False),
        sa.Column("device_id", sa.Integer, nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        *_value_columns(),
        sa.PrimaryKeyConstraint("uplink_id", "seq", name="pk_readings"),
        sqlite_with_rowid=False,
    )
    values = ", ".join(VALUES)
    op.execute(f"INSERT INTO readings (uplink_id, seq, device_id, at, {values}) "
               f"SELECT uplink_id, ROW_NUMBER() OVER (PARTITION BY uplink_id ORDER BY id) - 1, device_id, at, "
               f"{values} FROM readings_0003")
    op.drop_table("readings_0003")
    op.create_index("ix_readings_device_at", "readings", ["device_id", "at"])
    _create_trigger()


def downgrade() -> None:
    _drop_trigger()
    op.drop_index("ix_readings_device_at", table_name="readings")
    op.rename_table("readings", "readings_0005")
    op.create_table(
        "readings",
        sa.Column("id", BigId, primary_key=True),
        sa.Column("uplink_id", BigId, sa.ForeignKey("uplinks.id", ondelete="CASCADE"), nullable=False),
        sa.Column("device_id", sa.Integer, sa.ForeignKey("devices.id", ondelete="CASCADE"), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        *_value_columns(),
    )
    values = ", ".join(VALUES)
    op.execute(f"INSERT INTO readings (uplink_id, device_id, at, {values}) "
               f"SELECT uplink_id, device_id, at, {values} FROM readings_0005 ORDER BY uplink_id, seq")
    op.drop_table("readings_0005")
    op.create_index("ix_readings_device_at", "readings", ["device_id", "at"])
    op.create_index("ix_readings_uplink", "readings", ["uplink_id"])
