"""A --port that is missing, or that reaches something other than a MicroPython board, is reported within
seconds with what answered instead and what to do -- never minutes of silence and a hint about transfers.

The look-alikes are ptys of the test's own (fakeports.py): silence, an ESP32 ROM loader in download mode,
an erased chip, another firmware, a MicroPython board that ignores Ctrl-C."""

import base64
import json
import os
import time

import pytest

from e2e_tools import run_fleet
from fakeports import FakePort
from fleet.errors import (BoardInDownloadMode, BoardNotAnswering, BoardSilent, FlashToolError, NotMicroPython,
                          PortNotFound, SerialPortError)
from provisioning import session as session_mod
from provisioning.session import Session
from provisioning.transfer import write_files

# What a command may take besides the wait itself: starting the interpreter and importing, on a busy machine.
STARTUP_S = 15
ANSWER_S = session_mod.ANSWER_TIMEOUT_S + session_mod.ROM_SYNC_WAIT_S + 1.5


@pytest.fixture
def registry_env(tmp_path, monkeypatch):
    monkeypatch.setenv("FLEET_DB", f"sqlite:///{tmp_path / 'registry.sqlite'}")
    monkeypatch.setenv("FLEET_SECRET_KEY", base64.b64encode(os.urandom(32)).decode())
    monkeypatch.setenv("FLEET_OPERATOR", "anna")
    return f"sqlite:///{tmp_path / 'registry.sqlite'}"


def timed(*args):
    t = time.monotonic()
    proc = run_fleet(*args)
    return proc, time.monotonic() - t


COMMANDS = {
    # the REPL route: it is the one that expects MicroPython on the port (the image route expects the ROM
    # loader and says so: tests/e2e/test_flash_image.py)
    "flash": lambda port, db: ("flash", "--port", port, "--board", "virtual", "--via", "repl"),
    "enroll": lambda port, db: ("enroll", "-k", "751", "--port", port, "--site", "x", "--kind", "waste"),
    "checkin-key": lambda port, db: ("rollout", "checkin-key", "--port", port, "--db", db),
}
# every other command that opens a --port: a missing one is said the same way
MISSING_PORT = {**COMMANDS,
                "flash-image": lambda port, db: ("flash", "--port", port, "--board", "virtual"),
                "ota-check-in": lambda port, db: ("ota", "check-in", "--port", port),
                "wifi-push": lambda port, db: ("wifi", "push", "-k", "751", "--port", port),
                "wifi-set": lambda port, db: ("wifi", "set", "--port", port, "--ssid", "skole-iot")}


@pytest.mark.parametrize("command", sorted(MISSING_PORT))
def test_missing_port_is_reported_at_once_with_the_ports_that_exist(command, vboard, registry_env, monkeypatch):
    monkeypatch.setenv("FLEET_WIFI_PASSWORD", "not-shown")
    proc, took = timed(*MISSING_PORT[command]("/dev/ttyUSB-not-here", registry_env))
    assert proc.returncode == PortNotFound.exit_code == SerialPortError.exit_code == 6, proc.stderr
    assert took < STARTUP_S, f"{command} took {took:.0f} s to say the port is missing"
    assert "cannot open serial port /dev/ttyUSB-not-here: there is no such port" in proc.stderr
    hint = proc.stderr.split("hint: ", 1)[1]
    assert f"sim:{vboard.name} ({vboard.port}" in hint  # the ports that do exist, virtual boards among them
    assert "Traceback" not in proc.stderr


def test_missing_port_hint_lists_pyserials_ports_with_their_usb_descriptions(monkeypatch):
    from serial.tools.list_ports_common import ListPortInfo

    from fleet.cli import ports

    p = ListPortInfo("/dev/ttyUSB0")
    p.description, p.vid, p.pid = "CP2102 USB to UART Bridge Controller", 0x10C4, 0xEA60
    monkeypatch.setattr("serial.tools.list_ports.comports", lambda: [p])
    with pytest.raises(PortNotFound) as e:
        ports.port_ref("/dev/ttyUSB9")
    assert "/dev/ttyUSB0 (CP2102 USB to UART Bridge Controller [USB 10C4:EA60])" in e.value.hint


