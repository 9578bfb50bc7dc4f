"""The firmware's board object (bysans.hal) on a virtual board: what the app relies on."""

import pytest

from fleet import boards
from fleet.resources import firmware_dir
from provisioning.deploy import bundle, deploy
from provisioning.session import Session
from lab.serialconsole import Console


@pytest.fixture
def app_board(make_board):
    board = make_board(speed=100)
    with Session(board.port) as s:
        deploy(s, {p: d for p, d in bundle(firmware_dir()).items() if p.startswith("/bysans/hal/")
                   or p in ("/bysans/__init__.py",)})
    board.reset()
    board.wait_booted()
    return board


def test_board_object_reset_cause_rtc_i2c_and_clock(app_board):
    c = Console(app_board.port)
    try:
        c.raw_repl()
        out = c.exec("from bysans.hal import board\nb = board()\n"
                     "print(b.name, b.reset_cause(), b.i2c(0).scan())\n"
                     "print(b.i2c(0).readfrom_mem(0x76, 0xD0, 1))\n"
                     "b.rtc_memory(b'counter=7')\nprint(b.rtc_memory())\n"
                     "t = b.ticks_ms(); b.sleep_ms(1000); print(b.ticks_diff(b.ticks_ms(), t) >= 1000)")
        on_i2c0 = sorted(s["address"] for s in boards.load("virtual")["sensors"] if s.get("bus") == "i2c0")
        assert out.split("\n")[:4] == [f"virtual hard {on_i2c0}", "b'`'", "b'counter=7'", "True"]
        # deep sleep through the board object: wakes with the cause and RTC memory
        c.write(b"b.deepsleep(30000)\x04")
        c.read_until(b"DEEPSLEEP_RESET")
        app_board.wait_booted()
        c.raw_repl()
        out = c.exec("from bysans.hal import board\nb = board()\nprint(b.reset_cause(), b.rtc_memory())")
        assert out.strip() == "deepsleep b'counter=7'"
    finally:
        c.close()


def test_board_object_watchdog(app_board):
    c = Console(app_board.port)
    try:
        c.raw_repl()
        c.write(b"from bysans.hal import board\nw = board().watchdog(2000)\nimport time\n"
                b"for i in range(10):\n    w.feed()\n    time.sleep_ms(100)\nprint('alive')\n"
                b"while True:\n    time.sleep_ms(50)\n\x04")
        out = c.read_until(b"TG0WDT_SYS_RESET", timeout=15)
        assert b"alive" in out
        app_board.wait_booted()
        c.raw_repl()
        assert c.exec("from bysans.hal import board\nprint(board().reset_cause())").strip() == "watchdog"
    finally:
        c.close()
