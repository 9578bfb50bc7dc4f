"""The WiFi code against MicroPython's ESP32 API as micropython-esp32-stubs publish it (independent of
REFERENCE-2): the firmware's calls type-check, and the virtual board's `network` module and the host's
WLAN model use the same status and security numbers as an ESP32."""

import ast
import shutil
import sysconfig
from pathlib import Path

import pytest

from fleet.resources import firmware_dir, rom_dir
from fleet.sim import wlan
from test_hal_esp32_stubs import _beside, mypy_errors, stubs  # noqa: F401 - the fixture

STUB = Path(sysconfig.get_paths()["purelib"]) / "network.pyi"


def _constants(path: Path) -> dict:
    out = {}
    for node in ast.parse(path.read_text()).body:
        target = value = None
        if isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
            target, value = node.target.id, node.value
        elif isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name):
            target, value = node.targets[0].id, node.value
        if target is None or value is None:
            continue
        if isinstance(value, ast.Call) and getattr(value.func, "id", "") == "const":
            value = value.args[0]
        if isinstance(value, ast.Constant) and isinstance(value.value, int):
            out[target] = value.value
    return out


@pytest.fixture(scope="module")
def esp32():
    if not STUB.exists():
        pytest.skip("micropython-esp32-stubs is not installed")
    return _constants(STUB)


def test_virtual_network_module_has_the_esp32_numbers(esp32):
    ours = _constants(rom_dir() / "network.py")
    names = [n for n in ours if n.startswith(("STAT_", "SEC_", "PM_")) or n in ("STA_IF", "AP_IF")]
    assert len(names) >= 20
    checked = [n for n in names if n in esp32]
    assert len(checked) >= 14, checked
    assert {n: ours[n] for n in checked} == {n: esp32[n] for n in checked}
    # the stubs name the security modes by their older AUTH_* names
    for sec, auth in SEC_AUTH.items():
        assert ours[sec] == esp32[auth], sec


SEC_AUTH = {"SEC_OPEN": "AUTH_OPEN", "SEC_WEP": "AUTH_WEP", "SEC_WPA": "AUTH_WPA_PSK", "SEC_WPA2": "AUTH_WPA2_PSK",
            "SEC_WPA_WPA2": "AUTH_WPA_WPA2_PSK", "SEC_WPA2_ENT": "AUTH_WPA2_ENTERPRISE", "SEC_WPA3": "AUTH_WPA3_PSK",
            "SEC_WPA2_WPA3": "AUTH_WPA2_WPA3_PSK"}


def test_host_model_and_firmware_names_use_the_esp32_status_codes(esp32):
    for n in ("STAT_IDLE", "STAT_CONNECTING", "STAT_GOT_IP", "STAT_BEACON_TIMEOUT", "STAT_NO_AP_FOUND",
              "STAT_WRONG_PASSWORD", "STAT_NO_AP_FOUND_W_COMPATIBLE_SECURITY"):
        assert getattr(wlan, n) == esp32[n], n
    assert wlan.SECURITY == {"open": esp32["AUTH_OPEN"], "wpa": esp32["AUTH_WPA_PSK"], "wpa2": esp32["AUTH_WPA2_PSK"],
                             "wpa3": esp32["AUTH_WPA3_PSK"], "wpa2-enterprise": esp32["AUTH_WPA2_ENTERPRISE"]}
    fw = (firmware_dir() / "bysans" / "wifi.py").read_text()
    names = ast.literal_eval(fw.split("_NAMES = ", 1)[1].split("\n\n", 1)[0])
    assert names[esp32["STAT_WRONG_PASSWORD"]] == "WRONG_PASSWORD"
    assert names[esp32["STAT_NO_AP_FOUND"]] == "NO_AP_FOUND"
    assert names[esp32["STAT_NO_AP_FOUND_W_COMPATIBLE_SECURITY"]] == "NO_COMPATIBLE_SECURITY"


def test_firmware_wifi_calls_match_the_stubs(stubs, tmp_path):  # noqa: F811
    copy = _beside(tmp_path).with_name("wifi.py")  # bysans/device_spec.py beside it: wifi.py imports it
    shutil.copy(firmware_dir() / "bysans" / "wifi.py", copy)
    assert mypy_errors(copy, stubs) == []
    bad = tmp_path / "wifi_bad.py"
    bad.write_text(copy.read_text().replace("wlan.active(True)", "wlan.active(True, 5)"))
    assert mypy_errors(bad, stubs), "the check did not catch a wrong call"
