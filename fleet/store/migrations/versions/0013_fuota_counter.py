"""fuota_rollouts.counter: the signed manifest's counter of the rollout's release, which an update report
(FPort 222, docs/formats/update-report.md) must name to move a device

Revision ID: 0013_fuota_counter
Revises: 0012_fuota_rollouts
Create Date: 2026-12-07

One nullable column; a rollout started before it has none, and update reports move none of its devices.
"""

import sqlalchemy as sa
from alembic import op

revision = "0013_fuota_counter"
down_revision = "0012_fuota_rollouts"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("fuota_rollouts") as b:
        b.add_column(sa.Column("counter", sa.BigInteger, nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("fuota_rollouts") as b:
        b.drop_column("counter")
