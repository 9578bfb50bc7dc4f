"""release.slot_blocks_ttgo: the littlefs blocks one app slot of today's release takes on the TTGO LoRa32
(`fleet release build`'s count, fleet/release/flashspace.py: whole 4 KiB blocks per file over 128 bytes, two
per directory), with the board's budget per slot in the line. Baseline: the same release's bytes in
4096-byte blocks, what a slot would take if littlefs packed files together (docs/boards.md, "App budget")."""

import tempfile
from pathlib import Path

from fleet.release import build


def _slot():
    with tempfile.TemporaryDirectory() as d:
        built = build.build("ttgo_lora32_v21", "1.0.0", Path(d) / "rel", counter=1)
    return [{"bench": "release.slot_blocks_ttgo", "value": built.blocks, "unit": "blocks",
             "baseline": -(-built.bytes // 4096), "budget_blocks": built.budget_blocks, "files": built.files,
             "bytes": built.bytes}]


BENCHES = [(["release.slot_blocks_ttgo"], _slot)]
