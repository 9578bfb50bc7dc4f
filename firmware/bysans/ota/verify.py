# Release metadata checks on the device: pure (no hardware, no network, no clock: `now` is passed in).
#
# Formats: docs/formats/update-repository.md. A signed metadata file is two lines:
#   line 1: the body, canonical JSON (the signed bytes, verbatim; no newline can occur inside it)
#   line 2: the signatures, [{"keyid": "<32 hex>", "sig": "<128 hex>"}, ...]
# Each signature is Ed25519 over SHA-256(line 1): 32 bytes, so the device's SHA-512 hashes one block.
# The device never re-serialises JSON: it hashes the bytes it received while it parses them, in one pass
# through a small buffer (signed.read), and a manifest's list of files is packed as it is read
# (manifest.Files): never a dict per file.
#
# Every refusal raises Refused with its own reason code. The host (fleet/release/reasons.py) has the same
# codes as an enum; a host test keeps the two tables equal.
# The checks are split over small modules so that a small heap compiles one at a time: reasons (the codes),
# jsonpull and signed (reading a signed file), manifest (a release manifest's format and files), root (root
# metadata, signatures; the only one that needs ed25519), files (a file's check while it streams). This
# module is the API: everything an OTA client needs is importable from here.
# (The order of these imports is the order a small heap compiles them from source in; of all orders, this
# one left tests/firmware/mp_test_ota_{verify,root}.py the most room.)
from .reasons import *  # noqa: F401,F403  (OK, MALFORMED, ..., NAMES, Refused)
from .reasons import DOWNGRADE, EXPIRED, WRONG_BOARD, WRONG_KOMMUNE, Refused
from .manifest import Files, _release_doc, _safe_path, changed_files, read_release  # noqa: F401
from .signed import read  # noqa: F401
from .files import FileCheck  # noqa: F401
from .root import Root, _signed_by, keyid, load_root  # noqa: F401


def verify_release(data, root, board, kommune, now, installed_counter=None, installed_digest=None):
    """Checks a signed release manifest for this device; returns (manifest dict, its SHA-256 digest).

    `data`: the signed file (bytes, or a stream: signed.read). `root` is a Root (load_root), `board` the
    board name, `kommune` the 4-digit kommunekode, `now` Unix seconds. `installed_counter`/`installed_digest`
    are those of the installed release: a lower counter is a downgrade, and so is the same counter with
    other contents. Order: format, signature, expiry, board, kommune, counter; nothing in the manifest is
    trusted before its signature is. The manifest's "files" is a manifest.Files (entries as dicts on demand).
    """
    doc, sigs, digest = read_release(data)
    return check_release(doc, sigs, digest, root, board, kommune, now, installed_counter, installed_digest)


def check_release(doc, sigs, digest, root, board, kommune, now, installed_counter=None, installed_digest=None):
    """verify_release on a manifest already read (read_release) and its digest."""
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
