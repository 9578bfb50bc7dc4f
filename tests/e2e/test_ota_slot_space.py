"""Two app slots as littlefs stores them, on a virtual board with a 4 MiB ESP32's partition table: an update
into the second slot on MicroPython's 4MiB-ota table (vfs 240 blocks) runs out of flash, which is why the
4 MiB boards ship the stock 4MiBplus table and `fleet release build` counts blocks (docs/boards.md)."""

from dataclasses import replace

from fleet import boards
from lab.ota import HEAP, Lab, Repl, provision

DEV = "70B3D57ED00005A0"


def _update(make_board, tmp_path, board_name, *, lift_budget=False):
    """Provisions release 1.0.0 into slot a of a `board_name` board and polls for 2.0.0; the poll's outcome
    (None: installed, switched, reset) and the Repl."""
    lab = Lab(tmp_path / board_name)
    board = boards.get(board_name)
    if lift_budget:  # what the board would meet without the build's check: the release must reach the board
        d = {k: v for k, v in board.definition.items() if k != "app_budget"}
        board = replace(board, definition=d)
    r1 = lab.build("1.0.0", board=board)
    r2 = lab.derive(r1, "2.0.0")
    lab.publish(r1)
    lab.serve()
    try:
        b = make_board(board=board_name, heap=HEAP, scenario=lab.wifi_scenario)
        provision(b, r1, lab.root1, lab.config(DEV))
        r = Repl(b)
        r.run("import machine")
        r.c.write(b"\x02")
        b.reset()
        r.reconnect()
        lab.publish(r2)
        out = r.poll()
        return out, r
    finally:
        lab.stop()


def test_a_second_slot_does_not_fit_4mib_ota_and_does_fit_4mibplus(make_board, tmp_path):
    out, r = _update(make_board, tmp_path, "virtual_4mib_ota", lift_budget=True)
    assert out is not None and out["state"] != "confirmed", out
    assert "ENOSPC" in str(out) or "28" in str(out), out   # littlefs ran out of blocks in slot b
    assert r.state()["version"] == "1.0.0"                  # still runs what it ran
    free = r.json("import os, json\ns = os.statvfs('/')\nprint(json.dumps([s[0], s[2], s[3]]))")
    assert free[0] == 4096 and free[1] == 240

    out, r = _update(make_board, tmp_path, "virtual_sx1276")   # the TTGO's pins, its stock table
    assert out is None, out
    assert r.state()["version"] == "2.0.0"
