"""`fleet rollout checkin-key` on a virtual board: the key lands in the board's /ota/config.json (the other
settings kept, no temporary file left) and sealed in the registry, and a check-in the board's own firmware
signs with it is accepted by the registry; a new key locks the old one out; a wrong --device or a board
without OTA set-up writes nothing."""

import base64
import json
import os

import pytest

from e2e_tools import run_fleet
from fleet.errors import CheckinRejected, UsageError, WrongBoard
from fleet.resources import firmware_dir
from fleet.rollout import OtaStore
from provisioning.ota import CONFIG, give_checkin_key
from provisioning.session import Session

DEVICE = "70B3D57ED0000060"
SETTINGS = {"server": "http://10.0.0.2:8080", "device": DEVICE.lower(), "kommune": "0751", "poll_s": 600}
# the firmware's own HMAC (bysans.ota.checkin), with the key from the board's own config
SIGN = """import json
from bysans.ota import checkin
cfg = json.load(open('/ota/config.json'))
body = json.dumps({'device': cfg['device'], 'kommune': cfg['kommune'], 'seq': %d})
print(json.dumps([body, checkin.mac_hex(cfg['checkin_key'], body.encode())]))
"""


@pytest.fixture
def db_url(tmp_path, monkeypatch):
    monkeypatch.setenv("FLEET_SECRET_KEY", base64.b64encode(os.urandom(32)).decode())
    return f"sqlite:///{tmp_path / 'registry.sqlite'}"


@pytest.fixture
def ota_board(vboard):
    """A virtual board set up for OTA without a check-in key, with the firmware's check-in signer."""
    src = firmware_dir() / "bysans"
    files = {"/bysans/__init__.py": src / "__init__.py", "/bysans/ota/__init__.py": src / "ota" / "__init__.py",
             "/bysans/ota/checkin.py": src / "ota" / "checkin.py", "/bysans/ota/slots.py": src / "ota" / "slots.py",
             "/bysans/device_spec.py": src / "device_spec.py"}
    with Session(vboard.port) as s:
        s.makedirs("/bysans/ota")
        s.makedirs("/ota")
        for path, f in files.items():
            s.write_file(path, f.read_bytes())
        s.write_file(CONFIG, json.dumps(SETTINGS).encode())
    return vboard


def on_board(port) -> tuple[dict, list[str]]:
    with Session(port) as s:
        return json.loads(s.eval(f"open({CONFIG!r}).read()")), s.eval("__import__('os').listdir('/ota')")


def signed_by_board(port, seq: int) -> tuple[bytes, str]:
    with Session(port) as s:
        body, mac = json.loads(s.exec(SIGN % seq).strip().splitlines()[-1])
    return body.encode(), mac


def test_library_gives_the_board_a_key_its_firmware_signs_with(ota_board, db_url):
    store = OtaStore.open(db_url)
    try:
        with Session(ota_board.port) as s:
            assert give_checkin_key(s, store) == DEVICE
        cfg, listing = on_board(ota_board.port)
        assert {k: v for k, v in cfg.items() if k != "checkin_key"} == SETTINGS
        assert len(cfg["checkin_key"]) == 64 and listing == ["config.json"]
        assert store.has_checkin_key(DEVICE)
        body, mac = signed_by_board(ota_board.port, 5)
        assert store.authenticate(body, mac)["seq"] == 5

        with Session(ota_board.port) as s:  # a new key: the board's old one stops working
            give_checkin_key(s, store, device=DEVICE.lower())
        assert on_board(ota_board.port)[0]["checkin_key"] != cfg["checkin_key"]
        with pytest.raises(CheckinRejected):
            store.authenticate(*_resigned(cfg["checkin_key"], 6))
        body, mac = signed_by_board(ota_board.port, 1)  # a new key starts seq again
        assert store.authenticate(body, mac)["seq"] == 1
    finally:
        store.close()


def _resigned(key_hex, seq):
    from fleet.rollout import body_mac

    body = json.dumps({"device": DEVICE.lower(), "kommune": "0751", "seq": seq}).encode()
    return body, body_mac(bytes.fromhex(key_hex), body)


def test_cli_writes_the_board_and_the_registry_and_never_shows_the_key(ota_board, db_url):
    proc = run_fleet("rollout", "checkin-key", "--port", ota_board.port, "--db", db_url, "--json")
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout) == {"device": DEVICE, "port": ota_board.port, "checkin_key": "written"}
    key = on_board(ota_board.port)[0]["checkin_key"]
    assert key not in proc.stdout + proc.stderr
    store = OtaStore.open(db_url)
    try:
        assert store.authenticate(*signed_by_board(ota_board.port, 7))["seq"] == 7
    finally:
        store.close()


def test_wrong_device_writes_nothing(ota_board, db_url):
    proc = run_fleet("rollout", "checkin-key", "--port", ota_board.port, "--db", db_url,
                     "--device", "70B3D57ED0000061")
    assert proc.returncode == WrongBoard.exit_code, proc.stderr
    assert "not 70B3D57ED0000061" in proc.stderr and "--device" in proc.stderr
    assert on_board(ota_board.port) == (SETTINGS, ["config.json"])
    store = OtaStore.open(db_url)
    try:
        assert not store.has_checkin_key(DEVICE)
    finally:
        store.close()


def test_board_without_ota_setup_is_told_to_provision_first(vboard, db_url):
    store = OtaStore.open(db_url)
    try:
        with Session(vboard.port) as s, pytest.raises(UsageError) as e:
            give_checkin_key(s, store)
        assert "provision it for OTA first" in e.value.hint
    finally:
        store.close()
