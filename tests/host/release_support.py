"""Run a MicroPython snippet with firmware/ on sys.path (for host tests that cross-check the device code)."""

import os
import subprocess
import sys

from fleet.resources import firmware_dir, micropython_path


def short_firmware_path() -> str:
    """firmware/ under a short, fixed-length path (a link in the temporary folder): module paths live in the
    heap, and a board's are short ("/bysans/..."); a heap test must not pass or fail with the length of the
    checkout's path (CI's is longer than a developer's)."""
    import hashlib
    import tempfile

    real = firmware_dir().resolve()
    link = os.path.join(tempfile.gettempdir(), "bysans-fw-" + hashlib.sha256(str(real).encode()).hexdigest()[:8])
    try:
        os.symlink(real, link)
    except FileExistsError:
        pass
    return link


def run_mp(script: str, *args: str, heap: str = "64K", timeout: int = 300, interpreter: str | None = None) -> str:
    """Runs `script` (MicroPython source) under the unix port (or `interpreter`, e.g. the 32-bit one) with the
    heap limited; returns stdout."""
    import tempfile

    prelude = f"import sys\nsys.path.append({short_firmware_path()!r})\n"
    with tempfile.NamedTemporaryFile("w", suffix=".py", delete=False) as f:
        f.write(prelude + script)  # a file, not -c: the script's source then need not stay in the heap
    try:
        proc = subprocess.run([interpreter or micropython_path(), "-X", f"heapsize={heap}", f.name, *args],
                              capture_output=True, text=True, timeout=timeout)
    finally:
        os.unlink(f.name)
    if proc.returncode != 0:
        raise AssertionError(f"micropython failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}")
    return proc.stdout


# ---- test vectors for tests/firmware/mp_test_ota_verify.py (made by the host library, deterministic) ----

import hashlib as _hashlib  # noqa: E402
from pathlib import Path as _Path  # noqa: E402

VECTORS_DIR = _Path(__file__).resolve().parents[1] / "firmware" / "ota_vectors"
NOW = 1_767_225_600  # 2026-01-01T00:00:00Z: the vectors' "now"
DAY = 86400


def test_signer(label: str):
    """A throwaway key made from a public label: for tests only, never for anything real."""
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    from fleet.keys.ed25519 import Ed25519FileSigner

    seed = _hashlib.sha256(b"bysans-ota-test:" + label.encode()).digest()
    return Ed25519FileSigner(Ed25519PrivateKey.from_private_bytes(seed))


def root_body(version, root_keys, release, revoked=(), expires=NOW + 365 * DAY):
    from fleet.release import metadata

    keys = {k.keyid: k.public_key.raw.hex() for k in root_keys}
    for k in release:
        keys[k.keyid] = k.public_key.raw.hex()
    return {"_type": metadata.ROOT_TYPE, "format": 1, "version": version, "expires": expires, "keys": keys,
            "root": {"keyids": sorted(k.keyid for k in root_keys), "threshold": 1},
            "release": {k.keyid: sorted(v) for k, v in release.items()}, "revoked": sorted(k.keyid for k in revoked)}


FILE_SMALL = b"print('hello from a release')\n"
FILE_BIG = b"".join(b"line %05d of a module that compresses well\n" % i for i in range(120))


def release_body(*, counter=10, boards=("virtual",), kommuner=("0751",), expires=NOW + 30 * DAY, files=None):
    if files is None:
        files = {"main.py": FILE_SMALL, "bysans/app.mpy": FILE_BIG}
    entries = sorted(({"path": p, "length": len(d), "sha256": _hashlib.sha256(d).hexdigest()}
                      for p, d in files.items()), key=lambda e: e["path"])
    return {"_type": "bysans-release", "format": 1, "version": "1.0.%d" % counter, "counter": counter,
            "boards": list(boards), "kommuner": list(kommuner), "arch": "x64", "created": NOW - DAY,
            "expires": expires, "files": entries}


