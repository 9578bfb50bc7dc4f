"""Board file paths and sensor types are declared once, in firmware/bysans/device_spec.py: the firmware
imports it, the host executes it by path (fleet.device_spec); no other firmware module spells them again."""

import ast
import re

from fleet import device_spec
from fleet.resources import firmware_dir

FIRMWARE = firmware_dir()
DECLARED = {k: v for k, v in vars(device_spec).items() if k.isupper() and not k.startswith("_")}


def test_the_host_reads_the_firmwares_declaration():
    ns: dict = {}
    exec((FIRMWARE / "bysans" / "device_spec.py").read_text(), ns)  # independent of fleet.firmware_data
    assert DECLARED == {k: v for k, v in ns.items() if k.isupper() and not k.startswith("_")}
    assert all(p.startswith("/") for k, p in DECLARED.items() if k.endswith(("_FILE", "_CONFIG", "_DIR", "_ROOT",
                                                                           "_BOOT", "_CONFIRMED")))
    assert set(device_spec.DISTANCE_TYPES) <= set(device_spec.SENSOR_TYPES)


def test_no_firmware_module_spells_a_declared_path_or_type_list_again():
    paths = {v for v in DECLARED.values() if isinstance(v, str)}
    found = []
    for py in sorted(FIRMWARE.rglob("*.py")):
        if py.name == "device_spec.py" or py == FIRMWARE / "boot.py":
            continue
        for node in ast.walk(ast.parse(py.read_text())):
            if isinstance(node, ast.Constant) and node.value in paths:
                found.append(f"{py.relative_to(FIRMWARE)}:{node.lineno} {node.value!r}")
            if isinstance(node, ast.Tuple) and len(node.elts) > 1 and all(
                    isinstance(e, ast.Constant) and e.value in device_spec.SENSOR_TYPES for e in node.elts):
                found.append(f"{py.relative_to(FIRMWARE)}:{node.lineno} a tuple of sensor types")
    assert not found, "use bysans.device_spec instead: " + ", ".join(found)


def test_boot_py_reads_the_declared_confirmed_slot_file():
    # boot.py runs before any app module can be imported (it sets the path they are imported from), so it
    # is the one place that spells the path; it must be the declared one
    src = (FIRMWARE / "boot.py").read_text()
    assert re.findall(r"open\(\"([^\"]+)\"\)", src) == [device_spec.OTA_CONFIRMED]


def _spells_a_path(text: str, paths: set) -> list:
    """The declared paths `text` spells: the whole string, or quoted inside code sent to a board."""
    return sorted(p for p in paths if text == p or f"'{p}'" in text or f'"{p}"' in text)


def test_no_host_module_spells_a_declared_path_or_type_list_again():
    # The host's rooms read the paths from fleet.device_spec, also in the code they send to a board
    # (an f-string's literal parts are checked like any other string).
    paths = {v for v in DECLARED.values() if isinstance(v, str)}
    root = FIRMWARE.parent
    found = []
    for room in ("fleet", "provisioning", "lab", "scripts"):
        for py in sorted((root / room).rglob("*.py")):
            if py.name == "device_spec.py":
                continue
            for node in ast.walk(ast.parse(py.read_text())):
                where = f"{py.relative_to(root)}:{getattr(node, 'lineno', '?')}"
                if isinstance(node, ast.Constant) and isinstance(node.value, (str, bytes)):
                    text = node.value if isinstance(node.value, str) else node.value.decode("latin-1")
                    found += [f"{where} {p!r}" for p in _spells_a_path(text, paths)]
                if isinstance(node, (ast.Tuple, ast.List, ast.Set)) and len(node.elts) > 1 and all(
                        isinstance(e, ast.Constant) and e.value in device_spec.SENSOR_TYPES for e in node.elts):
                    found.append(f"{where} a list of sensor types")
    assert not found, "use fleet.device_spec instead: " + ", ".join(found)


def test_the_host_check_sees_a_path_in_code_sent_to_a_board():
    paths = {device_spec.BOARD_FILE, device_spec.OTA_CONFIRMED}
    assert _spells_a_path("f=open('/board.json');n=json.load(f)", paths) == ["/board.json"]
    assert _spells_a_path(device_spec.OTA_CONFIRMED, paths) == [device_spec.OTA_CONFIRMED]
    assert _spells_a_path("/board.json.bak is not it", paths) == []
