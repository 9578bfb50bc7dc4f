"""Check-in benchmarks: `fleet serve` as a rollout day meets it.

serve.checkins_per_s: 200 devices check in at once over loopback, each 5 times in a row (a new connection
    per check-in, as a board makes one per poll), with its check-in key (a MAC) while a rollout is open
    for their kommune: signed check-ins answered 200 with the rollout's manifest per second. Bounded: 1,000
    check-ins, at most TIME_LIMIT_S a round; a check-in that failed, was refused, was answered wrongly or
    was not answered in time is an error ("errors", must be 0; "late": those not answered in time). The server is the real command (`fleet serve`, a
    process of its own, the default SQLite registry); the clients are one asyncio process.
    Baseline: the server as it was before issue 16 (the standard library's ThreadingHTTPServer, listen
    backlog 5, a thread and two transactions per check-in: scripts/benches/_serve_stdlib_baseline.py),
    same clients, same check-ins, in the same run; "baseline_errors" are its errors. Each is measured
    ROUNDS times, alternately, from a copy of one registry; the faster round counts, and "errors" add up
    the errors of every round.
serve.checkin_store_ms_20k: one check-in's cost to the store in a rollout of 20,000 devices (see
    scripts/benches/_rollout_step.py).
serve.checkins_per_s_1000: the same with 1,000 devices at once, one check-in each (1,000 connections
    arriving together: the rollout's first minute).
"""

import asyncio
import base64
import json
import os
import re
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from fleet.rollout import CheckinKey, OtaStore, body_mac  # noqa: E402

DIGEST = "ab" * 32
MANIFEST = f"manifests/{DIGEST}.json"
TIME_LIMIT_S = 180
ROUNDS = 2  # each server measured twice, alternately; the faster round counts, errors of all rounds
CONNECT_TIMEOUT_S = 30


def _repo(base: Path) -> Path:
    repo = base / "repo"
    (repo / "manifests").mkdir(parents=True)
    (repo / "channels" / "0751").mkdir(parents=True)
    body = {"_type": "bysans-release", "format": 1, "version": "2.0.0", "counter": 200, "boards": ["virtual"],
            "kommuner": ["0751"], "files": []}
    for p in (repo / "manifests" / f"{DIGEST}.json", repo / "channels" / "0751" / "virtual.json"):
        p.write_text(json.dumps(body) + "\n[]\n")
    return repo


def _checkins(keys, per_device):
    """Per device, its check-ins in order: (path with the MAC, body)."""
    out = []
    for k in keys:
        mine = []
        for seq in range(1, per_device + 1):
            body = json.dumps({"device": k.device, "kommune": "0751", "board": "virtual", "version": "1.0.0",
                               "counter": 100, "release": "cd" * 32, "slot": "a", "state": "confirmed",
                               "reason": None, "detail": "", "target": None, "seq": seq}).encode()
            mine.append((f"/api/checkin?mac={body_mac(k.raw, body)}", body))
        out.append(mine)
    return out


def _registry(path: Path, keys, repo: Path) -> Path:
    """A registry holding the devices' check-in keys and a running rollout for their kommune."""
    store = OtaStore.open(f"sqlite:///{path}")
    try:
        for k in keys:
            store.save_checkin_key(k)
        store.start(kommune="751", operator="bench", version="2.0.0", waves=[1000], halt_at=1000, repo_dir=repo)
    finally:
        store.close()
    return path


def _copy(template: Path, path: Path) -> str:
    for suffix in ("", "-wal", "-shm"):
        if Path(f"{template}{suffix}").exists():
            shutil.copyfile(f"{template}{suffix}", f"{path}{suffix}")
    return f"sqlite:///{path}"


def _start(cmd, env):
    p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, env=env, cwd=ROOT)
    line = p.stdout.readline()
    m = re.search(r"serving on http://([\d.]+):(\d+)", line)
    if not m:
        p.kill()
        raise RuntimeError(f"the server did not start: {line!r}")
    return p, (m.group(1), int(m.group(2)))


def _stop(p):
    p.terminate()
    try:
        p.wait(30)
    except subprocess.TimeoutExpired:
        p.kill()
        p.wait()


