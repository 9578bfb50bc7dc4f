"""OTA benchmarks.

ota.delta_ratio: every byte a virtual board downloads to update to a release of the whole app (firmware/)
that changes one module — HTTP responses whole (status line, headers, body): check-in answers, the root
probe, the release manifest (a delta against the running one, docs/formats/update-repository.md) and the
zlib objects, split by kind in the line — over the bytes of the full bundle as objects (baseline: every
object of the release, what a device without the previous release fetches). Goal <= 0.10.
ota.powercut_bricked: boards left unable to boot after power cuts at random moments over download, write,
switch and first boot (8 boards in parallel, 25+ cuts each); must be 0; `cuts` is the number of cuts.
ota.update_seconds: one end-to-end OTA update of a virtual board (WiFi join, check-in, verify, download the
changed file, write slot b, switch, reset, self-test, confirm, back at the REPL) over the simulated WLAN: an
access point that takes 2.5 s to associate and 1.0 s for a lease (as ota.wifi_awake_ms) with a link rate of
1 Mbit/s both ways (UPDATE_RATE_KBPS: 802.11b's lowest rate, 1 Mbps DSSS, the one an ESP32 falls back to at
the edge of a building's coverage; REFERENCE-2 section 3 lists its TX current), speed 1. The line also gives
`transfer_s_at_rate`: the bytes downloaded at that rate, the least any update of this size can take.
Baseline: deploying the same release's files over serial with provisioning.deploy (only the files that
differ are written).

ota.wifi_awake_ms: how long the WiFi radio is on for one check-in with nothing to download (join: association
and DHCP, the check-in request, radio off), on a virtual board whose scenario AP takes 2.5 s to associate and
1.0 s for a lease (indicative: REFERENCE-2 §3 found no ESP32 measurement); the supervisor's count of the
radio's on-time, median of 3 check-ins at speed 1. Baseline: the same wakes with WiFi left on between them,
i.e. on all day (86 400 000 ms per day at the default one check-in a day). Both also as mAh per day at the
ESP32's RX current, 100 mA (ESP32 datasheet, RX 802.11b/g/n 95-100 mA, as reproduced in REFERENCE-2 §3).

ota.ed25519_verify_ms: one Ed25519 verification of a signed manifest digest (32 bytes, as
the device checks release metadata) by firmware/bysans/ota/ed25519.py in a MicroPython unix-port process with
a 64 KiB heap; the median of 7 verifications after one warm-up (the first verification, in `first_ms`,
also builds the public key's table; the base point's table is built when the module is imported). Baseline: the same verification in CPython with
`cryptography` (OpenSSL, C), median of 200.
"""

import hashlib
import os
import statistics
import subprocess
import tempfile
import time
from pathlib import Path


_MP = """
import sys, time, binascii
sys.path.append(%r)
from bysans.ota import ed25519
pk, msg, sig = [binascii.unhexlify(x) for x in %r.split(",")]
t = time.ticks_us(); ok = ed25519.verify(pk, msg, sig); first = time.ticks_diff(time.ticks_us(), t)
runs = []
for _ in range(7):
    t = time.ticks_us(); ok = ed25519.verify(pk, msg, sig) and ok; runs.append(time.ticks_diff(time.ticks_us(), t))
runs.sort()
print(ok, first, runs[3])
"""


def ed25519_verify():
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    from fleet.resources import firmware_dir, micropython_path

    key = Ed25519PrivateKey.generate()
    pk = key.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    msg = hashlib.sha256(b'{"_type":"bysans-release","counter":1}').digest()
    sig = key.sign(msg)
    with tempfile.NamedTemporaryFile("w", suffix=".py") as f:
        f.write(_MP % (str(firmware_dir()), ",".join(x.hex() for x in (pk, msg, sig))))
        f.flush()
        out = subprocess.run([micropython_path(), "-X", "heapsize=64K", f.name], capture_output=True, text=True,
                             timeout=120, check=True).stdout.split()
    if out[0] != "True":
        raise RuntimeError("the MicroPython verifier refused a valid signature")
    pub = key.public_key()
    times = []
    for _ in range(200):
        t = time.perf_counter()
        pub.verify(sig, msg)
        times.append(time.perf_counter() - t)
    return [{"bench": "ota.ed25519_verify_ms", "value": round(int(out[2]) / 1000, 2), "unit": "ms",
             "baseline": round(statistics.median(times) * 1000, 3),
             "baseline_what": "CPython cryptography (OpenSSL) verify, same key and message",
             "first_ms": round(int(out[1]) / 1000, 2), "heap": "64K", "where": "MicroPython unix port (x64)"}]


