"""A TTGO whose MicroPython has ROMFS (`virtual_ttgo_rom`, docs/virtual-board.md "ROMFS"): the release in the
slot that boots is written into the romfs partition at boot (bysans/ota/romfs.py) and runs from /rom, at the
TTGO's heap; when the slot holds another release (an update, a rollback, a board provisioned again), the
next boot writes that one into the ROM. Needs the virtual board's 32-bit interpreter
(scripts/build-micropython32-rom)."""

from fleet import boards
from lab.ota import Lab, Repl, provision

DEV = "70B3D57ED0000071"
BOARD = "virtual_ttgo_rom"


def _boot(b):
    r = Repl(b)
    r.run("import machine")
    r.c.write(b"\x02")  # friendly REPL, then reset: the board boots its slot as a board in the field does
    b.reset()
    r.reconnect()
    return r, r.state()


def test_the_rom_follows_the_release_in_the_slot_that_runs(make_board, tmp_path, mp32rom):
    lab = Lab(tmp_path / "ota")
    try:
        r1 = lab.build("1.0.0", board=BOARD)
        r2 = lab.derive(r1, "2.0.0")
        b = make_board(board=BOARD, interpreter=mp32rom, heap=boards.load(BOARD)["heap"])
        provision(b, r1, lab.root1, lab.config(DEV))
        r, st = _boot(b)
        assert (st["version"], st["app"], st["slot"], st["path"]) == ("1.0.0", "1.0.0", "a", "/rom")
        assert "1.0.0" in r.run("print(open('/rom/bysans/version.mpy', 'rb').read())")
        r.close()
        provision(b, r2, lab.root1, lab.config(DEV))  # slot a now holds 2.0.0; the ROM still 1.0.0
        r, st = _boot(b)
        assert (st["version"], st["app"], st["slot"], st["path"]) == ("2.0.0", "2.0.0", "a", "/rom")
        assert r.files_ok()
        assert "2.0.0" in r.run("print(open('/rom/bysans/version.mpy', 'rb').read())")
        r.close()
    finally:
        lab.stop()
