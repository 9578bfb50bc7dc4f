"""pytest-embedded-serial's `dut` drives a virtual board as it drives a board on /dev/ttyUSB0."""

import pytest


@pytest.fixture
def port(vboard):  # overrides pytest-embedded's --port option with the virtual board's serial port
    return vboard.port


@pytest.fixture
def embedded_services():
    return "serial"


def test_dut_expects_board_output(dut, vboard):
    dut.write("\r\x03\x03")
    dut.expect(">>> ", timeout=5)
    dut.write("print('dut says', 6 * 7)\r")
    dut.expect("dut says 42", timeout=5)
    vboard.reset()
    dut.expect(r"rst:0x1 \(POWERON_RESET\)", timeout=5)
    dut.write("\r\x03")
    dut.expect(">>> ", timeout=5)
