"""The FUOTA update payload (docs/formats/fuota.md, "Update payload"): what a fragmentation session carries
to a LoRaWAN-only node. Its layout is declared once, in firmware/bysans/fuota/payload_spec.py (executed here
by path); the device reads it with firmware/bysans/fuota/install.py.

It carries what the device lacks and nothing else: the release's signed manifest, as a manifest delta
(fleet/release/delta.py) against the release the device runs when that is known, and the files whose
SHA-256 that release lacks, each as the update repository stores it (zlib, 1 KiB window). No trust is
added: the device verifies the manifest and every file as the HTTP route does.
"""

import hashlib
import json
import zlib
from dataclasses import dataclass, field
from pathlib import Path

from .. import firmware_data
from ..errors import PayloadError
from ..release import delta, metadata
from ..release.build import FILES
from ..release.repository import compress
from ..release.sign import read_manifest

SPEC = firmware_data.load("bysans/fuota/payload_spec.py")


@dataclass
class Payload:
    data: bytes
    version: str
    counter: int
    board: str
    kommune: str
    manifest_kind: str  # "signed" or "delta"
    manifest_bytes: int
    base: dict | None  # {"version", "counter", "release": sha256 hex of its body}
    objects: list = field(default_factory=list)  # {"path", "sha256", "length", "compressed"}
    unchanged: int = 0  # files the device copies from the release it runs
    release: str = ""  # SHA-256 hex of the new manifest's body (what the device reports once it runs it)

    @property
    def size(self) -> int:
        return len(self.data)

    def as_dict(self) -> dict:
        return {"bytes": self.size, "version": self.version, "counter": self.counter, "board": self.board,
                "kommune": self.kommune, "manifest": {"kind": self.manifest_kind, "bytes": self.manifest_bytes},
                "release": self.release, "base": self.base, "objects": self.objects, "unchanged": self.unchanged}


def _signed_lines(signed: bytes) -> tuple[bytes, list]:
    body, sep, rest = signed.partition(b"\n")
    try:
        sigs = json.loads(rest) if sep else []
    except ValueError:
        sigs = []
    return body, sigs


def base_from_repo(repo, version: str, board: str, kommune: str) -> bytes:
    """The body (line 1) of the published manifest of `version` for that board and kommune (the highest
    counter when several were published)."""
    found = []
    mdir = Path(repo) / "manifests"
    if not mdir.is_dir():
        raise PayloadError(f"{repo} is not an update repository (no manifests/)",
                           hint="give the repository `fleet release publish` writes, or --base-manifest FILE")
    for p in sorted(mdir.glob("*.json")):
        body = p.read_bytes().split(b"\n", 1)[0]
        try:
            doc = json.loads(body)
        except ValueError:
            continue
        if (isinstance(doc, dict) and doc.get("version") == version and board in doc.get("boards", ())
                and kommune in doc.get("kommuner", ())):
            found.append((doc.get("counter", 0), body))
    if not found:
        raise PayloadError(f"no release {version} for board {board} and kommune {kommune} in {repo}",
                           hint="name the version the devices run now (fleet rollout status), or give "
                                "--base-manifest with its manifest")
    return max(found)[1]


