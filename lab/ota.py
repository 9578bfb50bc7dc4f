"""An OTA lab for tests and benchmarks: throwaway keys, small app releases built and signed by the real
library, an update repository, `fleet serve`'s router on a free port, and virtual boards provisioned with
slot a. Used by tests/e2e/test_ota_*.py and scripts/benches/ota.py."""

import hashlib
import json
import os
import shutil
import threading
import time
from pathlib import Path

from fleet import device_spec
from fleet.keys import KeyStore, from_env
from fleet.keys import trust
from fleet.registry.sealing import Sealer
from fleet.release import build as rbuild
from fleet.release import repository, sign as rsign
from fleet.resources import firmware_dir
from fleet.serve.app import ServeContext, build_app
from fleet.serve.server import Server

PASS = {"FLEET_KEY_PASSPHRASE": "an OTA lab passphrase"}
HEAP = "256K"  # the 64-bit unix port needs about 1.5-2x an ESP32's heap for the same objects; repeated
#                 clients in one boot fragment 192K (issue 5: bring the OTA client back down)

# The lab's WiFi: an access point in every lab board's scenario (the board reaches the lab's server only through
# it, docs/virtual-board.md "WiFi") and its credentials on every provisioned board. Quick to join, so tests
# that poll often stay quick; scripts/benches/ota.py's wifi_awake uses realistic times.
LAB_AP = {"ssid": "bysans-lab", "security": "wpa2", "password": "lab-wpa2-passord", "rssi": -58,
          "associate_s": 0.4, "dhcp_s": 0.2}
LAB_WIFI = [{"ssid": LAB_AP["ssid"], "password": LAB_AP["password"]}]
LAB_JOIN_S = LAB_AP["associate_s"] + LAB_AP["dhcp_s"] + 0.1  # a join on the lab's AP (and one status poll)


def wifi_scenario(path: Path, *aps, **extra) -> str:
    """Writes a scenario whose "wifi" has these access points (default: the lab's); returns its path."""
    path = Path(path)
    path.write_text(json.dumps({"description": "the OTA lab's WiFi", "wifi": {"aps": list(aps or [LAB_AP])},
                                **extra}))
    return str(path)


READ_STATE = ("import json\n"
              "from bysans.ota import slots, client\n"
              "st = slots.load('/')\n"
              "slot = st['trial'] or st['confirmed']\n"
              "doc, dig = client.installed(slots.slot_dir(slot))\n"
              "import bysans.version as v\n"
              "print(json.dumps({'slot': slot, 'trial': st['trial'], 'version': doc and doc['version'],\n"
              "  'release': dig, 'app': v.VERSION, 'path': __import__('sys').path[0], 'last': st['last'],\n"
              "  'bad': st['bad']}))\n")
CHECK_FILES = ("from bysans.ota import slots, selftest\n"
               "st = slots.load('/')\n"
               "selftest.check_files(slots.slot_dir(st['confirmed']))\n"
               "print('FILES-OK')\n")


