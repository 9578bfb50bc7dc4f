"""`fleet release publish`: a static, content-addressed update repository (docs/formats/update-repository.md).

    REPO/repository.json                  {"format": 1, "type": "bysans-update-repository", "root_version": N}
    REPO/root/<N>.json                    every version of the signed root metadata (devices walk N+1, N+2, ...)
    REPO/objects/<sha256>.z               a file's bytes, zlib stream with a 1 KiB window; named by the
                                          SHA-256 of the *uncompressed* bytes, as the manifest lists them
    REPO/manifests/<sha256>.json          every published release manifest, named by the SHA-256 of its body
    REPO/channels/<kommune>/<board>.json  the release devices of that kommune and board should run now
    REPO/<either of the two above, less .json>.delta/<sha256>.bin
                                          that manifest as a delta against the body of an earlier release
                                          (named by SHA-256 of that body): what a board running it fetches

Everything but repository.json and channels/ is immutable, so any web server, CDN or bucket can serve it
and mirrors need no trust. Files are written to a temporary name and renamed, objects before manifests
before channels: a client never sees a channel whose objects are missing.
"""

import hashlib
import json
import os
import zlib
from dataclasses import dataclass
from pathlib import Path

from ..errors import Conflict, ReleaseError, VerificationRefused
from ..keys.store import KeyStore
from . import delta, metadata
from .build import FILES
from .reasons import Reason
from .sign import read_manifest, refused, verify_dir
from .verify import Refusal, check_stream, parse

REPO_TYPE = "bysans-update-repository"
WBITS = 10  # 1 KiB window: what a device with a 64 KiB heap can afford (deflate.DeflateIO reads it from the header)


@dataclass(frozen=True)
class Published:
    repo: str
    manifest: str
    channels: tuple
    objects_new: int
    objects_kept: int
    bytes_new: int

    def as_dict(self):
        d = self.__dict__.copy()
        d["channels"] = list(self.channels)
        return d


def compress(data: bytes) -> bytes:
    c = zlib.compressobj(level=9, method=zlib.DEFLATED, wbits=WBITS)
    return c.compress(data) + c.flush()


def decompress(data: bytes) -> bytes:
    return zlib.decompress(data, wbits=WBITS)


def _write(path: Path, data: bytes):
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def _write_once(path: Path, data: bytes) -> bool:
    """Writes an immutable file; True if new. An existing file with other bytes is a conflict."""
    if path.exists():
        if path.read_bytes() != data:
            raise Conflict(f"{path} exists with other contents", hint="immutable repository files are never rewritten")
        return False
    _write(path, data)
    return True


def object_path(repo, sha256_hex: str) -> Path:
    return Path(repo) / "objects" / f"{sha256_hex}.z"


def channel_path(repo, kommune: str, board: str) -> Path:
    return Path(repo) / "channels" / kommune / f"{board}.json"


def delta_path(metadata_path, base_digest: str) -> Path:
    """Where the delta of the manifest at `metadata_path` (a channel or manifests/ file) against the release
    whose body has SHA-256 `base_digest` (hex) lives: next to it, in <name>.delta/<base_digest>.bin."""
    p = Path(metadata_path)
    return p.with_name(p.stem + ".delta") / f"{base_digest}.bin"


def _delta_bases(repo: Path, doc: dict, digest: bytes) -> dict:
    """The published releases a board may run before this one: earlier counter, a board and a kommune in
    common. {body digest hex: (body, manifest)}."""
    bases = {}
    for p in sorted((repo / "manifests").glob("*.json")) if (repo / "manifests").is_dir() else ():
        try:
            body, old, _sigs, old_digest = parse(p.read_bytes())
        except Refusal:
            continue
        if (old_digest != digest and old.get("counter", -1) < doc["counter"]
                and set(old.get("boards", ())) & set(doc["boards"]) and set(old.get("kommuner", ())) & set(doc["kommuner"])):
            bases[old_digest.hex()] = (body, old)
    return bases


