"""`fleet enroll --port`: the credentials written to the board (verified), the device recorded, a label,
and the AppKey in no output."""

import base64
import json
import os

import pytest

from e2e_tools import run_fleet
from fleet.errors import WrongBoard
from provisioning.session import Session


@pytest.fixture
def env(tmp_path, monkeypatch):
    monkeypatch.setenv("FLEET_DB", f"sqlite:///{tmp_path / 'registry.sqlite'}")
    monkeypatch.setenv("FLEET_SECRET_KEY", base64.b64encode(os.urandom(32)).decode())
    monkeypatch.setenv("FLEET_OPERATOR", "anna")
    return tmp_path


def read_board_file(port, path):
    with Session(port) as s:
        return s.exec(f"print(open('{path}').read())").strip()


def test_enroll_writes_credentials_records_device_and_never_shows_the_appkey(vboard, env):
    proc = run_fleet("enroll", "-k", "751", "--port", vboard.port, "--site", "Park Allé 1, bin 3", "--kind", "waste",
                     "--lat", "56.15", "--lon", "10.2", "--labels", str(env / "labels"), "--json")
    assert proc.returncode == 0, proc.stderr
    [rec] = json.loads(proc.stdout)
    assert rec["state"] == "enrolled" and rec["board"] == "virtual" and rec["kommune_kode"] == "0751"
    lorawan = json.loads(read_board_file(vboard.port, "/config/lorawan.json"))
    device = json.loads(read_board_file(vboard.port, "/config/device.json"))
    assert lorawan["dev_eui"] == rec["dev_eui"] and len(lorawan["app_key"]) == 32
    assert device["site"] == "Park Allé 1, bin 3" and device["kind"] == "waste"
    key = lorawan["app_key"]
    assert key.upper() not in (proc.stdout + proc.stderr).upper()
    assert (env / "labels" / f"{rec['dev_eui']}.png").is_file()

    shown = run_fleet("devices", "show", rec["dev_eui"], "-k", "751", "--json")
    assert shown.returncode == 0, shown.stderr
    assert json.loads(shown.stdout)["dev_eui"] == rec["dev_eui"]
    assert key.upper() not in (shown.stdout + shown.stderr).upper()


def test_enroll_on_wrong_board_records_nothing_and_writes_nothing(vboard, env):
    proc = run_fleet("enroll", "-k", "751", "--port", vboard.port, "--board", "heltec_v3", "--site", "X",
                     "--kind", "env")
    assert proc.returncode == WrongBoard.exit_code, proc.stderr
    with Session(vboard.port) as s:
        assert "config" not in s.exec("import os;print(os.listdir('/'))")
    listed = run_fleet("devices", "list", "-k", "751", "--json")
    assert json.loads(listed.stdout) == []


def test_enroll_uses_the_boards_mac_when_it_has_one(make_board, env, tmp_path, monkeypatch):
    from fleet.identifiers import eui64_from_mac
    from fleet.resources import project_root

    home = tmp_path / "home"
    (home / "boards").mkdir(parents=True)
    os.symlink(project_root() / "firmware", home / "firmware")
    spec = json.loads((project_root() / "boards" / "virtual.json").read_text())
    (home / "boards" / "virtual.json").write_text(json.dumps({**spec, "mac": "240ac4123456"}))
    monkeypatch.setenv("BYSANS_HOME", str(home))
    board = make_board()
    proc = run_fleet("enroll", "-k", "751", "--port", board.port, "--site", "Værkstedet", "--kind", "env", "--json")
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)[0]["dev_eui"] == eui64_from_mac("24:0a:c4:12:34:56")


def test_ctrl_c_while_writing_the_board_enrolls_nothing_says_so_and_the_same_command_then_works(vboard, env):
    """Ctrl-C while the credentials travel (a KeyboardInterrupt from the transfer, as SIGINT raises it): the
    reservation is removed (audited), the message says what the registry and the board hold, and the same
    command run again enrolls the board."""
    from fleet.cli.enroll import interrupted_state
    from fleet.registry import SYSTEM, NewDevice, Registry
    from provisioning.enroll_on_board import enroll_on_board

    reg = Registry.open(os.environ["FLEET_DB"])

    def ctrl_c(*_):
        raise KeyboardInterrupt

    new = NewDevice(kommune="751", site="Park Allé 1", kind="waste", board="")
    with pytest.raises(KeyboardInterrupt) as e:
        enroll_on_board(reg, SYSTEM, new, vboard.port, progress=ctrl_c)
    state = e.value.enroll_state
    assert state["stage"] == "writing" and len(state["dev_eui"]) == 16
    assert reg.list_devices(SYSTEM) == []
    [last, *_] = reg.audit_log(SYSTEM, dev_eui=state["dev_eui"])
    assert "aborted" in (last.note or "")
    message, hint = interrupted_state(state, vboard.port)
    assert state["dev_eui"] in message and "not enrolled" in message and "run the same command again" in hint

    proc = run_fleet("enroll", "-k", "751", "--port", vboard.port, "--site", "Park Allé 1", "--kind", "waste",
                     "--json")
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)[0]["state"] == "enrolled"
    listed = run_fleet("devices", "list", "-k", "751", "--json")
    assert len(json.loads(listed.stdout)) == 1


def test_interrupted_states_say_what_is_left():
    from fleet.cli.enroll import interrupted_state

    msg, hint = interrupted_state({"stage": "reading", "dev_eui": None}, "/dev/ttyUSB0")
    assert "nothing was enrolled" in msg and "/dev/ttyUSB0" in msg
    msg, hint = interrupted_state({"stage": "written", "dev_eui": "70B3D57ED0000001"}, "/dev/ttyUSB0")
    assert "was enrolled" in msg and "fleet devices show 70B3D57ED0000001" in hint
