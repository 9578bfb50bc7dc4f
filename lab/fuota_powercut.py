"""Power cuts while virtual boards take releases over FUOTA: the fragments fed to the board's decoder
(bysans.fuota.frag), then the rebuilt block installed (bysans.fuota.install), with the power cut at a random
moment of the whole (session, install, switch, reset, first boot). After every cut the board must come back
running a confirmed slot whose every file matches its manifest, the old release or the new one. Used by
scripts/benches/fuota.py (fuota.bricked)."""

import hashlib
import random
import threading
import time

from fleet.fuota.fragments import encode
from fleet.fuota.payload import build
from fleet.release import metadata

from .ota import boot_into_slots, count_cut, provision

SIZE = 48  # EU868 DR0's largest fragment
# A session and its install in one script need more than lab.ota.HEAP (256K) on the 64-bit unix port, whose
# objects are about twice an ESP32's: at 256K the install ran out of memory after the session. The ESP32's own
# budget is checked on the 32-bit port instead: the same session and install in one process, at the smallest
# board's heap (112K), in tests/host/test_fuota_payload.py.
HEAP = "320K"

# One session as the board runs it: the fragments that reached it (frags.bin, `rec` bytes each) fed to its
# decoder after the setup; the rebuilt block is /fuota/frag.bin. Also tests/e2e/test_fuota_install.py's.
FEED = """
import binascii, os
from bysans.device_spec import FUOTA_FRAG
from bysans.fuota import frag
class Store:
    root = FUOTA_FRAG
    timeout_s = 10000000
    def now(self):
        return 1000
st = Store()
try:
    os.mkdir(st.root)
except OSError:
    pass
print('SETUP', frag.handle(binascii.unhexlify(%(setup)r), st))
with open('frags.bin', 'rb') as f:
    while frag.block_path(st) is None:
        p = f.read(%(rec)d)
        if not p:
            break
        frag.handle(p, st)
print('BLOCK', frag.block_path(st), frag.session(st))
"""
# ... and its install in the same script
SESSION_AND_INSTALL = FEED + """
from bysans.fuota import install
print('OUTCOME', install.install('/fuota/frag.bin'))
"""


def put_file(r, path, data: bytes):
    """Writes `data` to `path` on a board through its raw REPL (lab.ota.Repl), 1 KiB per exec."""
    r.run(f"f = open({path!r}, 'wb')")
    for i in range(0, len(data), 1024):
        r.run(f"f.write({data[i:i + 1024]!r})")
    r.run("f.close()")


def _wait_reset(r, timeout=120.0):
    c = r.c
    deadline = time.monotonic() + timeout
    while b"rst:" not in c.buf:
        if b"OUTCOME" in c.buf and b"\x04>" in c.buf[c.buf.index(b"OUTCOME"):]:
            raise AssertionError(f"the install did not switch: {c.buf[-400:]!r}")
        if time.monotonic() > deadline:
            raise TimeoutError(f"no reset: {c.buf[-300:]!r}")
        c.buf += c.ser.read(4096)
    c.buf = c.buf[c.buf.index(b"rst:"):]
    r.reconnect(timeout=60)


def campaign(lab, *, name, boards=4, cuts_per_board=25, seed=1, loss=0.1):
    """Returns counts: cuts, bricked, old, new, rolled_back, problems."""
    from fleet.resources import firmware_dir

    text = (firmware_dir() / "bysans" / "sampler.py").read_bytes()
    ra = lab.r1
    rb = lab.derive(ra, "2.0.0", name="rel-fcut-b", files={"bysans/sampler.mpy": text + b"\n_FCUT = 1\n"})
    bodies = {"A": metadata.body_of((ra / "release.json").read_bytes()),
              "B": metadata.body_of((rb / "release.json").read_bytes())}
    dirs = {"A": ra, "B": rb}
    signer = lab.store.signer(lab.k751, lab.pp)
    signed = {hashlib.sha256((ra / "release.json").read_bytes().split(b"\n")[0]).hexdigest():
              (ra / "release.json").read_bytes()}
    counter = [20_000]
    lock = threading.Lock()
    stats = {"cuts": 0, "bricked": 0, "old": 0, "new": 0, "rolled_back": 0, "problems": []}

    def release(which):
        """A release folder for `which` with a new counter (its files are the built release's)."""
        with lock:
            counter[0] += 1
            c = counter[0]
        data = metadata.sign(dict(bodies[which], counter=c), [signer])
        d = lab.base / f"fcut-{c}"
        d.mkdir()
        (d / "release.json").write_bytes(data)
        (d / "files").symlink_to((dirs[which] / "files").resolve())
        with lock:
            signed[hashlib.sha256(data.split(b"\n")[0]).hexdigest()] = data
        return d

    def prepare(r, rng, which, running):
        with lock:
            base = signed[running]
        p = build(release(which), board="virtual", kommune="751", base_body=base)
        session, frags = encode(p.data, SIZE, -(-p.size // SIZE) // 3 + 4)
        kept = [f for f in frags if rng.random() >= loss]
        put_file(r, "frags.bin", b"".join(kept))
        return (SESSION_AND_INSTALL % {"setup": session.setup_req().hex(), "rec": 3 + SIZE}).encode() + b"\x04"

    def run(i):
        from fleet.sim import manager

        rng = random.Random(seed * 1000 + i)
        [b] = manager.start(names=[f"{name}{i}"], erase=True, heap=HEAP)
        try:
            provision(b, ra, lab.store.latest_root_bytes(), {"device": f"FCUT{i:04d}", "kommune": "0751"}, wifi=None)
            r = boot_into_slots(b)
            st = r.state()
            # The window is measured: one whole uncut update (session, install, switch, reset) on this board.
            code = prepare(r, rng, "B", st["release"])
            t0 = time.monotonic()
            r.c.write(code)
            _wait_reset(r)
            window = 1.3 * (time.monotonic() - t0)
            st = r.state()
            if st["version"] != "2.0.0":
                raise AssertionError(f"board {i}: the uncut update did not take: {st}")
            for k in range(cuts_per_board):
                want = "B" if st["version"] == "1.0.0" else "A"
                r.c.write(prepare(r, rng, want, st["release"]))
                time.sleep(rng.uniform(0.0, window))
                b.powercut(0)
                with lock:
                    stats["cuts"] += 1
                st = count_cut(r, stats, lock, board=i, cut=k, want=want, timeout=60, sim=b)
                if st is None:
                    return
        except Exception as e:  # noqa: BLE001 - reported in the line, not a crash of the bench
            with lock:
                stats["problems"].append({"board": i, "error": repr(e)[:300]})
        finally:
            b.stop()

    threads = [threading.Thread(target=run, args=(i,)) for i in range(boards)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return stats
