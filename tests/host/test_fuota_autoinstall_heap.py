"""The install boot the node app runs by itself (bysans.fuota.autoinstall, called from bysans.app before
anything else) fits the smallest board's heap on the 32-bit unix port (objects as on an ESP32, docs/boards.md):
with the app's module loaded as main.py loads it, the boot counts its try, installs the signed delta payload
through the OTA client's verifier and slot, and resets; the block is gone, the slot switched and the update
report pending ("installed", resolved to confirmed by the next wake). A forged payload in the same boot is
refused and removed, and its report says refused."""

import json
import time

import mp32support

from fleet.codec.update_report import decode_report
from fleet.fuota.payload import build
from fleet.resources import firmware_dir
from lab.ota import Lab
from release_support import run_mp
from test_fuota_update_report import _board  # a board tree running 1.0.0 with a rebuilt block


def _payloads(base):
    """1.0.0, and 2.0.0 as a signed delta payload: (payload, the same with a signature byte flipped, its
    counter, lab, 1.0.0's folder)."""
    import zlib

    lab = Lab(base / "lab")
    r1 = lab.build("1.0.0")
    src = (firmware_dir() / "bysans" / "sampler.py").read_bytes()
    r2 = lab.derive(r1, "2.0.0", files={"bysans/sampler.mpy": src + b"\n_AUTO = 2\n"})
    p = build(r2, board="virtual", kommune="751", base_body=(r1 / "release.json").read_bytes())
    sig_at = p.data.index(json.loads((r2 / "release.json").read_bytes().split(b"\n")[1])[0]["sig"].encode()) + 10
    forged = bytearray(p.data)
    forged[sig_at] ^= 0x01
    forged[-4:] = (zlib.crc32(bytes(forged[:-4])) & 0xFFFFFFFF).to_bytes(4, "little")
    return p.data, bytes(forged), p.counter, lab, r1

_BOOT = """
import json, os
from bysans import app  # as main.py leaves it: the app's module stays in the heap under the install boot
from bysans.fuota import autoinstall
autoinstall.ROOT = TREE + '/'
class Board:
    name = 'virtual'
    definition = {}
    def epoch_s(self):
        return NOW
    def watchdog(self, ms):
        return self
    def feed(self):
        pass
    def rtc_memory(self, data=None):
        return bytes(64) if data is None else None
    def reset(self):
        print('RESET')
    def soft_reset(self):
        print('SOFT-RESET')
    def deepsleep(self, ms):
        print('SLEEP', ms)
mark = TREE + '/fuota.due'
with open(mark, 'w') as f:
    f.write('%d 30000 0' % (NOW + 60))
print(autoinstall.run(Board(), TREE + '/fuota/frag.bin', mark))
def gone(p):
    try:
        os.stat(p)
        return False
    except OSError:
        return True
with open(TREE + '/ota/client.json') as f:
    print('STATE', f.read())
with open(TREE + '/ota/report') as f:
    print('REPORT', f.read())
print('GONE', json.dumps([gone(TREE + '/fuota/frag.bin'), gone(mark)]))
"""


def _boot(root, interpreter, heap):
    now = int(time.time())
    out = run_mp(_BOOT.replace("NOW", str(now)).replace("TREE", repr(str(root))), heap=heap, interpreter=interpreter,
                 timeout=600)
    lines = out.splitlines()
    state = json.loads([ln for ln in lines if ln.startswith("STATE ")][0][6:])
    report = [ln for ln in lines if ln.startswith("REPORT ")][0][7:].split()
    gone = json.loads([ln for ln in lines if ln.startswith("GONE ")][0][5:])
    return out, state, report, gone


def test_the_apps_install_boot_fits_the_smallest_boards_heap_on_32_bits(tmp_path):
    interpreter, heap = mp32support.require(), mp32support.smallest_board_heap()
    good, forged, counter, lab, r1 = _payloads(tmp_path)
    out, state, report, gone = _boot(_board(tmp_path / "good", r1, lab, good), interpreter, heap)
    assert "fuota install: installed" in out and "RESET" in out and "SLEEP" not in out, out
    assert state["state"] == "installed" and gone == [True, True], (state, gone)
    assert report[:3] == ["1", "0", str(counter)]  # installed, this release's counter
    out, state, report, gone = _boot(_board(tmp_path / "forged", r1, lab, forged), interpreter, heap)
    assert "fuota install: failed BAD_SIGNATURE" in out and "RESET" not in out and "SLEEP" in out, out
    assert gone == [True, True]  # refused: removed, never tried again
    assert decode_report(bytes([1, int(report[0]), int(report[1])]) + int(report[2]).to_bytes(4, "big")) == \
        {"update_report": 1, "event": "refused", "reason": "BAD_SIGNATURE", "counter": counter}
