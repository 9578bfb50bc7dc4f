"""release.slot_blocks_ttgo: the 4 KiB blocks one app slot of today's release takes on the TTGO LoRa32
(`fleet release build`'s count, fleet/release/flashspace.py: on the TTGO, whose slots are ROMFS images, the
image's bytes in blocks), with the board's budget per slot in the line; `littlefs_blocks`: what the same slot
takes as littlefs files on a stock 4 MiB ESP32 (the T-Beam: whole blocks per file over 128 bytes, two per
directory). Baseline: the release's bytes in 4096-byte blocks (docs/boards.md, "App budget")."""

import tempfile
from pathlib import Path

from fleet.release import build


def _slot():
    with tempfile.TemporaryDirectory() as d:
        built = build.build("ttgo_lora32_v21", "1.0.0", Path(d) / "rel", counter=1)
        files = build.build("tbeam", "1.0.0", Path(d) / "rel-tbeam", counter=1)
    return [{"bench": "release.slot_blocks_ttgo", "value": built.blocks, "unit": "blocks",
             "baseline": -(-built.bytes // 4096), "budget_blocks": built.budget_blocks, "files": built.files,
             "bytes": built.bytes, "littlefs_blocks": files.blocks}]


BENCHES = [(["release.slot_blocks_ttgo"], _slot)]
