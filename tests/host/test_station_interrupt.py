"""Ctrl-C during `fleet station`: boards not yet begun are not begun, boards on their way finish their pass
(none is cut off in the middle of a write), and the message says which were done and which were not."""

import os
import signal
import threading
import time

import pytest

from fleet.cli.station import interrupted_message
from provisioning import flash as flash_mod
from provisioning import station
from provisioning.flash import FlashReport


class _Spec:
    name, virtual = "virtual", True


def test_ctrl_c_lets_the_board_on_its_way_finish_and_begins_no_other(monkeypatch):
    finished, begun = [], []

    def slow_flash(port, spec, **kw):  # stands in for a board's esptool pass
        begun.append(port)
        time.sleep(1.0)
        finished.append(port)
        return FlashReport(port=port, board=spec.name)

    monkeypatch.setattr(flash_mod, "flash", slow_flash)
    monkeypatch.setattr(flash_mod, "app_bundle", lambda b: ({}, []))
    monkeypatch.setattr(station.boards, "get", lambda name: _Spec())
    targets = [station.Target(f"/dev/ttyUSB{i}", f"/dev/ttyUSB{i}", "CP2102") for i in range(3)]
    threading.Timer(0.4, os.kill, (os.getpid(), signal.SIGINT)).start()  # Ctrl-C, the first board on its way
    with pytest.raises(KeyboardInterrupt) as e:
        station.provision_all(targets, board="virtual", max_workers=1, via="repl")
    state = e.value.station_state
    assert begun == finished == ["/dev/ttyUSB0"]  # it finished; the others never began
    assert [r.key for r in state["done"]] == ["/dev/ttyUSB0"]
    assert state["not_started"] == ["/dev/ttyUSB1", "/dev/ttyUSB2"]
    message, hint = interrupted_message(state)
    assert "not begun: /dev/ttyUSB1, /dev/ttyUSB2" in message and "/dev/ttyUSB0" in message
    assert "run 'fleet station' again" in hint
