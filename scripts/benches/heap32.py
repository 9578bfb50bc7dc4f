"""firmware.wake_peak_heap_32bit: the peak heap of a whole wake (sampling, LoRaWAN join and uplink, an OTA
check-in verifying the release) on the 32-bit interpreter: the smallest heap, to 2 KiB, the wake runs in three times out of three on
`virtual_ttgo` (lab/wake.py). Baseline: the same wake on the 64-bit port (board `virtual`: the same
node with more sensors and an SX1262). Goal: at most 60 % of the TTGO LoRa32's heap (docs/boards.md).

firmware.wake_peak_heap_32bit_romfs: the same wake on `virtual_ttgo_rom`, a TTGO whose MicroPython has
ROMFS, the release running in place from its romfs partition (docs/virtual-board.md, "ROMFS"), and the
firmware's names frozen in that build (docs/boards.md, "Heap"); baseline:
the first line's value, from the same run. Needs the virtual board's interpreter (build-micropython32-rom)."""

import tempfile
from pathlib import Path

from fleet import boards
from fleet.resources import micropython32_path



def _kib(heap):
    return int(heap[:-1]) * {"K": 1, "M": 1024}[heap[-1]]


def _run():
    import os

    from lab.wake import WakeLab

    if micropython32_path() is None:
        raise RuntimeError("no 32-bit MicroPython: build it with scripts/build-micropython32-rom and set "
                           "BYSANS_MICROPYTHON32")
    ttgo_k = _kib(boards.load("ttgo_lora32_v21")["heap"])
    from fleet.sim.vrom import runs_rom

    rom = runs_rom(micropython32_path())
    with tempfile.TemporaryDirectory() as d:
        os.environ.setdefault("BYSANS_SIM_DIR", str(Path(d) / "sim"))
        with WakeLab(Path(d) / "w32", "virtual_ttgo", name="heap32") as w:
            peak32 = w.smallest_heap(16, 512)
        peak_rom = None
        if rom:
            with WakeLab(Path(d) / "wrom", "virtual_ttgo_rom", name="heap32rom") as w:
                peak_rom = w.smallest_heap(16, 512)
        with WakeLab(Path(d) / "w64", "virtual", name="heap64") as w:
            peak64 = w.smallest_heap(16, 1024)
    common = {"unit": "bytes", "board_heap": ttgo_k * 1024, "board": "ttgo_lora32_v21",
              "goal": round(0.6 * ttgo_k * 1024), "runs_per_heap": 3}
    out = [{"bench": "firmware.wake_peak_heap_32bit", "value": peak32 and peak32 * 1024,
            "baseline": peak64 and peak64 * 1024, "baseline_unit": "bytes (64-bit unix port)",
            "share_of_board_heap": peak32 and round(peak32 / ttgo_k, 2), **common}]
    if rom:
        out.append({"bench": "firmware.wake_peak_heap_32bit_romfs", "value": peak_rom and peak_rom * 1024,
                    "baseline": peak32 and peak32 * 1024, "baseline_unit": "bytes (the same wake without ROMFS)",
                    "share_of_board_heap": peak_rom and round(peak_rom / ttgo_k, 2), **common})
    return out


BENCHES = [(("firmware.wake_peak_heap_32bit", "firmware.wake_peak_heap_32bit_romfs"), _run)]
