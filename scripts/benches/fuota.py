"""FUOTA benchmarks (LoRaWAN TS004 fragmentation, firmware/bysans/fuota/frag.py).

fuota.decode_ms_per_fragment: the device's handling of one DataFragment (bysans.fuota.frag.handle: checks,
the flash log, the GF(2) reduction against the pivots so far, the working rows, and the back substitution
and the rebuilt file at the end, shared over the fragments), averaged over a session of 200 fragments of 48
bytes (9 600 bytes: EU868 DR0's largest fragment) plus 40 coded ones, 10 % of them lost at random (fixed
seed), on the MicroPython unix port — the 32-bit one (as an ESP32's objects) at the smallest board's heap when
it is there (BYSANS_MICROPYTHON32, ../shared/tools/build-micropython32), else the 64-bit one, named in the
line. Also in the line: the largest heap growth seen between fragments (`heap_bytes`) and what importing
frag.py and frag_spec.py from source takes (`import_heap_bytes`), and `replay_ms`: the first look at the
session after a reset 10 fragments before its end, when the log is replayed (not in `value`). Baseline: the same
fragments only appended to a file (open, write, close), the least a device that stores them must do.

fuota.payload_bytes: what a fragmentation session carries (`fleet fuota payload`, docs/formats/fuota.md "Update
payload") for a release of the whole app (firmware/) that changes one module, the largest (as ota.delta_ratio
does; bysans/version.mpy changes too, it names the release): the signed manifest as a delta against the running
release, the two changed files as zlib objects, the header and the CRC. Goal <= 5 KiB. Baseline: every byte
the HTTP route downloads for the same update on a virtual board (check-in answers, the root probe, the manifest
delta, the objects; status lines and headers included), counted as scripts/benches/ota.py counts them. Also in
the line: the fragments it makes at EU868 DR0 (48-byte fragments) and DR5 (239), before redundancy.

fuota.session_minutes: 100 nodes (decoder instances, lab/fuota_session.py) in one multicast group, 10 % of the
fragments lost at random per node, the session planned by fleet.fuota.deploy (fragment size from the data
rate, redundancy from the loss): simulated minutes from the class C window's opening to the last node
rebuilt, at DR5 (`value`) and DR0 (`dr0`), with the gateway's duty-cycle violations on its sub-band (10 %,
869.525 MHz) counted by a checker apart from the scheduler (must be 0). Baseline: the same payload by unicast
class A, one RX2 downlink per uplink per device, same sub-band and DR.

fuota.bricked: boards left unable to boot (must be 0) over power cuts at random moments while virtual boards
take releases back and forth over FUOTA (lab/fuota_powercut.py): the fragments of a payload (10 % lost) fed to
the board's decoder, then the installer, the switch, the reset and the first boot, the cut anywhere in that
window (measured on each board with one uncut update). After each cut the board must run a confirmed slot
whose every file matches its manifest. 4 boards in parallel, 26 cuts each (`cuts` in the line;
BYSANS_FUOTA_BENCH_CUTS sets the cuts per board). Baseline: 0, what it must be.

fuota.air_boards_installed: boards that run the new release, confirmed, after a FUOTA deployment through the
simulated air (lab/fuota_air.py: ten virtual boards provisioned with a signed release, lab network server,
simulated gateways, clock sync, multicast group and fragmentation set-up, class C at DR5 with 20 % of the
fragments not sent to each board, rebuild, install, first boot), for a release that changes the app's largest
module. Baseline: the boards deployed (10; BYSANS_FUOTA_AIR_BOARDS). In the line: wall times per phase, the
frames sent and received (`frames_lost_on_air`: what the simulated air lost of what was sent: 0 unless the
host stalls a board longer than a fragment interval), boards whose files do not match a manifest (`bricked`).
"""

import json
import random
import subprocess
import tempfile
from pathlib import Path

from fleet.fuota.fragments import encode
from fleet.resources import firmware_dir, micropython32_path, micropython_path

M, SIZE, REDUNDANCY, LOSS = 200, 48, 40, 0.10

_MP = """
import sys, time, gc, os
sys.path.insert(0, %(fw)r)
gc.collect()
code0 = gc.mem_alloc()
from bysans.fuota import frag, frag_spec as fs
gc.collect()
code = gc.mem_alloc() - code0

class Store:
    root = %(root)r
    timeout_s = 86400
    def now(self):
        return 1000

store = Store()
rec = 3 + %(size)d
with open(%(frags)r, "rb") as f:
    frags = f.read()
n = len(frags) // rec
frag.handle(fs.pack_setup_req(0, %(m)d, %(size)d, 0), store)
gc.collect()
base = gc.mem_alloc()
peak = 0
t_dec = 0
t_replay = 0
for i in range(n):
    p = frags[i * rec:(i + 1) * rec]
    t = time.ticks_us()
    frag.handle(p, store)
    t_dec += time.ticks_diff(time.ticks_us(), t)
    gc.collect()
    peak = max(peak, gc.mem_alloc() - base)
    if i == n - 10:  # a reset late in the session: RAM is gone, the log is replayed at the next look
        frag._cache.clear()
        t = time.ticks_us()
        frag.session(store)
        t_replay = time.ticks_diff(time.ticks_us(), t)
done = frag.block_path(store) is not None
t_log = 0
for i in range(n):
    p = frags[i * rec:(i + 1) * rec]
    t = time.ticks_us()
    with open(store.root + "/plain.log", "ab") as f:
        f.write(p)
    t_log += time.ticks_diff(time.ticks_us(), t)
print(n, t_dec, t_log, peak, code, t_replay, done)
"""


