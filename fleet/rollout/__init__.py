"""Staged rollouts of signed releases and the devices' OTA check-ins (docs/ota.md).

A library: it returns values and raises FleetErrors; it never prints. store.py keeps check-ins and rollouts
in the one database (fleet.store, which holds their tables); waves.py is the pure logic (wave shares, order,
halting, silence); auth.py is check-in authentication (per-device keys, HMAC-SHA256).
"""

from ..store.models import DEVICE_STATES, ROLLOUT_STATES
from .auth import CheckinKey, body_mac
from .store import OtaStore, RolloutView, check_report, find_release
from .waves import parse_percent, parse_waves

__all__ = ["OtaStore", "RolloutView", "CheckinKey", "body_mac", "check_report", "find_release", "parse_percent",
           "parse_waves", "DEVICE_STATES", "ROLLOUT_STATES"]
