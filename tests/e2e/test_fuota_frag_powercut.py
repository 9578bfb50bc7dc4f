"""A FUOTA fragmentation session on a virtual board (its simulated flash, a real interpreter) survives power
cuts at random moments: the board boots again, carries on where the session was, and rebuilds the block;
the filesystem is never reformatted. The decoder is firmware/bysans/fuota/frag.py, copied onto the board."""

import hashlib
import os
import random
import re
import time

from fleet.fuota.fragments import encode
from fleet.resources import firmware_dir
from lab.serialconsole import Console

CUTS = int(os.environ.get("BYSANS_FUOTA_CUTS", "6"))
SIZE, R = 32, 40

# main.py: a stand-in for the air. The fragments are in frags.bin, `pos` is the next one the server sends
# (renamed into place after each fragment). After a boot the fragment at `pos` is lost (sent while the board
# was off) and the rest follow; the decoder's own state is only what frag.py keeps in flash.
FEEDER = """
import os, hashlib, binascii, time
from bysans.fuota import frag, frag_spec as fs
class Store:
    root = 'fuota'
    timeout_s = 1000000
    def now(self):
        return 1000
st = Store()
REC = %(rec)d
def pos():
    try:
        with open('pos') as f:
            return int(f.read())
    except (OSError, ValueError):
        return -1
def setpos(p):
    with open('pos.tmp', 'w') as f:
        f.write(str(p))
    os.rename('pos.tmp', 'pos')
p = pos()
print('BOOT', p, frag.session(st))
if p < 0:
    try:
        os.mkdir(st.root)
    except OSError:
        pass
    print('SETUP', frag.handle(binascii.unhexlify(%(setup)r), st))
    p = 0
else:
    p += 1
setpos(p)
with open('frags.bin', 'rb') as f:
    while frag.block_path(st) is None and p < %(total)d:
        f.seek(p * REC)
        frag.handle(f.read(REC), st)
        p += 1
        setpos(p)
        print('FED', p)
        time.sleep_ms(10)  # as fragments come over the air, not at flash speed: the host can cut between them
path = frag.block_path(st)
if path:
    h = hashlib.sha256()
    with open(path, 'rb') as f:
        while True:
            b = f.read(256)
            if not b:
                break
            h.update(b)
    print('REBUILT', binascii.hexlify(h.digest()).decode(), frag.session(st))
else:
    print('INCOMPLETE', frag.session(st))
"""


def _put(c, path, data: bytes):
    c.exec(f"f = open({path!r}, 'wb')")
    for i in range(0, len(data), 1024):
        c.exec(f"f.write({data[i:i + 1024]!r})")
    c.exec("f.close()")


def test_power_cuts_during_a_fragment_session_end_in_the_rebuilt_block(vboard):
    rng = random.Random(os.environ.get("BYSANS_SEED", "201"))
    data = rng.randbytes(24 * SIZE - 5)
    session, payloads = encode(data, SIZE, R)
    c = Console(vboard.port, timeout=30)
    try:
        c.raw_repl()
        c.exec("import os\nfor d in ('bysans', 'bysans/fuota'):\n    try:\n        os.mkdir(d)\n"
               "    except OSError:\n        pass")
        for name in ("fuota/frag.py", "fuota/frag_spec.py", "device_spec.py"):
            _put(c, "bysans/" + name, (firmware_dir() / "bysans" / name).read_bytes())
        _put(c, "frags.bin", b"".join(payloads))
        main = FEEDER % {"rec": 3 + SIZE, "setup": session.setup_req().hex(), "total": len(payloads)}
        _put(c, "main.py", main.encode())
        vboard.reset()
        log = b""
        cuts = 0
        while cuts < CUTS:
            chunk = c.read_until(b"\n")
            log += chunk
            if b"REBUILT" in chunk or b"INCOMPLETE" in chunk:
                break
            if b"FED " in chunk:
                time.sleep(rng.uniform(0.0, 0.02))
                vboard.powercut()
                cuts += 1
                log += c.read_until(b"BOOT ")  # what it printed before the cut, then the next boot
        log += c.read_until(b"REBUILT", timeout=120) if b"REBUILT" not in log else b""
        log += c.read_until(b"\n")
    finally:
        c.close()
    assert b"Performing initial setup" not in log, "the filesystem had to be reformatted"
    assert cuts >= min(CUTS, 3), log[-500:]
    assert log.count(b"BOOT ") == cuts + 1, "each cut is followed by a boot"
    partial = re.findall(rb"BOOT \d+ \(0, 24, 32, 5, b'\\x00\\x00\\x00\\x00', (\d+), (\d+)\)", log)
    assert len(partial) == cuts, log[-800:]
    if partial and int(partial[-1][1]) == 0:  # the last cut came after the last fragment: the block was whole
        partial = partial[:-1]
    assert all(int(missing) > 0 for _, missing in partial), log[-800:]
    assert [int(got) for got, _ in partial] == sorted(int(got) for got, _ in partial)  # nothing forgotten
    digest = re.search(rb"REBUILT ([0-9a-f]{64})", log).group(1).decode()
    assert digest == hashlib.sha256(data).hexdigest()
