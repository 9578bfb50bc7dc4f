"""Host-side verification of root metadata, release manifests and files, with the device's rules and
reason codes (firmware/bysans/ota/verify.py), written independently on top of `cryptography`.

Functions return a Verdict (reason enum, detail, the checked manifest); they never print or raise for a
refusal. `VerificationRefused` (fleet.errors) is what the CLI raises from a refused Verdict.
"""

import hashlib
import json
import re
from dataclasses import dataclass, field
from pathlib import Path

from ..keys.base import keyid as _keyid
from ..keys.ed25519 import Ed25519PublicKey
from . import metadata
from .reasons import Reason

CHUNK = 4096


class Refusal(Exception):
    def __init__(self, reason: Reason, detail: str = ""):
        super().__init__(f"{reason.name}: {detail}")
        self.reason = reason
        self.detail = detail


@dataclass(frozen=True)
class Verdict:
    reason: Reason
    detail: str = ""
    manifest: dict | None = None
    digest: bytes | None = None

    @property
    def ok(self) -> bool:
        return self.reason is Reason.OK

    def as_dict(self) -> dict:
        return {"ok": self.ok, "reason": self.reason.name, "code": int(self.reason), "detail": self.detail,
                "message": self.reason.message,
                "digest": self.digest.hex() if self.digest else None,
                "version": (self.manifest or {}).get("version"), "counter": (self.manifest or {}).get("counter")}


def _need(cond, detail):
    if not cond:
        raise Refusal(Reason.MALFORMED, detail)


def _is_int(x):
    return type(x) is int


def _str_list(x):
    return type(x) is list and all(type(s) is str for s in x)


def parse(data: bytes):
    """(body bytes, body, signatures, SHA-256 of body) of a signed metadata file; Refusal(MALFORMED)."""
    data = bytes(data)
    body, sep, rest = data.partition(b"\n")
    _need(sep and body, "no signature line")
    if rest.endswith(b"\n"):
        rest = rest[:-1]
    _need(b"\n" not in rest, "more than two lines")
    try:
        doc = json.loads(body)
        sigs = json.loads(rest)
    except (ValueError, UnicodeDecodeError):
        raise Refusal(Reason.MALFORMED, "not JSON") from None
    _need(isinstance(doc, dict), "body is not an object")
    _need(isinstance(sigs, list), "signatures are not a list")
    for s in sigs:
        _need(isinstance(s, dict) and type(s.get("keyid")) is str and type(s.get("sig")) is str,
              "a signature lacks keyid or sig")
    _need(doc.get("format") == metadata.FORMAT and type(doc.get("format")) is int, "unknown format version")
    return body, doc, sigs, hashlib.sha256(body).digest()


@dataclass
class Root:
    version: int
    expires: int
    digest: bytes
    keys: dict = field(repr=False)            # keyid -> Ed25519PublicKey
    root_keyids: list = field(default_factory=list)
    threshold: int = 1
    release: dict = field(default_factory=dict)  # keyid -> [kommunekode]
    revoked: list = field(default_factory=list)
    body: dict = field(default_factory=dict, repr=False)
    data: bytes = field(default=b"", repr=False)

    def delegated(self, kommune: str) -> list[str]:
        return [k for k, ks in self.release.items() if kommune in ks and k not in self.revoked]