def publish(release_dir, repo, store: KeyStore, *, now: int | None = None) -> Published:
    """Publishes a signed release (verified first, for every kommune and board it names) into `repo`."""
    from ..keys.trust import current_root

    now = metadata.now() if now is None else now
    root = current_root(store)
    verdict = verify_dir(release_dir, root, now=now)
    if not verdict.ok:
        raise refused(verdict)
    doc, digest = verdict.manifest, verdict.digest
    data = read_manifest(release_dir)
    repo = Path(repo)
    info_path = repo / "repository.json"
    if info_path.exists():
        try:
            info = json.loads(info_path.read_text())
        except ValueError:
            info = None
        if not isinstance(info, dict) or info.get("type") != REPO_TYPE:
            raise ReleaseError(f"{repo} is not a Bysans update repository", hint="publish into a new or empty directory")
    elif repo.exists() and any(repo.iterdir()):
        raise ReleaseError(f"{repo} is not empty and not an update repository",
                           hint="publish into a new or empty directory")

    # The channels first in thought, last in writing: refuse a downgrade before anything is written.
    channels = [(k, b) for k in doc["kommuner"] for b in doc["boards"]]
    for k, b in channels:
        cp = channel_path(repo, k, b)
        if cp.exists():
            try:
                _, cur, _, cur_digest = parse(cp.read_bytes())
            except Refusal:
                continue
            c = cur.get("counter", -1)
            if c > doc["counter"] or (c == doc["counter"] and cur_digest != digest):
                raise VerificationRefused(Reason.DOWNGRADE,
                                          f"channel {k}/{b} has counter {c}; this release has {doc['counter']}",
                                          hint="build the release again with a higher --counter")

    for v in store.root_versions():
        _write_once(repo / "root" / f"{v}.json", store.root_path(v).read_bytes())
    new = kept = new_bytes = 0
    files_dir = Path(release_dir) / FILES
    for entry in doc["files"]:
        op = object_path(repo, entry["sha256"])
        if op.exists():
            kept += 1
            continue
        raw = (files_dir / entry["path"]).read_bytes()
        z = compress(raw)
        _write(op, z)
        new += 1
        new_bytes += len(z)
    manifest_path = repo / "manifests" / f"{digest.hex()}.json"
    bases = _delta_bases(repo, doc, digest)
    _write_once(manifest_path, data)
    for base_digest, (base_body, _base_doc) in bases.items():
        _write_once(delta_path(manifest_path, base_digest), delta.make(base_body, data))
    for k, b in channels:
        cp = channel_path(repo, k, b)
        stale = cp.with_name(cp.stem + ".delta")
        for old in stale.glob("*.bin") if stale.is_dir() else ():
            old.unlink()  # deltas to the channel's last release: a board that finds none takes the whole file
        _write(cp, data)
        for base_digest, (base_body, base_doc) in bases.items():
            if k in base_doc["kommuner"] and b in base_doc["boards"]:
                _write(delta_path(cp, base_digest), delta.make(base_body, data))
    _write(info_path, metadata.canonical({"format": metadata.FORMAT, "type": REPO_TYPE,
                                          "root_version": store.root_versions()[-1]}) + b"\n")
    return Published(str(repo), str(manifest_path), tuple(f"{k}/{b}" for k, b in channels), new, kept, new_bytes)


def check_object(repo, entry: dict):
    """Checks a repository object against its manifest entry (decompressed as a stream, stopping one byte
    past the announced length); returns a Verdict."""
    import io

    op = object_path(repo, entry["sha256"])
    if not op.is_file():
        from .verify import Verdict

        return Verdict(Reason.TOO_SHORT, f"{entry['path']}: object missing")
    d = zlib.decompressobj(wbits=WBITS)
    raw = op.read_bytes()
    limit = entry["length"] + 1
    out = d.decompress(raw, limit)
    return check_stream(entry, io.BytesIO(out))


def read_object(repo, sha256_hex: str) -> bytes:
    data = decompress(object_path(repo, sha256_hex).read_bytes())
    if hashlib.sha256(data).hexdigest() != sha256_hex:
        raise ReleaseError(f"object {sha256_hex} does not match its name")
    return data