def build(release_dir, *, board: str, kommune, base_body: bytes | None = None) -> Payload:
    """The payload that brings a device of `board` and `kommune` from the release whose manifest body is
    `base_body` (None: from nothing, every file) to the signed release in `release_dir`."""
    kommune = metadata.kommunekode(kommune)
    signed = read_manifest(release_dir)
    body, sigs = _signed_lines(signed)
    doc = metadata.body_of(signed)
    if not sigs:
        raise PayloadError(f"{release_dir} is not signed: a device refuses it",
                           hint=f"sign it first: fleet release sign {release_dir} --kommune {int(kommune)}")
    if board not in doc.get("boards", ()):
        raise PayloadError(f"{release_dir} is built for {', '.join(doc.get('boards', ()))}, not {board}",
                           hint="build the release for that board, or give the devices' own --board")
    if kommune not in doc.get("kommuner", ()):
        raise PayloadError(f"{release_dir} is signed for {', '.join(doc.get('kommuner', ()))}, not {kommune}",
                           hint=f"sign it for that kommune: fleet release sign {release_dir} --kommune {int(kommune)}")
    have, base = set(), None
    if base_body is not None:
        base_body = bytes(base_body).split(b"\n", 1)[0]
        old = metadata.body_of(base_body)
        have = {e["sha256"] for e in old.get("files", ()) if isinstance(e, dict) and "sha256" in e}
        base = {"version": old.get("version"), "counter": old.get("counter"),
                "release": hashlib.sha256(base_body).hexdigest()}
        manifest, kind = delta.make(base_body, signed), SPEC.KIND_DELTA
    else:
        manifest, kind = signed, SPEC.KIND_SIGNED
    objects, parts, unchanged, seen = [], [], 0, set()
    files = Path(release_dir) / FILES
    for e in doc["files"]:
        if e["sha256"] in have:
            unchanged += 1
            continue
        if e["sha256"] in seen:  # two paths with the same bytes: one object serves both
            continue
        seen.add(e["sha256"])
        try:
            raw = (files / e["path"]).read_bytes()
        except OSError:
            raise PayloadError(f"{release_dir}: {e['path']} is missing",
                               hint=f"check the release: fleet release verify {release_dir}") from None
        if hashlib.sha256(raw).hexdigest() != e["sha256"] or len(raw) != e["length"]:
            raise PayloadError(f"{release_dir}: {e['path']} differs from its manifest",
                               hint=f"check the release: fleet release verify {release_dir}")
        z = compress(raw)
        parts.append(SPEC.pack_object(bytes.fromhex(e["sha256"]), z))
        objects.append({"path": e["path"], "sha256": e["sha256"], "length": e["length"], "compressed": len(z)})
    if len(objects) > SPEC.MAX_OBJECTS:
        raise PayloadError(f"{len(objects)} files to send, a payload holds at most {SPEC.MAX_OBJECTS}")
    out = SPEC.pack_header(kind, len(objects), len(manifest)) + manifest + b"".join(parts)
    out += (zlib.crc32(out) & 0xFFFFFFFF).to_bytes(4, "little")
    return Payload(out, doc["version"], doc["counter"], board, kommune,
                   "delta" if kind == SPEC.KIND_DELTA else "signed", len(manifest), base, objects, unchanged,
                   hashlib.sha256(body).hexdigest())


def read(data: bytes) -> dict:
    """The parts of a payload (for tests and checks): {"kind", "manifest", "objects": {sha256 hex: zlib
    bytes}}; PayloadError when it is not one."""
    data = bytes(data)
    if len(data) < SPEC.HEADER_SIZE + SPEC.CRC_SIZE:
        raise PayloadError("too short for a FUOTA update payload")
    if zlib.crc32(data[:-4]) & 0xFFFFFFFF != int.from_bytes(data[-4:], "little"):
        raise PayloadError("the payload fails its CRC-32")
    try:
        kind, n, mlen = SPEC.unpack_header(data[:SPEC.HEADER_SIZE])
    except ValueError as e:
        raise PayloadError(str(e)) from None
    pos = SPEC.HEADER_SIZE + mlen
    manifest = data[SPEC.HEADER_SIZE:pos]
    objects = {}
    for _ in range(n):
        if pos + SPEC.OBJECT_SIZE > len(data) - 4:
            raise PayloadError("the payload ends inside an object")
        digest, clen = SPEC.unpack_object(data[pos:pos + SPEC.OBJECT_SIZE])
        pos += SPEC.OBJECT_SIZE
        objects[digest.hex()] = data[pos:pos + clen]
        pos += clen
    if pos != len(data) - 4:
        raise PayloadError("the payload's parts do not add up to its length")
    return {"kind": kind, "manifest": manifest, "objects": objects}