def _run():
    rnd = random.Random(201)
    data = rnd.randbytes(M * SIZE)
    _, payloads = encode(data, SIZE, REDUNDANCY)
    kept = [p for p in payloads if rnd.random() >= LOSS]
    mp32 = micropython32_path()
    if mp32:
        from fleet import boards

        cmd, port = [mp32, "-X", "heapsize=" + boards.load("ttgo_lora32_v21")["heap"]], "unix 32-bit"
    else:
        cmd, port = [micropython_path()], "unix 64-bit (no 32-bit build)"
    with tempfile.TemporaryDirectory() as d:
        frags = Path(d) / "frags.bin"
        frags.write_bytes(b"".join(kept))
        root = Path(d) / "fuota"
        root.mkdir()
        script = _MP % {"fw": str(firmware_dir()), "root": str(root), "frags": str(frags), "m": M, "size": SIZE}
        proc = subprocess.run([*cmd, "-c", script], capture_output=True, text=True, timeout=600)
        if proc.returncode != 0:
            raise RuntimeError(proc.stderr.strip().splitlines()[-1] if proc.stderr.strip() else "micropython failed")
        n, t_dec, t_log, peak, code, t_replay, done = proc.stdout.split()
        rebuilt = (root / "frag.bin").read_bytes() == data if done == "True" else False
    n = int(n)
    return [{"bench": "fuota.decode_ms_per_fragment", "value": round(int(t_dec) / n / 1000, 3), "unit": "ms",
             "baseline": round(int(t_log) / n / 1000, 3), "baseline_what": "append the fragment to a file",
             "port": port, "fragments": n, "nb_frag": M, "frag_size": SIZE, "redundancy": REDUNDANCY,
             "lost": len(payloads) - n, "rebuilt": rebuilt, "heap_bytes": int(peak),
             "import_heap_bytes": int(code), "replay_ms": round(int(t_replay) / 1000, 1)}]