def _root(doc, digest, data) -> Root:
    _need(doc.get("_type") == metadata.ROOT_TYPE, "not root metadata")
    _need(_is_int(doc.get("version")) and doc["version"] >= 1, "bad version")
    _need(_is_int(doc.get("expires")), "bad expires")
    _need(isinstance(doc.get("keys"), dict), "bad keys")
    _need(_str_list(doc.get("revoked")), "bad revoked")
    keys = {}
    for kid, pub in doc["keys"].items():
        _need(type(pub) is str and re.fullmatch(r"[0-9a-fA-F]{64}", pub), "a public key is not 32 bytes of hex")
        raw = bytes.fromhex(pub)
        _need(_keyid(raw) == kid, "a key id does not match its key")
        try:
            keys[kid] = Ed25519PublicKey(raw)
        except Exception:
            raise Refusal(Reason.MALFORMED, "a public key is not a valid point") from None
    role = doc.get("root")
    _need(isinstance(role, dict) and _str_list(role.get("keyids")) and _is_int(role.get("threshold")),
          "bad root role")
    _need(role["threshold"] >= 1, "root threshold below 1")
    _need(all(k in keys for k in role["keyids"]), "a root key id has no key")
    release = doc.get("release")
    _need(isinstance(release, dict), "bad release delegations")
    for kid, ks in release.items():
        _need(kid in keys and _str_list(ks), "bad delegation")
    return Root(version=doc["version"], expires=doc["expires"], digest=digest, keys=keys,
                root_keyids=list(role["keyids"]), threshold=role["threshold"], release=dict(release),
                revoked=list(doc["revoked"]), body=doc, data=bytes(data))


def _signed_by(digest, sigs, keys, allowed, threshold, revoked=()):
    good, bad, was_revoked = set(), False, False
    for s in sigs:
        kid = s["keyid"]
        if kid in revoked:
            was_revoked = True
            continue
        if kid not in allowed or kid in good:
            continue
        if not re.fullmatch(r"[0-9a-fA-F]{128}", s["sig"]):
            bad = True
            continue
        if keys[kid].verify(bytes.fromhex(s["sig"]), digest):
            good.add(kid)
        else:
            bad = True
    if len(good) >= threshold:
        return good
    if bad:
        raise Refusal(Reason.BAD_SIGNATURE, "a signature does not match")
    if was_revoked:
        raise Refusal(Reason.REVOKED, "signed by a revoked key")
    raise Refusal(Reason.NOT_DELEGATED, "no signature by a key trusted for this")


def _as_bad_signature(fn, detail):
    try:
        return fn()
    except Refusal as e:
        if e.reason is Reason.NOT_DELEGATED:
            raise Refusal(Reason.BAD_SIGNATURE, detail) from None
        raise


def load_root(data: bytes, trusted: Root | None = None, now: int | None = None) -> Root:
    """Checks root metadata (self-signed; with `trusted`, also signed by it and of a higher version).
    Raises Refusal."""
    _body, doc, sigs, digest = parse(data)
    root = _root(doc, digest, data)
    if trusted is not None:
        if root.version <= trusted.version:
            if root.version == trusted.version and digest == trusted.digest:
                return trusted
            raise Refusal(Reason.DOWNGRADE, f"root version {root.version}, trusted {trusted.version}")
        _as_bad_signature(lambda: _signed_by(digest, sigs, trusted.keys, trusted.root_keyids, trusted.threshold),
                          "not signed by the trusted root")
    _as_bad_signature(lambda: _signed_by(digest, sigs, root.keys, root.root_keyids, root.threshold),
                      "not signed by its own root keys")
    if now is not None and now >= root.expires:
        raise Refusal(Reason.EXPIRED, "root metadata expired")
    return root


def walk_roots(chain: list[bytes], trusted: Root | None = None, now: int | None = None) -> Root:
    """Follows a root chain (versions in order) from `trusted` (or the first, self-signed); the expiry
    is checked on the last one only."""
    root = trusted
    for i, data in enumerate(chain):
        root = load_root(data, root, now if i == len(chain) - 1 else None)
    if root is None:
        raise Refusal(Reason.MALFORMED, "no root metadata")
    return root


def _safe_path(p):
    if type(p) is not str or not p or len(p) > 128 or p[0] == "/" or "\\" in p or "\x00" in p:
        return False
    return all(part not in ("", ".", "..") for part in p.split("/"))


def _release(doc):
    _need(doc.get("_type") == metadata.RELEASE_TYPE, "not a release manifest")
    _need(type(doc.get("version")) is str, "bad version")
    _need(_is_int(doc.get("counter")) and doc["counter"] >= 0, "bad counter")
    _need(_is_int(doc.get("expires")), "bad expires")
    _need(_str_list(doc.get("boards")), "bad boards")
    _need(_str_list(doc.get("kommuner")), "bad kommuner")
    files = doc.get("files")
    _need(isinstance(files, list), "bad files")
    seen = set()
    for f in files:
        _need(isinstance(f, dict), "bad file entry")
        _need(_safe_path(f.get("path")), "unsafe or missing file path")
        _need(f["path"] not in seen, "a path appears twice")
        seen.add(f["path"])
        _need(_is_int(f.get("length")) and f["length"] >= 0, "bad file length")
        _need(type(f.get("sha256")) is str and len(f["sha256"]) == 64, "bad file sha256")