def test_library_does_not_retry_a_port_that_was_never_there():
    t = time.monotonic()
    with pytest.raises(PortNotFound):
        write_files("/dev/ttyUSB-not-here", {"/x.txt": b"x"}, retries=3, reconnect_timeout=30)
    assert time.monotonic() - t < 3


KINDS = {
    "silent": (BoardSilent, "does not answer: nothing came back", "has power"),
    "rom": (BoardInDownloadMode, "is in download mode: its ROM loader answered (it printed 'waiting for download')",
            "press RESET without holding BOOT"),
    "rom-quiet": (BoardInDownloadMode, "is in download mode: its ROM loader answered (it answered the ROM "
                                       "loader's SYNC)", "press RESET without holding BOOT"),
    "erased": (NotMicroPython, "has no firmware to run: its ROM printed 'invalid header: 0xffffffff'",
               "flash the MicroPython base image first"),
    "other": (NotMicroPython, "is not a MicroPython board", "flash the MicroPython base image first"),
}


@pytest.mark.parametrize("kind", sorted(KINDS))
def test_session_says_within_seconds_what_answered_instead(kind, capfd):
    error, message, hint = KINDS[kind]
    with FakePort(kind) as port:
        t = time.monotonic()
        with pytest.raises(error) as e:
            with Session(port):
                pass
        took = time.monotonic() - t
    assert type(e.value) is error and e.value.exit_code == 7
    assert message in e.value.message and port in e.value.message
    assert hint in e.value.hint
    assert took < ANSWER_S, f"{kind}: {took:.1f} s"
    assert capfd.readouterr().out == ""


def test_other_firmware_is_quoted():
    with FakePort("other") as port:
        with pytest.raises(NotMicroPython) as e:
            with Session(port):
                pass
    assert "'$GPGGA,123519,4807.038,N" in e.value.message
    assert f"fleet flash --port {port} --board BOARD --firmware" in e.value.hint


def test_micropython_that_ignores_ctrl_c_waits_the_full_timeout_and_says_so():
    with FakePort("repl-stuck") as port:
        t = time.monotonic()
        with pytest.raises(BoardNotAnswering) as e:
            with Session(port, timeout=session_mod.ANSWER_TIMEOUT_S + 2):
                pass
        took = time.monotonic() - t
    assert type(e.value) is BoardNotAnswering
    assert "runs MicroPython but gave no raw REPL" in e.value.message
    assert took >= session_mod.ANSWER_TIMEOUT_S + 1.5  # a slow MicroPython board is given its full time


@pytest.mark.parametrize("command,kind", [("flash", "silent"), ("enroll", "other"), ("checkin-key", "rom")])
def test_commands_report_what_answered_with_exit_7_and_no_retries(command, kind, registry_env):
    _, message, hint = KINDS[kind]
    with FakePort(kind) as port:
        proc, took = timed(*COMMANDS[command](port, registry_env))
    assert proc.returncode == BoardNotAnswering.exit_code == 7, proc.stderr
    assert message in proc.stderr and hint in proc.stderr.split("hint: ", 1)[1]
    assert "gave up after" not in proc.stderr and "resume" not in proc.stderr
    assert took < STARTUP_S + ANSWER_S, f"{command} on a {kind} port took {took:.0f} s"


IMAGE_ROUTE = {  # fleet flash's default route wants the ROM loader in download mode: what came instead
    "silent": "nothing came back",
    "other": "another device or firmware answered (",
    "erased": "an ESP32 not in download mode answered (its ROM printed 'invalid header: 0xffffffff'",
}


@pytest.mark.parametrize("kind", sorted(IMAGE_ROUTE))
def test_the_image_route_says_what_answered_instead_of_the_rom_loader(kind, registry_env):
    with FakePort(kind) as port:
        proc, took = timed("flash", "--port", port, "--board", "virtual", "--json")
    assert proc.returncode == FlashToolError.exit_code == 54, proc.stderr
    e = json.loads(proc.stderr)  # nothing but the error: esptool's own warnings stay out of it
    assert e["error"].startswith(f"no ROM loader answers on {port}: {IMAGE_ROUTE[kind]}")
    assert "download mode" in e["hint"]
    if kind == "other":
        assert "'$GPGGA,123519" in e["error"] and "pick the board's port" in e["hint"]
    assert took < STARTUP_S + ANSWER_S, f"fleet flash on a {kind} port took {took:.0f} s"
