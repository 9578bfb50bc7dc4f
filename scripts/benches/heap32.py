"""firmware.wake_peak_heap_32bit: the peak heap of a whole wake (sampling, LoRaWAN join and uplink, an OTA
check-in verifying the release) on the 32-bit interpreter, on the TTGO LoRa32 as Bysans ships it: its own
MicroPython build (ROMFS app slots, the firmware's names frozen: boards/ttgo_lora32_v21.json "micropython",
docs/boards.md "Heap"), i.e. `virtual_ttgo_rom`: the smallest heap, to 2 KiB, the wake runs in three times out
of three (lab/wake.py). Baseline: the same wake on the 64-bit port (board `virtual`: the same node with more
sensors and an SX1262). Goal: at most 60 % of the TTGO's heap. The line also carries `stock_micropython`: the
same wake on `virtual_ttgo`, a TTGO on stock ESP32_GENERIC, which does not fit (why the TTGO ships our build).

firmware.wake_peak_heap_32bit_stock: that stock figure as a line of its own; baseline: the first line's value,
from the same run. Both need the virtual board's interpreter (scripts/build-micropython32-rom)."""

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
    from fleet.sim.vrom import runs_rom

    if not runs_rom(micropython32_path()):
        raise RuntimeError("the 32-bit MicroPython is not the virtual board's own (no ROMFS): build it with "
                           "scripts/build-micropython32-rom")
    ttgo = boards.load("ttgo_lora32_v21")
    ttgo_k = _kib(ttgo["heap"])
    with tempfile.TemporaryDirectory() as d:
        os.environ.setdefault("BYSANS_SIM_DIR", str(Path(d) / "sim"))
        with WakeLab(Path(d) / "wrom", "virtual_ttgo_rom", name="heap32rom") as w:
            shipped = w.smallest_heap(16, 512)
        with WakeLab(Path(d) / "w32", "virtual_ttgo", name="heap32") as w:
            stock = w.smallest_heap(16, 512)
        with WakeLab(Path(d) / "w64", "virtual", name="heap64") as w:
            peak64 = w.smallest_heap(16, 1024)
    common = {"unit": "bytes", "board_heap": ttgo_k * 1024, "board": "ttgo_lora32_v21",
              "goal": round(0.6 * ttgo_k * 1024), "runs_per_heap": 3}
    return [{"bench": "firmware.wake_peak_heap_32bit", "value": shipped and shipped * 1024,
             "baseline": peak64 and peak64 * 1024, "baseline_unit": "bytes (64-bit unix port)",
             "share_of_board_heap": shipped and round(shipped / ttgo_k, 2), "micropython": ttgo["micropython"],
             "virtual_board": "virtual_ttgo_rom", "stock_micropython": stock and stock * 1024, **common},
            {"bench": "firmware.wake_peak_heap_32bit_stock", "value": stock and stock * 1024,
             "baseline": shipped and shipped * 1024,
             "baseline_unit": "bytes (the same wake on Bysans's build: the first line)",
             "share_of_board_heap": stock and round(stock / ttgo_k, 2), "virtual_board": "virtual_ttgo",
             **common}]


BENCHES = [(("firmware.wake_peak_heap_32bit", "firmware.wake_peak_heap_32bit_stock"), _run)]
