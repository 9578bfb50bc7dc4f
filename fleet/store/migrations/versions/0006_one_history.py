"""one history: the rollouts and telemetry branches of 0001 merged

Revision ID: 0006_one_history
Revises: 0004_checkin_auth, 0005_readings_by_uplink
Create Date: 2026-12-07

Until here, rollouts (0002_rollouts -> 0004_checkin_auth) and telemetry (0003_telemetry ->
0005_readings_by_uplink) were two branches from 0001, and a database was upgraded to "heads". Those
revisions are released: their ids stay as they are. This merge changes no schema; it joins the two heads,
so that the history is linear from here on, a database is upgraded to "head", and the next migration
revises this one. A database at any released revision (or at both heads) upgrades through it.
"""

revision = "0006_one_history"
down_revision = ("0004_checkin_auth", "0005_readings_by_uplink")
branch_labels = None
depends_on = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
