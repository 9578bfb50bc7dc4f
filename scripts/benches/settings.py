"""firmware.settings_heap_32bit: what the settings by downlink (bysans.settings) add to a wake's heap on the
32-bit interpreter: importing the module, reading /config/settings.json with a command waiting, applying
it (the file written again) and taking one more command, bytes still allocated after a collection, from
source (a release ships .mpy, which keeps less). Baseline: the same for the node's config module
(bysans.config: importing it and loading a node.json), which every wake runs anyway. 64-bit port when the
32-bit one is not built."""

import json
import subprocess
import tempfile
from pathlib import Path

from fleet.resources import firmware_dir, micropython32_path, micropython_path

_SCRIPT = """
import gc, sys
sys.path.insert(0, %(fw)r)
gc.collect(); a0 = gc.mem_alloc()
if %(what)r == "settings":
    from bysans.settings import Settings
    st = Settings(%(path)r)
    st.apply_pending()
    st.receive(b"\\x01\\x00\\x08\\x03\\x1f\\x40")
    st.save()
else:
    from bysans import config
    cfg = config.load((), path=%(node)r, device_path="/nonexistent")
gc.collect()
print(gc.mem_alloc() - a0)
"""


def _measure(mp, what, d):
    path = str(Path(d) / "settings.json")
    Path(path).write_text(json.dumps({"seq": 7, "values": {"interval_s": 600},
                                      "pending": [[7, {"fill_alarm_bp": 8000}]], "acks": []}))
    node = str(Path(d) / "node.json")
    Path(node).write_text(json.dumps({"kind": "waste"}))
    src = _SCRIPT % {"fw": str(firmware_dir()), "what": what, "path": path, "node": node}
    out = subprocess.run([mp, "-c", src], capture_output=True, text=True, timeout=60, check=True)
    return int(out.stdout.split()[-1])


def _run():
    mp = micropython32_path() or micropython_path()
    with tempfile.TemporaryDirectory() as d:
        value = _measure(mp, "settings", d)
        base = _measure(mp, "config", d)
    return [{"bench": "firmware.settings_heap_32bit", "value": value, "unit": "bytes", "baseline": base,
             "baseline_unit": "bytes (bysans.config loaded)",
             "interpreter": "32-bit" if micropython32_path() else "64-bit"}]


BENCHES = [(("firmware.settings_heap_32bit",), _run)]
