"""rollout_member_indexes: a check-in answers without reading every member of its rollout

Revision ID: 0009_rollout_member_indexes
Revises: 0008_wifi_networks
Create Date: 2026-12-07

Two indexes on rollout_devices, nothing else changes:
- ix_rollout_devices_state_wave (rollout_id, state, wave, seen_at): whether an open wave still has a device
  on its way, and which waiting devices a wave timeout makes silent, are index seeks (fleet/rollout/store.py);
- ix_rollout_devices_position (rollout_id, position): where a device that joins a running rollout goes.
"""

from alembic import op

revision = "0009_rollout_member_indexes"
down_revision = "0008_wifi_networks"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_rollout_devices_state_wave", "rollout_devices", ["rollout_id", "state", "wave", "seen_at"])
    op.create_index("ix_rollout_devices_position", "rollout_devices", ["rollout_id", "position"])


def downgrade() -> None:
    op.drop_index("ix_rollout_devices_position", table_name="rollout_devices")
    op.drop_index("ix_rollout_devices_state_wave", table_name="rollout_devices")
