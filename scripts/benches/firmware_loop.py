"""firmware.sample_alloc_bytes and firmware.loop_speedup: the waste node's per-sample path in the
`micropython` binary — WasteNode.sample, the fused viper call the node's cycle makes on every wake whose
readings are all valid (bysans/waste_cycle.py; tests/firmware/mp_test_node.py checks that it does), against the same algorithm written plainly with floats and lists (same input, same
process; scripts/benches/_loop_mp.py). Heap 2 MB, an ESP32-S3 with PSRAM's order (a smaller heap cannot
hold the float version's input lists)."""

import json
import subprocess
from pathlib import Path

from fleet.resources import firmware_dir, micropython_path

HERE = Path(__file__).resolve().parent


def _run():
    out = subprocess.run([micropython_path(), "-X", "heapsize=2M", str(HERE / "_loop_mp.py"), str(firmware_dir())],
                         capture_output=True, text=True, timeout=300, check=True).stdout
    r = json.loads(out.strip().splitlines()[-1])
    return [
        {"bench": "firmware.sample_alloc_bytes", "value": r["alloc_bytes_per_sample"], "unit": "bytes/sample",
         "baseline": None, "goal": 0, "samples": r["ticks"]},
        {"bench": "firmware.loop_speedup", "value": round(r["fixed_per_s"] / r["float_per_s"], 2), "unit": "x",
         "baseline": r["float_per_s"], "baseline_unit": "samples/s (floats and lists)",
         "fixed_per_s": r["fixed_per_s"], "goal": 10,
         "path": "WasteCycle.sample -> WasteNode.sample (fused viper)"},
    ]


BENCHES = [(("firmware.sample_alloc_bytes", "firmware.loop_speedup"), _run)]
