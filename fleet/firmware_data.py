"""Declarations the firmware owns and the host reads: a wire format or a table of constants is written
once, as a small firmware module, and the host executes that one file by path (never importing the
firmware package or putting it on sys.path). Such a module imports nothing of the firmware; under
CPython its `const` comes from its own `try: from micropython import const` fallback.

    firmware/bysans/payload_spec.py   the uplink payload            (fleet.codec.spec)
    firmware/bysans/ota/reasons.py    OTA refusal codes, metadata   (fleet.release.reasons, .metadata)
    firmware/bysans/device_spec.py    board file paths, sensor types (fleet.device_spec)
    firmware/bysans/fuota/frag_spec.py  FUOTA fragmentation messages, parity matrix (fleet.fuota.spec)
    firmware/bysans/settings_spec.py  the settings downlink, its ack (fleet.settings.spec)
    firmware/bysans/fuota/payload_spec.py  the FUOTA update payload  (fleet.fuota.payload)
    firmware/bysans/update_report_spec.py  the update report, FPort 222 (fleet.codec.update_report)
"""

import importlib.util
from functools import lru_cache
from pathlib import Path
from types import ModuleType

from .resources import firmware_dir


def firmware_file(rel: str) -> Path:
    """A file of the firmware tree, e.g. "bysans/ota/reasons.py"."""
    return firmware_dir() / rel


@lru_cache(maxsize=16)
def _exec(path: str) -> ModuleType:
    name = "_bysans_" + Path(path).stem
    spec = importlib.util.spec_from_file_location(name, path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def load(rel: str | Path) -> ModuleType:
    """The firmware module at `rel` (relative to firmware/, or an absolute path), executed once."""
    path = Path(rel)
    return _exec(str(path if path.is_absolute() else firmware_file(str(rel))))