def app_source(dst: Path, version: str, *, checks: str | None = None, extra: dict | None = None) -> Path:
    """A copy of the app (firmware/) with bysans.version saying `version`: one module changes per version."""
    if dst.exists():
        shutil.rmtree(dst)
    shutil.copytree(firmware_dir(), dst, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    (dst / "bysans" / "version.py").write_text(f'VERSION = "{version}"\n')
    if checks is not None:
        (dst / "bysans" / "checks.py").write_text(checks)
    for rel, text in (extra or {}).items():
        (dst / rel).parent.mkdir(parents=True, exist_ok=True)
        (dst / rel).write_text(text)
    return dst


class Lab:
    def __init__(self, base: Path, *, kommune="751"):
        self.base = Path(base)
        self.store = KeyStore(self.base / "keys")
        self.pp = from_env(PASS)
        trust.init_root(self.store, self.pp)
        self.k751 = trust.add_release(self.store, [kommune], self.pp).keyid
        self.kold = trust.add_release(self.store, [kommune], self.pp).keyid  # revoked by tests that need it
        self.k101 = trust.add_release(self.store, ["101"], self.pp).keyid
        self.repo = self.base / "repo"
        self.server = None
        self.db_url = f"sqlite:///{self.base / 'registry.sqlite'}"
        self._counter = 100
        self.sealer = Sealer(os.urandom(32))  # seals the lab's check-in keys (docs/ota.md)
        self._checkin_keys = {}
        self.wifi_scenario = wifi_scenario(self.base / "lab-wifi.json")  # make_board(scenario=...)

    @property
    def root1(self) -> bytes:
        return self.store.root_path(1).read_bytes()

    def build(self, version: str, *, counter=None, src=None, kommuner=("751",), board="virtual", sign=True,
              keyids=(), expires_in=30 * 86400, **source) -> Path:
        if counter is None:
            self._counter += 1
            counter = self._counter
        src = src or app_source(self.base / f"src-{version}", version, **source)
        out = self.base / f"rel-{version}"
        rbuild.build(board, version, out, src=src, counter=counter)
        if sign:
            rsign.sign(out, self.store, list(kommuner), self.pp, keyids=keyids or (self.k751,),
                       expires_in=expires_in)
        return out

    def derive(self, rel: Path, version: str, *, counter=None, files: dict | None = None, name=None,
               sign=True) -> Path:
        """A new release from a built one without building again: bysans/version.mpy says `version`, and
        `files` (release path -> bytes; .py sources of .mpy paths are compiled) replace or add files."""
        from fleet.release import metadata
        from fleet.release import compile
        from fleet.release.build import FILES, MANIFEST

        if counter is None:
            self._counter += 1
            counter = self._counter
        out = self.base / (name or f"rel-{version}")
        if out.exists():
            shutil.rmtree(out)
        shutil.copytree(rel, out)
        changes = {"bysans/version.mpy": f'VERSION = "{version}"\n'.encode()}
        changes.update(files or {})
        body = metadata.body_of((out / MANIFEST).read_bytes())
        entries = {e["path"]: e for e in body["files"]}
        for path, data in changes.items():
            dst = out / FILES / path
            dst.parent.mkdir(parents=True, exist_ok=True)
            if path.endswith(".mpy") and not data.startswith(b"M"):
                src = self.base / "derive-src" / (path[:-4] + ".py")
                src.parent.mkdir(parents=True, exist_ok=True)
                src.write_bytes(data)
                compile.compile_all([(src, path[:-4] + ".py", dst)], body["arch"])
            else:
                dst.write_bytes(data)
            raw = dst.read_bytes()
            entries[path] = {"path": path, "length": len(raw), "sha256": hashlib.sha256(raw).hexdigest()}
        body.update(version=version, counter=counter, kommuner=[], expires=0,
                    files=sorted(entries.values(), key=lambda e: e["path"]))
        (out / MANIFEST).write_bytes(metadata.unsigned(body))
        if sign:
            rsign.sign(out, self.store, ["751"], self.pp, keyids=(self.k751,))
        return out

    def signed_variant(self, rel: Path, signers=None, **changes) -> bytes:
        """The release's manifest body with `changes`, signed by `signers` (default: the 0751 key): for
        metadata a device must refuse."""
        from fleet.release import metadata
        from fleet.release.build import MANIFEST

        body = metadata.body_of((rel / MANIFEST).read_bytes())
        body.update(changes)
        if signers is None:
            signers = [self.store.signer(self.k751, self.pp)]
        return metadata.sign(body, signers)

    def revoke(self, keyid):
        """Revokes a release key and puts the new root version into the repository."""
        change = trust.revoke(self.store, keyid, self.pp)
        self.sync_roots()
        return change

    def sync_roots(self):
        for v in self.store.root_versions():
            dst = self.repo / "root" / f"{v}.json"
            if not dst.exists():
                dst.parent.mkdir(parents=True, exist_ok=True)
                dst.write_bytes(self.store.root_path(v).read_bytes())

    def put_channel(self, data: bytes, kommune="0751", board="virtual"):
        """Writes a manifest straight into the channel (what a compromised or careless mirror could do): see
        write_channel."""
        write_channel(self.repo, data, kommune, board)

    def publish(self, rel: Path):
        return repository.publish(rel, self.repo, self.store)

    def serve(self, **options):
        self.repo.mkdir(exist_ok=True)
        options.setdefault("sealer", self.sealer)
        ctx = ServeContext(repo_dir=self.repo, db_url=self.db_url, options=options)
        self.server = Server(build_app(ctx)).start()
        return self.server

    def stop(self):
        if self.server is not None:
            self.server.stop()
            self.server = None

    def config(self, device: str, *, server=None, db_url=None, **kw) -> dict:
        """A device's OTA config, with its check-in key in the registry at `db_url` (default: the lab's)."""
        cfg = {"server": server or (self.server.url if self.server else None), "device": device,
               "kommune": "0751", "poll_s": 3600, "retry_s": 60, "timeout_s": 3,
               "checkin_key": self.checkin_key(device, db_url).hex()}
        cfg.update(kw)
        return cfg

    def checkin_key(self, device: str, db_url=None):
        """The device's check-in key, issued into the registry once."""
        from fleet.rollout import OtaStore

        db_url = db_url or self.db_url
        if (db_url, device) not in self._checkin_keys:
            store = OtaStore.open(db_url, sealer=self.sealer)
            try:
                self._checkin_keys[db_url, device] = store.issue_checkin_key(device)
            finally:
                store.close()
        return self._checkin_keys[db_url, device]


def provision(board, rel: Path, root: bytes, config: dict, wifi=LAB_WIFI):
    from provisioning.ota import provision as _provision
    from provisioning.session import Session

    with Session(board.port) as s:
        _provision(s, rel, root=root, config=config, wifi=wifi)


class Repl:
    """A raw-REPL console on a virtual board (lab/serialconsole.py) that survives its resets."""

    def __init__(self, board, timeout=30.0, *, booting=False):
        from .serialconsole import Console

        self.board = board
        self.c = Console(board.port, timeout=timeout)
        if booting:
            self.reconnect()
        else:
            self.c.raw_repl()

    def run(self, code: str, timeout=None) -> str:
        return self.c.exec(code, timeout)

    def json(self, code: str, timeout=None):
        out = self.run(code, timeout).strip().splitlines()
        return json.loads(out[-1])

    def state(self) -> dict:
        return self.json(READ_STATE)

    def files_ok(self) -> bool:
        return "FILES-OK" in self.run(CHECK_FILES)

    def poll(self, reboot=True, timeout=60) -> dict | None:
        """One OTA poll; returns the outcome, or None when the board reset itself to switch slots (the
        console then waits for it to boot and takes the raw REPL again)."""
        code = ("from bysans.ota import client\nimport json\n"
                f"print(json.dumps(client.Client().poll(reboot={reboot})))\n")
        out = self.run_or_reset(code, timeout, "poll")
        return None if out is None else json.loads(out.strip().splitlines()[-1])

    def run_or_reset(self, code: str, timeout=60, what="the code", error=RuntimeError) -> str | None:
        """Runs `code` in the raw REPL; returns what it printed, or None when the board reset itself before it
        ended (then it waits for the boot and takes the raw REPL again). `error` for what it raised."""
        c = self.c
        c.write(code.encode() + b"\x04")
        c.read_until(b"OK", timeout)
        deadline = time.monotonic() + timeout
        while b"\x04" not in c.buf and b"rst:" not in c.buf:
            if time.monotonic() > deadline:
                raise TimeoutError(f"{what} did not finish: {c.buf[-300:]!r}")
            c.buf += c.ser.read(4096)
        if b"rst:" in c.buf and (b"\x04" not in c.buf or c.buf.index(b"rst:") < c.buf.index(b"\x04")):
            c.buf = c.buf[c.buf.index(b"rst:"):]
            self.reconnect(timeout=max(timeout, 30.0))
            return None
        out = c.read_until(b"\x04", timeout)[:-1]
        err = c.read_until(b"\x04", timeout)[:-1]
        c.read_until(b">", timeout)
        if err:
            raise error(err.decode(errors="replace"))
        return out.decode()

    def report(self):
        """A check-in only: the server records what the board runs and its last outcome."""
        return self.run("from bysans.ota import client\nclient.Client().report()\n")

    def set_config(self, cfg: dict):
        self.run("f = open(%r, 'w')\nf.write(%r)\nf.close()\n" % (device_spec.OTA_CONFIG, json.dumps(cfg)))

    def reconnect(self, timeout=30.0):
        """After a reset or a power cut: wait until boot.py and main.py are done (the REPL prompt: the
        unconfigured app returns) — a Ctrl-C earlier would interrupt the self-test — then take the raw
        REPL again."""
        c = self.c
        deadline = time.monotonic() + timeout
        while b"rst:" not in c.buf or b">>> " not in c.buf[c.buf.rindex(b"rst:"):]:
            if time.monotonic() > deadline:
                raise TimeoutError(f"the board did not reach its REPL: {c.buf[-300:]!r}")
            c.buf += c.ser.read(4096)
        c.raw_repl()

    def close(self):
        self.c.close()


def wait_until(fn, timeout=30.0, step=0.05):
    deadline = time.monotonic() + timeout
    while True:
        v = fn()
        if v:
            return v
        if time.monotonic() > deadline:
            raise TimeoutError("condition not met")
        time.sleep(step)




def serve_repo(lab, repo: Path, db_url: str | None = None):
    """Another `fleet serve` (its own repository and registry) from the same keys."""
    repo.mkdir(parents=True, exist_ok=True)
    ctx = ServeContext(repo_dir=repo, db_url=db_url or repo_db(repo), options={"sealer": lab.sealer})
    return Server(build_app(ctx)).start()


def repo_db(repo: Path) -> str:
    return f"sqlite:///{repo.parent / (repo.name + '.sqlite')}"


def boot_into_slots(board) -> "Repl":
    """After provisioning: reset, so that main.py's boot logic runs (on a ROM-slot board it makes slot a's
    image) and slot a is on sys.path; returns a console."""
    r = Repl(board)
    r.c.write(b"\x02")
    board.reset()
    r.reconnect()
    return r



def write_channel(repo: Path, data: bytes, kommune="0751", board="virtual"):
    """Writes a manifest straight into a repository's channel, and the channel's deltas as a mirror would
    serve them: each rebuilds `data` from its base (a board that runs a base takes the delta), or is gone
    when `data` is not two lines. (A channel file changed without its deltas would have boards rebuild the
    manifest that was there before.)"""
    from fleet.errors import ReleaseError
    from fleet.release import delta

    path = repo / "channels" / kommune / f"{board}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    deltas = path.with_name(path.stem + ".delta")
    for p in sorted(deltas.glob("*.bin")) if deltas.is_dir() else ():
        try:
            base = (repo / "manifests" / f"{p.stem}.json").read_bytes().split(b"\n")[0]
            p.write_bytes(delta.make(base, data))
        except (OSError, ReleaseError):
            p.unlink()

def count_cut(r: "Repl", stats: dict, lock, *, board, cut, want: str, timeout=90.0, sim=None) -> dict | None:
    """After a power cut: the board must come back running a confirmed slot whose every file matches its
    manifest (release A is 1.0.0, B the other). Counts the outcome in `stats` ("old"/"new" against `want`,
    "rolled_back", or "bricked" with the problem) and returns the board's state, None when it did not come
    back whole."""
    try:
        r.c.buf = r.c.buf[-20000:]
        r.reconnect(timeout=timeout)
        try:
            st = r.state()
        except RuntimeError as e:
            # The REPL was taken while the board was still booting (the prompt seen was an earlier boot's,
            # on a loaded host): boot.py had not put a slot on sys.path. A clean reset tells that apart from
            # a board that cannot boot its slot, which fails here again.
            if sim is None or "no module named 'bysans'" not in str(e):
                raise
            r.c.buf = b""
            sim.reset()
            r.reconnect(timeout=timeout)
            st = r.state()
        ok = st["trial"] is None and st["path"] == "/" + st["slot"] and r.files_ok()
        ok = ok and st["app"] == st["version"]
    except Exception as e:  # noqa: BLE001 - a board that does not come back is what we count
        ok, st = False, {"error": repr(e)[:300]}
    with lock:
        if not ok:
            stats["bricked"] += 1
            stats["problems"].append({"board": board, "cut": cut, "state": st})
            return None
        now = "A" if st["version"] == "1.0.0" else "B"
        stats["new" if now == want else "old"] += 1
        if (st.get("last") or {}).get("state") == "rolled_back":
            stats["rolled_back"] += 1
    return st


def powercut_campaign(lab, *, name, boards=4, cuts_per_board=10, seed=1, window_s=None):
    """Power cuts at random moments while boards update back and forth between two releases (A: the
    built release; B: one module changed and a 24 KiB data file added), new counters each time.
    Each board has its own repository and server. After every cut the board must come back running a
    confirmed slot whose every file matches its manifest. Returns counts."""
    import random

    from fleet.release import metadata

    rng = random.Random(seed)
    blob = bytes(rng.getrandbits(8) for _ in range(24 * 1024))
    ra = lab.r1
    rb = lab.derive(lab.r1, "2.0.0", name="rel-cut-b", files={"bysans/blob.bin": blob})
    bodies = {v: metadata.body_of((rel / "release.json").read_bytes()) for v, rel in (("A", ra), ("B", rb))}
    signer = lab.store.signer(lab.k751, lab.pp)
    counter = [10_000]
    lock = threading.Lock()
    stats = {"cuts": 0, "bricked": 0, "old": 0, "new": 0, "rolled_back": 0, "problems": []}

    def manifest(which):
        with lock:
            counter[0] += 1
            body = dict(bodies[which], counter=counter[0])
        return metadata.sign(body, [signer])

    def run(i):
        try:
            campaign(i)
        except Exception as e:  # noqa: BLE001 - a thread's failure is reported, not lost with the thread
            with lock:
                stats["problems"].append({"board": i, "error": f"{type(e).__name__}: {e}"[:500]})

    def campaign(i):
        repo = lab.base / f"cut-repo-{i}"
        for rel in (ra, rb):
            repository.publish(rel, repo, lab.store)
        srv = serve_repo(lab, repo)
        from fleet.sim import manager

        [b] = manager.start(names=[f"{name}{i}"], erase=True, heap=HEAP, scenario=lab.wifi_scenario)  # stopped below, whatever happens
        try:
            provision(b, ra, lab.root1, lab.config(f"CUT{i:04d}", server=srv.url, db_url=repo_db(repo)))
            r = boot_into_slots(b)
            # The window is measured, not assumed: one whole update (download, write, switch, reset) on this
            # board under this machine's load, so that cuts land both before and after the switch however
            # slow the machine is today.
            write_channel(repo, manifest("B"))
            t0 = time.monotonic()
            if r.poll(timeout=120) is not None:
                raise AssertionError(f"board {i}: the uncut update did not switch slots")
            window = max(window_s or 0.0, 1.6 * (time.monotonic() - t0))
            cur = "B"
            for k in range(cuts_per_board):
                want = "B" if cur == "A" else "A"
                write_channel(repo, manifest(want))
                code = "from bysans.ota import client\nclient.Client().poll()\n"
                r.c.write(code.encode() + b"\x04")
                time.sleep(rng.uniform(0.0, window))
                b.powercut(0)
                with lock:
                    stats["cuts"] += 1
                st = count_cut(r, stats, lock, board=i, cut=k, want=want, sim=b)
                if st is None:
                    return
                cur = "A" if st["version"] == "1.0.0" else "B"
        finally:
            try:
                b.stop()
            finally:
                srv.stop()

    threads = [threading.Thread(target=run, args=(i,)) for i in range(boards)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return stats
