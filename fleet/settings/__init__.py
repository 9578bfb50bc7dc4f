"""Node settings over LoRaWAN downlink: sampling and send interval, fill and fire thresholds.

    spec      the format (firmware/bysans/settings_spec.py, by path): command and acknowledgement frames
    store     commands per device in the registry's database, audited; the nodes' acknowledgements
    routes    how a command reaches the network server: ChirpStack v4's queue body, the lab network server

docs/formats/settings.md is the format; docs/fleet-admin.md the commands (`fleet settings`).
"""

from .spec import check_value, decode_ack, encode_command, keys, parse_assignments
from .store import SettingsStore

__all__ = ["SettingsStore", "check_value", "decode_ack", "encode_command", "keys", "parse_assignments"]