def _ota_bench():
    """scripts/benches/ota.py (its lab and its byte counter), loaded by path as scripts/bench.py loads it."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("benches.ota", Path(__file__).with_name("ota.py"))
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def payload_bytes():
    from fleet.fuota.payload import build
    from fleet.resources import firmware_dir
    from fleet.sim import manager
    from lab.ota import HEAP, boot_into_slots, provision

    ota = _ota_bench()
    lab = ota._lab()
    src = max((p for p in (firmware_dir() / "bysans").glob("*.py") if p.name != "version.py"),
              key=lambda p: p.stat().st_size)
    mod = src.relative_to(firmware_dir()).as_posix()[:-3] + ".mpy"
    r2 = lab.derive(lab.r1, "2.0.0", files={mod: src.read_bytes() + b"\n_CHANGED_FOR_THE_BENCH = 1\n"})
    p = build(r2, board="virtual", kommune="751", base_body=(lab.r1 / "release.json").read_bytes())
    # the baseline: the same update over HTTP, every byte the board receives
    lab.publish(lab.r1)
    counting = ota._Counting(lab)
    counting.serve()
    [b] = manager.start(names=["fuotapaybench"], erase=True, heap=HEAP, scenario=lab.wifi_scenario)
    try:
        provision(b, lab.r1, lab.root1, lab.config("BENCHF0001"))
        r = boot_into_slots(b)
        r.poll()
        lab.publish(r2)
        counting.reset()
        if r.poll() is not None or r.state()["version"] != "2.0.0":
            raise RuntimeError("the HTTP update did not complete")
        r.close()
    finally:
        b.stop()
        lab.stop()
    return [{"bench": "fuota.payload_bytes", "value": p.size, "unit": "bytes", "baseline": counting.bytes,
             "baseline_what": "every byte the HTTP route downloads for the same update (headers included)",
             "baseline_by_kind": dict(sorted(counting.by_kind.items())), "goal": 5 * 1024,
             "manifest_bytes": p.manifest_bytes, "manifest": p.manifest_kind,
             "objects": {o["path"]: o["compressed"] for o in p.objects},
             "fragments_dr0": -(-p.size // 48), "fragments_dr5": -(-p.size // 239)}]


def bricked():
    import os

    from lab.fuota_powercut import campaign

    ota = _ota_bench()
    lab = ota._lab()
    try:
        stats = campaign(lab, name="fuotacut", boards=4,
                         cuts_per_board=int(os.environ.get("BYSANS_FUOTA_BENCH_CUTS", "26")), seed=20261207)
    finally:
        lab.stop()
    return [{"bench": "fuota.bricked", "value": stats["bricked"], "unit": "boards", "baseline": 0,
             "cuts": stats["cuts"], "came_back_old": stats["old"], "came_back_new": stats["new"],
             "rolled_back": stats["rolled_back"], "problems": stats["problems"][:3]}]




def session_minutes():
    """fuota.session_minutes: see lab/fuota_session.py. The payload is fuota.payload_bytes' (a release of
    the whole app changing its largest module)."""
    from fleet.fuota import deploy
    from fleet.fuota.payload import build
    from lab import fuota_session as fs

    ota = _ota_bench()
    lab = ota._lab()
    try:
        src = max((p for p in (firmware_dir() / "bysans").glob("*.py") if p.name != "version.py"),
                  key=lambda p: p.stat().st_size)
        mod = src.relative_to(firmware_dir()).as_posix()[:-3] + ".mpy"
        r2 = lab.derive(lab.r1, "2.0.0", files={mod: src.read_bytes() + b"\n_CHANGED_FOR_THE_BENCH = 1\n"})
        payload = build(r2, board="virtual", kommune="751", base_body=(lab.r1 / "release.json").read_bytes()).data
    finally:
        lab.stop()
    nodes, loss, out = 100, 0.10, {}
    for dr in (5, 0):
        plan = deploy.plan(payload, [], dr=dr, loss=loss, mc_addr=0xFE000001, mc_key=bytes(range(16)))
        mc = fs.multicast(plan, nodes=nodes, loss=loss, seed=1400 + dr)
        uc = fs.unicast(plan, nodes=nodes, loss=loss, seed=1400 + dr)
        out[dr] = (plan, mc, uc)
    plan, mc, uc = out[5]
    p0, mc0, uc0 = out[0]

    def mins(s):
        return None if s is None else round(s / 60, 1)

    return [{"bench": "fuota.session_minutes", "value": mins(mc["all_rebuilt_s"]), "unit": "min",
             "baseline": mins(uc["all_done_s"]),
             "baseline_what": "unicast class A: one RX2 downlink per uplink per device, same DR and sub-band",
             "dr": 5, "nodes": nodes, "loss": loss, "payload_bytes": len(payload),
             "nodes_are": "decoder instances (GF(2) rank per node, block rebuilt by fleet.fuota.rebuild)",
             "rebuilt": mc["rebuilt"], "duty_violations": mc["violations"] + uc["violations"],
             "duty_cycle": plan.duty, "fragment_size": plan.fragment_size, "nb_frag": plan.nb_frag,
             "redundancy": plan.redundancy, "frames": mc["frames"], "baseline_frames": uc["frames"],
             "class_c_window_s": mc["window_s"],
             "dr0": {"value": mins(mc0["all_rebuilt_s"]), "baseline": mins(uc0["all_done_s"]),
                     "rebuilt": mc0["rebuilt"], "duty_violations": mc0["violations"] + uc0["violations"],
                     "fragment_size": p0.fragment_size, "nb_frag": p0.nb_frag, "redundancy": p0.redundancy,
                     "frames": mc0["frames"], "baseline_frames": uc0["frames"],
                     "class_c_window_s": mc0["window_s"]}}]


def air_boards_installed():
    """fuota.air_boards_installed: lab/fuota_air.deployment at full size (the release changes the app's largest
    module, as fuota.payload_bytes)."""
    import itertools
    import os

    from fleet.sim import manager
    from lab.fuota_air import deployment

    boards = int(os.environ.get("BYSANS_FUOTA_AIR_BOARDS", "10"))
    src = max((p for p in (firmware_dir() / "bysans").glob("*.py") if p.name != "version.py"),
              key=lambda p: p.stat().st_size)
    names, started = itertools.count(1), []

    def start_board(**kw):
        [b] = manager.start(names=[f"fuotaair{next(names)}"], erase=True, **kw)
        started.append(b)
        return b

    with tempfile.TemporaryDirectory() as tmp:
        try:
            out = deployment(start_board, Path(tmp), boards=boards, loss=0.20,
                             change=src.relative_to(firmware_dir()).as_posix())
        finally:
            for b in started:
                b.stop()
    bs = out["boards"]
    sent = sum(b.get("sent", 0) for b in bs)
    received = sum(b.get("received", 0) for b in bs)
    return [{"bench": "fuota.air_boards_installed", "value": out["progress"]["confirmed"], "unit": "boards",
             "baseline": boards, "bricked": sum(not b.get("files_ok", False) for b in bs),
             "wall_s": out["wall_s"], "payload_bytes": out["payload_bytes"], "dr": out["plan"]["dr"],
             "nb_frag": out["plan"]["nb_frag"], "fragments": out["plan"]["fragments"], "loss_sent": 0.20,
             "frames_sent": sent, "frames_received": received, "frames_lost_on_air": sent - received,
             "states": {k: v for k, v in out["progress"].items() if v}}]


BENCHES = [(("fuota.decode_ms_per_fragment",), _run), (("fuota.payload_bytes",), payload_bytes),
           (("fuota.bricked",), bricked), (("fuota.session_minutes",), session_minutes),
           (("fuota.air_boards_installed",), air_boards_installed)]
