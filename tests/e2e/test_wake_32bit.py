"""A whole wake on the 32-bit interpreter at the smallest board's heap (TTGO LoRa32, docs/boards.md):
sampling, the LoRaWAN join and an uplink over the simulated air, and an OTA check-in that verifies the
release the board runs (lab/wake.py). Needs the 32-bit MicroPython (BYSANS_MICROPYTHON32, or
scripts/build-micropython32-rom's default place); without it the test is skipped and the run says so.

On a TTGO whose MicroPython has ROMFS (`virtual_ttgo_rom`) the running release is written into the romfs
partition at boot and runs in place (docs/virtual-board.md, "ROMFS"), and the firmware's names are static
qstrs of that build (docs/boards.md, "Heap"): that wake needs about 60 % of the TTGO's heap. With stock
MicroPython (`virtual_ttgo`) it does not fit the TTGO's heap yet."""

import mp32support
import pytest

from fleet import boards
from fleet.release.build import MANIFEST
from fleet.sim import flashmap, manager
from lab.wake import WakeLab


def _wake_at_the_ttgo_heap(tmp_path, board, interpreter, heap=None):
    ttgo = boards.load("ttgo_lora32_v21")["heap"]
    assert boards.load(board)["heap"] == ttgo
    heap = heap or ttgo
    with WakeLab(tmp_path, board, interpreter=interpreter) as w:
        ok, lines = w.wake(heap)
        assert ok, w.last_text[-3000:]
    [wake] = [ln for ln in lines if " wake " in ln]
    assert "joined" in wake and "sent 1" in wake, wake
    assert any("ota: confirmed" in ln for ln in lines), lines
    return w


@pytest.mark.xfail(strict=True, reason="why the TTGO ships Bysans's MicroPython build (boards/ttgo_lora32_v21.json "
                   "'micropython', docs/boards.md 'Heap'): on stock MicroPython the wake needs 124-136K on 32 bits "
                   "(scripts/bench.py firmware.wake_peak_heap_32bit_stock), more than the TTGO's 112K: the cycle's "
                   "boot loads the LoRaWAN MAC on top of the cycle's modules (the check-in's own boot runs from "
                   "about 100K); on the build it fits (the next tests; 66K in the bench). strict: if stock ever "
                   "fits, this fails, and the board file may go back to the generic build")
def test_whole_wake_runs_at_the_ttgo_heap_on_32_bits(tmp_path, mp32):
    _wake_at_the_ttgo_heap(tmp_path, "virtual_ttgo", mp32)


def test_whole_wake_runs_at_the_ttgo_heap_with_the_release_in_romfs(tmp_path, mp32rom):
    w = _wake_at_the_ttgo_heap(tmp_path, "virtual_ttgo_rom", mp32rom)
    # the board itself wrote its running release into the romfs partition: its signed manifest is there
    flash = (manager.sim_root() / w.name / "flash.img").read_bytes()
    [part] = [p for p in flashmap.parse_table(flash[flashmap.TABLE_OFFSET:flashmap.TABLE_OFFSET + 0x1000])
              if p.label == flashmap.ROMFS_LABEL]
    rom = flash[part.offset:part.offset + part.size]
    assert rom[:3] == b"\xd2\xcd\x31"
    manifest = (w.lab.rel / MANIFEST).read_bytes().split(b"\n", 1)[0]  # the slot's manifest.json
    assert manifest in rom


def test_the_wake_with_the_release_in_romfs_runs_in_60_percent_of_the_ttgo_heap(tmp_path, mp32rom):
    # The goal is 60 % (docs/boards.md, "Heap"), 66K. The wake's edge is now 64K (the cycle's boot with the MAC
    # loaded: 13 wakes of 16 passed there; the check-in's boot runs from 60K), so it passes at 66K every time,
    # one step above that edge, with no MemoryError anywhere (lab/wake.py: not even one the LoRaWAN sink
    # swallowed): this fails when the wake grows back towards the 74K it needed while each frame-counter write
    # read RTC memory whole (bysans.hal.rtcmem).
    goal_k = int(0.6 * mp32support.heap_bytes(boards.load("ttgo_lora32_v21")["heap"])) // 1024 // 2 * 2
    assert goal_k == 66
    _wake_at_the_ttgo_heap(tmp_path, "virtual_ttgo_rom", mp32rom, heap=f"{goal_k}K")