def _lab():
    import tempfile

    from lab.ota import Lab

    base = Path(tempfile.mkdtemp(prefix="bysans-ota-bench-"))
    os.environ.setdefault("BYSANS_SIM_DIR", str(base / "sim"))
    lab = Lab(base)
    lab.r1 = lab.build("1.0.0")
    return lab


class _Counting:
    """Counts every byte of every HTTP response the board receives (status line, headers and body, check-in
    answers, metadata, 404s and objects), by kind: objects, manifest, root, checkin, other."""

    def __init__(self, lab):
        self.lab = lab
        self.bytes = 0
        self.by_kind = {}

    def reset(self):
        self.bytes = 0
        self.by_kind = {}

    @staticmethod
    def _kind(path):
        for prefix, kind in (("/repo/objects/", "objects"), ("/repo/root/", "root"), ("/api/checkin", "checkin"),
                             ("/repo/channels/", "manifest"), ("/repo/manifests/", "manifest")):
            if path.startswith(prefix):
                return kind
        return "other"

    def serve(self):
        from fleet.serve.app import ServeContext, build_app
        from fleet.serve.server import Server

        self.lab.repo.mkdir(exist_ok=True)
        app = build_app(ServeContext(repo_dir=self.lab.repo, db_url=self.lab.db_url,
                                     options={"sealer": self.lab.sealer}))  # opens the lab's check-in keys

        async def counting(scope, receive, send):  # counts the bytes sent (an ASGI wrapper)
            if scope["type"] != "http":
                return await app(scope, receive, send)
            kind = self._kind(scope["path"])

            async def counted(message):
                n = 0
                if message["type"] == "http.response.body":
                    n = len(message.get("body", b""))
                elif message["type"] == "http.response.start":  # status line and headers, as on the wire
                    n = len("HTTP/1.1 200 OK\r\n\r\n") + sum(len(k) + len(v) + 4 for k, v in message["headers"])
                self.bytes += n
                self.by_kind[kind] = self.by_kind.get(kind, 0) + n
                await send(message)

            return await app(scope, receive, counted)

        self.lab.server = Server(counting).start()
        return self.lab.server


UPDATE_RATE_KBPS = 1000  # the simulated WLAN's link rate for ota.update_seconds (see the docstring)


def delta_and_update(lab=None):
    import time as _t

    from fleet.release import metadata
    from fleet.sim import manager
    from lab.ota import HEAP, boot_into_slots, provision
    from provisioning.deploy import deploy
    from provisioning.ota import slot_files
    from provisioning.session import Session

    lab = lab or _lab()
    from fleet.resources import firmware_dir

    # one real module changes (besides bysans/version.py, which names the release): the largest app module
    src = max((p for p in (firmware_dir() / "bysans").glob("*.py") if p.name != "version.py"),
              key=lambda p: p.stat().st_size)
    mod = src.relative_to(firmware_dir()).as_posix()[:-3] + ".mpy"
    r2 = lab.derive(lab.r1, "2.0.0", files={mod: src.read_bytes() + b"\n_CHANGED_FOR_THE_BENCH = 1\n"})
    lab.publish(lab.r1)
    counting = _Counting(lab)
    counting.serve()
    body2 = metadata.body_of((r2 / "release.json").read_bytes())
    from fleet.release.repository import object_path
    from lab.ota import LAB_AP, wifi_scenario

    ap = dict(LAB_AP, associate_s=2.5, dhcp_s=1.0, rate_kbps=UPDATE_RATE_KBPS)
    scenario = wifi_scenario(lab.base / "bench-update-wifi.json", ap)
    [b] = manager.start(names=["otabench"], erase=True, heap=HEAP, scenario=scenario)
    try:
        provision(b, lab.r1, lab.root1, lab.config("BENCH0001"))
        r = boot_into_slots(b)
        r.poll()
        lab.publish(r2)
        full = sum(object_path(lab.repo, e["sha256"]).stat().st_size for e in body2["files"])
        counting.reset()
        t = _t.perf_counter()
        assert r.poll() is None
        took = _t.perf_counter() - t
        st = r.state()
        if st["version"] != "2.0.0" or not r.files_ok():
            raise RuntimeError(f"the update did not complete: {st}")
        delta = counting.bytes
        r.close()
        # baseline: the same release's files over serial into an empty directory
        files = {p.replace("/a/", "/serial/", 1): d for p, d in slot_files(r2, "a").items() if p.startswith("/a/")}
        with Session(b.port) as s:
            t = _t.perf_counter()
            rep = deploy(s, files)
            serial = _t.perf_counter() - t
    finally:
        b.stop()
        lab.stop()
    return [{"bench": "ota.delta_ratio", "value": round(delta / full, 4), "unit": "ratio", "baseline": 1.0,
             "baseline_what": "every object of the release (a full bundle, zlib)", "goal": 0.10,
             "bytes_downloaded": delta, "bytes_full": full, "files": len(body2["files"]),
             "bytes_by_kind": dict(sorted(counting.by_kind.items())),
             "changed": [mod, "bysans/version.mpy"]},
            {"bench": "ota.update_seconds", "value": round(took, 3), "unit": "s", "baseline": round(serial, 3),
             "baseline_what": f"provisioning.deploy of the release's {len(files)} files over serial "
                              f"({rep.bytes_written} bytes written)",
             "link_kbps": UPDATE_RATE_KBPS, "transfer_s_at_rate": round(delta * 8 / (UPDATE_RATE_KBPS * 1000), 3),
             "where": f"virtual board over the simulated WLAN: {UPDATE_RATE_KBPS / 1000:g} Mbit/s link, join 2.5 s "
                      f"+ DHCP 1.0 s, speed 1, heap {HEAP}"}]


