"""The device registry: many kommuner's devices, access by operator, audit log, sealed secrets.

A library: it returns values and raises FleetErrors; it never prints. See api.py for the calls,
access.py for who may do what, sealing.py for secrets at rest; the database itself (its tables, migrations
and sessions) is fleet/store, shared with the OTA store and telemetry.
"""

from ..errors import AccessDenied, RegistryUnavailable, SecretKeyError, UnknownKommune
from .access import CROSS_KOMMUNE, SYSTEM, Operator
from .api import UPDATABLE, AuditRecord, DeviceRecord, NewDevice, Registry, check_new_device, default_name
from .kommuner import Kommune, all_kommuner, lookup
from .wifi import WifiRecord

__all__ = ["Registry", "Operator", "NewDevice", "DeviceRecord", "AuditRecord", "AccessDenied", "CROSS_KOMMUNE",
           "SYSTEM", "UPDATABLE", "RegistryUnavailable", "SecretKeyError", "Kommune", "UnknownKommune",
           "all_kommuner", "lookup", "check_new_device", "default_name", "WifiRecord"]