def make_vectors() -> dict:
    """Roots and releases, each with the reason a device in kommune 0751 on board 'virtual' must give."""
    from fleet.release import metadata

    r1, r2 = test_signer("root-1"), test_signer("root-2")
    k751, k101, krev = test_signer("release-0751"), test_signer("release-0101"), test_signer("release-revoked")
    release = {k751: ["0751", "0727"], k101: ["0101"], krev: ["0751"]}
    root1 = metadata.sign(root_body(1, [r1], release, [krev]), [r1])
    root2 = metadata.sign(root_body(2, [r2], release, [krev]), [r1, r2])          # rotation: old and new
    root2_new_only = metadata.sign(root_body(2, [r2], release, [krev]), [r2])     # the old root did not sign
    root1_expired = metadata.sign(root_body(1, [r1], release, [krev], expires=NOW - 1), [r1])
    good = metadata.sign(release_body(), [k751])
    tampered = good.replace(b'"counter":10', b'"counter":99', 1)
    releases = [
        ("good", good, None, "OK"),
        ("tampered", tampered, None, "BAD_SIGNATURE"),
        ("garbage", b"\x00\xffnot metadata\n[]\n", None, "MALFORMED"),
        ("other_kommune_key", metadata.sign(release_body(), [k101]), None, "NOT_DELEGATED"),
        ("revoked_key", metadata.sign(release_body(), [krev]), None, "REVOKED"),
        ("downgrade", good, 11, "DOWNGRADE"),
        ("same_counter_ok", good, 10, "OK"),
        ("expired", metadata.sign(release_body(expires=NOW - 1), [k751]), None, "EXPIRED"),
        ("other_board", metadata.sign(release_body(boards=("heltec_v3",)), [k751]), None, "WRONG_BOARD"),
        ("other_kommune", metadata.sign(release_body(kommuner=("0727",)), [k751]), None, "WRONG_KOMMUNE"),
        ("unsafe_path", metadata.sign(release_body(files={"../boot.py": FILE_SMALL}), [k751]), None, "MALFORMED"),
        ("unsigned", metadata.unsigned(release_body()), None, "NOT_DELEGATED"),
    ]
    return {"NOW": NOW, "ROOT1": root1, "ROOT2": root2, "ROOT2_NEW_ONLY": root2_new_only,
            "ROOT1_EXPIRED": root1_expired, "RELEASES": releases, "FILE_SMALL": FILE_SMALL, "FILE_BIG": FILE_BIG}


def vector_files(v: dict) -> dict:
    """name -> bytes of the files in tests/firmware/ota_vectors/ (read from flash-like files by the
    MicroPython test: a 64 KiB heap cannot compile them as a module)."""
    import json

    from fleet.release.repository import compress

    out = {"root1.json": v["ROOT1"], "root2.json": v["ROOT2"], "root2_new_only.json": v["ROOT2_NEW_ONLY"],
           "root1_expired.json": v["ROOT1_EXPIRED"], "file_small.bin": v["FILE_SMALL"],
           "file_big.bin": v["FILE_BIG"], "file_big.z": compress(v["FILE_BIG"])}
    cases = []
    for name, data, installed, reason in v["RELEASES"]:
        out[f"release_{name}.json"] = data
        cases.append([name, installed, reason])
    index = {"about": "Generated by tests/host/release_support.py (write_vectors) with the host library and "
                      "throwaway keys made from public labels; tests/host/test_release_vectors.py checks "
                      "they are current. releases: [name, installed counter, reason for a device of board "
                      "'virtual' in kommune 0751].",
             "now": v["NOW"], "releases": cases}
    out["cases.json"] = (json.dumps(index, indent=1, sort_keys=True) + "\n").encode()
    return out


def write_vectors():
    VECTORS_DIR.mkdir(exist_ok=True)
    for name, data in vector_files(make_vectors()).items():
        (VECTORS_DIR / name).write_bytes(data)


def run_fleet(*args, env, ok=True, timeout=300, outputs=None):
    """`fleet ARGS` in a subprocess with `env`; an AssertionError with its output if it fails and `ok`.
    `outputs`: a list that collects stdout + stderr (for tests that look for secrets in them)."""
    proc = subprocess.run([sys.executable, "-c", "from fleet.cli import main; main()", *map(str, args)],
                          capture_output=True, text=True, env=env, timeout=timeout)
    if outputs is not None:
        outputs.append(proc.stdout + proc.stderr)
    if ok and proc.returncode != 0:
        raise AssertionError(f"fleet {' '.join(map(str, args))} -> {proc.returncode}\n{proc.stdout}\n{proc.stderr}")
    return proc


def flip(path):
    """Flips one bit in the middle of the file at `path` (a tampered file)."""
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0x01
    path.write_bytes(bytes(data))
