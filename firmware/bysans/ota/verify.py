# Release metadata checks on the device: pure (no hardware, no network, no clock: `now` is passed in).
#
# Formats: docs/formats/update-repository.md. A signed metadata file is two lines:
#   line 1: the body, canonical JSON (the signed bytes, verbatim; no newline can occur inside it)
#   line 2: the signatures, [{"keyid": "<32 hex>", "sig": "<128 hex>"}, ...]
# Each signature is Ed25519 over SHA-256(line 1): 32 bytes, so the device's SHA-512 hashes one block.
# The device never re-serialises JSON: it hashes the bytes it received, then parses them.
#
# Every refusal raises Refused with its own reason code. The host (fleet/release/reasons.py) has the same
# codes as an enum; a host test keeps the two tables equal.
# The checks are split over small modules (reasons, signed, root, files) so that a small heap compiles one
# at a time; this module is the API: everything an OTA client needs is importable from here.
from .reasons import *  # noqa: F401,F403  (OK, MALFORMED, ..., NAMES, Refused)
from .reasons import DOWNGRADE, EXPIRED, RELEASE_TYPE, WRONG_BOARD, WRONG_KOMMUNE, Refused, _is_int, _is_str_list, _need
from .signed import _signed_by, keyid, parts, split  # noqa: F401
from .root import Root, load_root, root_from_parts  # noqa: F401
from .files import FileCheck, changed_files  # noqa: F401


def _safe_path(path):
    if type(path) is not str or not path or len(path) > 128:
        return False
    if path[0] == "/" or "\\" in path or "\x00" in path:
        return False
    for part in path.split("/"):
        if part in ("", ".", ".."):
            return False
    return True


def _release_doc(doc):
    _need(doc.get("_type") == RELEASE_TYPE, "not a release manifest")
    _need(type(doc.get("version")) is str, "bad version")
    _need(_is_int(doc.get("counter")) and doc["counter"] >= 0, "bad counter")
    _need(_is_int(doc.get("expires")), "bad expires")
    _need(_is_str_list(doc.get("boards")), "bad boards")
    _need(_is_str_list(doc.get("kommuner")), "bad kommuner")
    files = doc.get("files")
    _need(type(files) is list, "bad files")
    seen = set()
    for f in files:
        _need(type(f) is dict, "bad file entry")
        _need(_safe_path(f.get("path")), "unsafe or missing file path")
        _need(f["path"] not in seen, "a path appears twice")
        seen.add(f["path"])
        _need(_is_int(f.get("length")) and f["length"] >= 0, "bad file length")
        h = f.get("sha256")
        _need(type(h) is str and len(h) == 64, "bad file sha256")


def verify_release(data, root, board, kommune, now, installed_counter=None, installed_digest=None):
    """Checks a signed release manifest for this device; returns (manifest dict, its SHA-256 digest).

    `root` is a Root (load_root), `board` the board name, `kommune` the 4-digit kommunekode, `now` Unix
    seconds. `installed_counter`/`installed_digest` are those of the installed release: a lower counter
    is a downgrade, and so is the same counter with other contents. Order: format, signature, expiry,
    board, kommune, counter; nothing in the manifest is trusted before its signature is.
    """
    _body, doc, sigs, digest = split(data)
    return check_release(doc, sigs, digest, root, board, kommune, now, installed_counter, installed_digest)


def check_release(doc, sigs, digest, root, board, kommune, now, installed_counter=None, installed_digest=None):
    """verify_release on a body and signatures already parsed (signed.parts checked) and its digest."""
    _release_doc(doc)
    _signed_by(digest, sigs, root.keys, root.delegated(kommune), 1, root.revoked)
    if now >= root.expires:
        raise Refused(EXPIRED, "root metadata expired")
    if now >= doc["expires"]:
        raise Refused(EXPIRED, "release manifest expired")
    if board not in doc["boards"]:
        raise Refused(WRONG_BOARD, "release is for " + ",".join(doc["boards"]))
    if kommune not in doc["kommuner"]:
        raise Refused(WRONG_KOMMUNE, "release is for " + ",".join(doc["kommuner"]))
    if installed_counter is not None:
        c = doc["counter"]
        if c < installed_counter:
            raise Refused(DOWNGRADE, "counter %d, installed %d" % (c, installed_counter))
        if c == installed_counter and installed_digest is not None and digest != installed_digest:
            raise Refused(DOWNGRADE, "same counter %d, other contents" % c)
    return doc, digest


