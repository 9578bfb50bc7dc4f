"""Two app slots as littlefs stores them, on a virtual board with the partition table MicroPython's OTA build
has on a 4 MiB ESP32 (`virtual_4mib_ota`: vfs 0x310000-0x400000, 240 blocks of 4 KiB). A release of 30
small files more than today's takes 30 more blocks per slot for 6 KB more bytes: `fleet release build`
refuses it, and the board shows why: without that check its update into slot b runs out of flash (ENOSPC)
and the board stays on what it ran, with the partial slot's blocks given back (docs/boards.md, "App
budget")."""

from dataclasses import replace

import pytest

from fleet import boards
from fleet.errors import AppTooBig
from lab.ota import HEAP, Lab, Repl, provision

DEV = "70B3D57ED00005A0"
BOARD = "virtual_4mib_ota"
EXTRA = {f"bysans/table{i:02d}.dat": f"{i:02d}" * 100 for i in range(30)}  # 200 bytes each: a block each


def test_a_release_over_the_slot_budget_is_refused_and_would_not_install(make_board, tmp_path):
    lab = Lab(tmp_path / "lab")
    r1 = lab.build("1.0.0", board=BOARD)                    # today's app: fits one of the two slots
    with pytest.raises(AppTooBig) as refused:
        lab.build("2.0.0", board=BOARD, extra=EXTRA)
    e = refused.value
    assert e.blocks > e.budget_blocks and e.size < e.budget  # over in blocks, far under in bytes

    board = boards.get(BOARD)                               # the same release, the check lifted
    lifted = replace(board, definition={k: v for k, v in board.definition.items() if k != "app_budget"})
    r2 = lab.build("2.0.0", board=lifted, extra=EXTRA)
    lab.publish(r1)
    lab.serve()
    try:
        b = make_board(board=BOARD, heap=HEAP, scenario=lab.wifi_scenario)
        provision(b, r1, lab.root1, lab.config(DEV))
        r = Repl(b)
        r.run("import machine")
        r.c.write(b"\x02")
        b.reset()
        r.reconnect()
        lab.publish(r2)
        out = r.poll()
        assert out is not None, "the update installed: the slot budget is not what littlefs needs"
        assert (out["state"], out["reason"]) == ("error", "FLASH") and "28" in out["detail"], out  # ENOSPC
        assert (r.state()["version"], r.state()["slot"]) == ("1.0.0", "a")
        assert r.files_ok()
        assert "b" not in r.json("import os, json\nprint(json.dumps(os.listdir('/')))")  # its blocks given back
        assert r.poll()["reason"] == "FLASH"  # and again on the next try: never a crash, the node lives on
    finally:
        lab.stop()