async def _post(addr, path, body) -> tuple[int, bytes]:
    r, w = await asyncio.wait_for(asyncio.open_connection(*addr), CONNECT_TIMEOUT_S)
    try:
        w.write(f"POST {path} HTTP/1.1\r\nHost: {addr[0]}:{addr[1]}\r\nContent-Type: application/json\r\n"
                f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n".encode() + body)
        await w.drain()
        head = await r.readuntil(b"\r\n\r\n")
        status = int(head.split(b" ", 2)[1])
        m = re.search(rb"(?i)\r\ncontent-length:\s*(\d+)", head)
        return status, (await r.readexactly(int(m.group(1))) if m else await r.read())
    finally:
        w.close()


async def _load(addr, checkins) -> dict:
    done = {"ok": 0, "errors": 0}

    async def device(mine):
        for path, body in mine:
            try:
                status, data = await _post(addr, path, body)
                good = status == 200 and json.loads(data).get("take") == MANIFEST
            except (OSError, asyncio.TimeoutError, asyncio.IncompleteReadError, ValueError):
                good = False
            done["ok" if good else "errors"] += 1

    total = sum(len(m) for m in checkins)
    t0 = time.perf_counter()
    tasks = [asyncio.create_task(device(m)) for m in checkins]
    _, pending = await asyncio.wait(tasks, timeout=TIME_LIMIT_S)
    elapsed = time.perf_counter() - t0
    for t in pending:
        t.cancel()
    await asyncio.gather(*pending, return_exceptions=True)
    return {"ok": done["ok"], "errors": total - done["ok"], "late": total - done["ok"] - done["errors"],
            "seconds": elapsed}


def _measure(cmd, env, checkins) -> dict:
    p, addr = _start(cmd, env)
    try:
        return asyncio.run(_load(addr, checkins))
    finally:
        _stop(p)


def _run(devices: int, per_device: int, name: str) -> dict:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)  # 1,000 clients: sockets past the usual 1,024
    resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, min(hard, 65536)), hard))
    env = {**os.environ, "FLEET_SECRET_KEY": base64.b64encode(os.urandom(32)).decode()}
    os.environ["FLEET_SECRET_KEY"] = env["FLEET_SECRET_KEY"]
    with tempfile.TemporaryDirectory(prefix="bench-serve-") as tmp:
        base = Path(tmp)
        repo = _repo(base)
        keys = [CheckinKey.new(f"70B3D57E{i:08X}") for i in range(devices)]
        checkins = _checkins(keys, per_device)
        template = _registry(base / "template.sqlite", keys, repo)
        runs = {"new": [], "old": []}
        for i in range(ROUNDS):  # alternated, so that the machine's other load falls on both alike
            db = _copy(template, base / f"new{i}.sqlite")
            runs["new"].append(_measure([sys.executable, "-c", "from fleet.cli import main; main()", "serve",
                                         "--port", "0", "--db", db, "--repo", str(repo)], env, checkins))
            db = _copy(template, base / f"old{i}.sqlite")
            runs["old"].append(_measure([sys.executable, str(ROOT / "scripts" / "benches" /
                                                            "_serve_stdlib_baseline.py"), db, str(repo)],
                                        env, checkins))
    new, old = (max(r, key=lambda m: m["ok"] / m["seconds"]) for r in (runs["new"], runs["old"]))
    return {"bench": name, "value": round(new["ok"] / new["seconds"], 1), "unit": "checkins/s",
            "baseline": round(old["ok"] / old["seconds"], 1), "clients": devices,
            "checkins": devices * per_device, "rounds": ROUNDS,
            "errors": sum(m["errors"] for m in runs["new"]),
            "baseline_errors": sum(m["errors"] for m in runs["old"]),
            "late": sum(m["late"] for m in runs["new"]), "baseline_late": sum(m["late"] for m in runs["old"]),
            "seconds": round(new["seconds"], 2), "baseline_seconds": round(old["seconds"], 2),
            "time_limit_s": TIME_LIMIT_S}


def checkins_200():
    return [_run(200, 5, "serve.checkins_per_s")]


def checkins_1000():
    return [_run(1000, 1, "serve.checkins_per_s_1000")]


def checkin_store():
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    import _rollout_step

    return _rollout_step.run(_repo, DIGEST)


BENCHES = [(("serve.checkins_per_s",), checkins_200),
           (("serve.checkin_store_ms_20k",), checkin_store),
           (("serve.checkins_per_s_1000",), checkins_1000)]
