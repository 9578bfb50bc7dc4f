"""The firmware's own FUOTA packages (bysans.fuota.dispatch.Fuota: clock sync, multicast setup, fragmentation)
run on the MicroPython unix port, one instance per virtual device, so host tests get the answers a node
really sends (FPorts 200-202) to the requests the host planned."""

import json
import subprocess

from fleet.resources import firmware_dir, micropython_path

ROM = firmware_dir().parent / "fleet" / "sim" / "rom"  # cryptolib's stand-in where the build has none

# Each step is one JSON line; the firmware prints one JSON line per step.
FIRMWARE = r"""
import sys, json, os
try:
    import cryptolib
except ImportError:
    sys.path.insert(0, ROM)
    import _cryptolib
    sys.modules["cryptolib"] = _cryptolib
from binascii import hexlify, unhexlify
from bysans.fuota.dispatch import Fuota, kek
from bysans.lorawan.radio import MemoryStore

class Board:
    def __init__(self, now):
        self.now = now
    def epoch_s(self):
        return self.now

devs = {}
for line in sys.stdin:
    c = json.loads(line)
    op = c["op"]
    out = None
    if op == "new":
        b = Board(c["now"])
        st = MemoryStore()
        st.root = c["root"]          # the fragmentation package's flash folder (bysans.fuota.frag)
        st.now = b.epoch_s
        try:
            os.mkdir(c["root"])
        except OSError:
            pass
        devs[c["dev"]] = Fuota(b, st, ke_key=kek(unhexlify(c["app_key"])), session_mark=None)
    elif op == "down":
        f = devs[c["dev"]]
        f.handle(c["port"], unhexlify(c["payload"]))
        out = [[p, hexlify(a).decode()] for p, a in f.queue]
        f.queue = []
    elif op == "take":
        out = [[p, hexlify(a).decode()] for p, a in devs[c["dev"]].take()]
    elif op == "advance":
        devs[c["dev"]].board.now += c["s"]
    print(json.dumps(out))
"""


def run(tmp_path, steps) -> list:
    """Runs `steps` ({"op": "new" | "down" | "take" | "advance", "dev": name, ...}) through the firmware;
    returns one result per step: for "down" and "take", the uplinks it queued as [(fport, payload bytes)]."""
    script = tmp_path / "fuota_devices.py"
    script.write_text("import sys\nsys.path.insert(0, %r)\nROM = %r\n" % (str(firmware_dir()), str(ROM)) + FIRMWARE)
    p = subprocess.run([micropython_path(), str(script)], input="".join(json.dumps(s) + "\n" for s in steps),
                       capture_output=True, text=True, timeout=120, cwd=tmp_path)
    assert p.returncode == 0, p.stderr + p.stdout
    out = [json.loads(line) for line in p.stdout.splitlines()]
    assert len(out) == len(steps), p.stdout
    return [[(port, bytes.fromhex(h)) for port, h in r] if isinstance(r, list) else r for r in out]