def verify_release(data: bytes, root: Root, *, now: int, board: str | None = None, kommune: str | None = None,
                   installed_counter: int | None = None, installed_digest: bytes | None = None) -> Verdict:
    """Checks a signed release manifest as a device of `board` in `kommune` would.

    Without `kommune`, every kommune the manifest names must be covered by a signature of a key delegated
    for it (what a release must satisfy before it is published); without `board`, any board passes.
    """
    try:
        _body, doc, sigs, digest = parse(data)
        _release(doc)
        kommuner = [kommune] if kommune is not None else list(doc["kommuner"])
        if not kommuner:
            raise Refusal(Reason.WRONG_KOMMUNE, "the release names no kommune")
        for k in kommuner:
            _signed_by(digest, sigs, root.keys, root.delegated(k), 1, root.revoked)
        if now >= root.expires:
            raise Refusal(Reason.EXPIRED, f"root metadata expired at {metadata.iso(root.expires)}")
        if now >= doc["expires"]:
            raise Refusal(Reason.EXPIRED, f"release manifest expired at {metadata.iso(doc['expires'])}")
        if board is not None and board not in doc["boards"]:
            raise Refusal(Reason.WRONG_BOARD, f"release is for {', '.join(doc['boards'])}, not {board}")
        if kommune is not None and kommune not in doc["kommuner"]:
            raise Refusal(Reason.WRONG_KOMMUNE, f"release is for {', '.join(doc['kommuner'])}, not {kommune}")
        if installed_counter is not None:
            c = doc["counter"]
            if c < installed_counter:
                raise Refusal(Reason.DOWNGRADE, f"counter {c}, installed {installed_counter}")
            if c == installed_counter and installed_digest is not None and digest != installed_digest:
                raise Refusal(Reason.DOWNGRADE, f"same counter {c}, other contents")
    except Refusal as e:
        return Verdict(e.reason, e.detail)
    return Verdict(Reason.OK, "", doc, digest)


def check_stream(entry: dict, stream) -> Verdict:
    """Checks a file's bytes from a binary stream against its manifest entry, reading at most one byte
    more than announced."""
    h = hashlib.sha256()
    seen = 0
    length = entry["length"]
    while True:
        chunk = stream.read(min(CHUNK, length - seen + 1))
        if not chunk:
            break
        seen += len(chunk)
        if seen > length:
            return Verdict(Reason.TOO_LONG, f"{entry['path']}: more than {length} bytes")
        h.update(chunk)
    if seen < length:
        return Verdict(Reason.TOO_SHORT, f"{entry['path']}: {seen} of {length} bytes")
    if h.hexdigest() != entry["sha256"]:
        return Verdict(Reason.BAD_HASH, entry["path"])
    return Verdict(Reason.OK)


def check_files(manifest: dict, files_dir: Path) -> Verdict:
    """Checks every file the manifest lists under `files_dir` (a missing file is TOO_SHORT), and that
    `files_dir` holds nothing else (UNLISTED)."""
    listed = {entry["path"] for entry in manifest["files"]}
    for path in sorted(Path(files_dir).rglob("*")):
        rel = path.relative_to(files_dir).as_posix()
        if (path.is_file() or path.is_symlink()) and rel not in listed:
            return Verdict(Reason.UNLISTED, rel)
    for entry in manifest["files"]:
        path = Path(files_dir) / entry["path"]
        if not path.is_file():
            return Verdict(Reason.TOO_SHORT, f"{entry['path']}: missing")
        with open(path, "rb") as f:
            v = check_stream(entry, f)
        if not v.ok:
            return v
    return Verdict(Reason.OK)
