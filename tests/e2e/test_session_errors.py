"""What a technician sees when the port or the board is not there: a named error with a hint."""

import pytest

from fleet.errors import BoardNotAnswering, SerialPortError
from provisioning.session import Session


def test_missing_port():
    with pytest.raises(SerialPortError) as e:
        with Session("/dev/ttyUSB-not-here"):
            pass
    assert "cannot open serial port /dev/ttyUSB-not-here" in e.value.message
    assert "USB cable" in e.value.hint


def test_board_without_power_does_not_answer(vboard, capfd):
    vboard.powercut(off_s=30)
    with pytest.raises(BoardNotAnswering) as e:
        with Session(vboard.port, timeout=1.5):
            pass
    assert "does not answer" in e.value.message and "reset" in e.value.hint
    assert capfd.readouterr().out == ""  # library code never prints (mpremote's own raw-REPL entry would)


def test_port_that_vanishes_mid_session(make_board):
    board = make_board()
    port = board.port
    with pytest.raises((SerialPortError, BoardNotAnswering)) as e:
        with Session(port) as s:
            assert s.exec("print(1)").strip() == "1"
            board.stop()
            s.exec("print(2)")
    assert port in e.value.message