def powercut(lab=None):
    from lab.ota import powercut_campaign

    lab = lab or _lab()
    stats = powercut_campaign(lab, name="otacut", boards=8, cuts_per_board=26, seed=20261122)
    return [{"bench": "ota.powercut_bricked", "value": stats["bricked"], "unit": "boards", "baseline": 0,
             "cuts": stats["cuts"], "came_back_old": stats["old"], "came_back_new": stats["new"],
             "rolled_back": stats["rolled_back"], "problems": stats["problems"][:3]}]


WIFI_RX_MA = 100  # ESP32 RX 802.11b/g/n 95-100 mA (ESP32 datasheet, REFERENCE-2 §3)
DAY_MS = 86_400_000


def wifi_awake(lab=None):
    from fleet.sim import manager
    from lab.ota import HEAP, LAB_AP, boot_into_slots, provision, wifi_scenario

    lab = lab or _lab()
    lab.publish(lab.r1)
    lab.serve()
    ap = dict(LAB_AP, associate_s=2.5, dhcp_s=1.0)
    scenario = wifi_scenario(lab.base / "bench-wifi.json", ap)
    [b] = manager.start(names=["wifibench"], erase=True, heap=HEAP, scenario=scenario)
    try:
        provision(b, lab.r1, lab.root1, lab.config("BENCH0002"))
        r = boot_into_slots(b)
        if r.poll()["state"] != "confirmed":
            raise RuntimeError("the first check-in over WiFi failed")
        runs = []
        for _ in range(3):
            before = b.status()["wlan"]["radio_on_ms"]
            out = r.poll()
            if out["state"] != "confirmed":
                raise RuntimeError(f"a check-in over WiFi failed: {out}")
            w = b.status()["wlan"]
            if w["active"]:
                raise RuntimeError("the radio stayed on after the check-in")
            runs.append(w["radio_on_ms"] - before)
        r.close()
    finally:
        b.stop()
        lab.stop()
    awake = statistics.median(runs)

    def mah_per_day(on_ms):
        return round(on_ms / 3_600_000 * WIFI_RX_MA, 3)
    return [{"bench": "ota.wifi_awake_ms", "value": awake, "unit": "ms", "baseline": DAY_MS,
             "baseline_what": "WiFi left on between wakes: on all day (per day at one check-in a day)",
             "runs_ms": runs, "join_ms_scenario": 3500, "current_ma": WIFI_RX_MA,
             "current_source": "ESP32 datasheet RX 802.11b/g/n 95-100 mA (REFERENCE-2 section 3)",
             "mAh_per_day": mah_per_day(awake), "mAh_per_day_hourly_checkins": mah_per_day(awake * 24),
             "baseline_mAh_per_day": mah_per_day(DAY_MS),
             "where": "virtual board, scenario AP (associate 2.5 s, DHCP 1.0 s), loopback HTTP, speed 1"}]


BENCHES = [(("ota.ed25519_verify_ms",), ed25519_verify),
           (("ota.delta_ratio", "ota.update_seconds"), delta_and_update),
           (("ota.powercut_bricked",), powercut),
           (("ota.wifi_awake_ms",), wifi_awake)]
