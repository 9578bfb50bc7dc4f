# Signed metadata files (docs/formats/update-repository.md): two lines, the canonical JSON body (the signed
# bytes, verbatim) and the signatures; Ed25519 over SHA-256(body). The device hashes the bytes it received,
# then parses them: it never re-serialises JSON.
import binascii
import hashlib
import json

from . import ed25519
from .reasons import BAD_SIGNATURE, MALFORMED, NOT_DELEGATED, REVOKED, FORMAT, Refused, _need

def split(data):
    """(body bytes, body dict, signatures list, SHA-256 of the body) of a signed metadata file."""
    if type(data) not in (bytes, bytearray):
        data = bytes(data)
    nl = data.find(b"\n")
    _need(nl > 0, "no signature line")
    body = data[:nl]
    rest = data[nl + 1:]
    if rest.endswith(b"\n"):
        rest = rest[:-1]
    _need(b"\n" not in rest, "more than two lines")
    try:
        doc = json.loads(body)
        sigs = json.loads(rest)
    except ValueError:
        raise Refused(MALFORMED, "not JSON")
    parts(doc, sigs)
    return body, doc, sigs, hashlib.sha256(body).digest()


def parts(doc, sigs):
    """The checks of split() on a body and signatures parsed elsewhere (the OTA client streams metadata
    to flash and parses it from there, so no whole file sits in RAM)."""
    _need(type(doc) is dict, "body is not an object")
    _need(type(sigs) is list, "signatures are not a list")
    for s in sigs:
        _need(type(s) is dict and type(s.get("keyid")) is str and type(s.get("sig")) is str,
              "a signature lacks keyid or sig")
    _need(doc.get("format") == FORMAT, "unknown format version")


def keyid(public_key):
    """A key's id: the first 16 bytes of SHA-256 of its 32 raw bytes, in hex."""
    return binascii.hexlify(hashlib.sha256(public_key).digest()[:16]).decode()


def _signed_by(digest, sigs, keys, allowed, threshold, revoked=()):
    """Raises Refused unless `threshold` distinct keys in `allowed` signed `digest`."""
    good = []
    bad = False
    was_revoked = False
    for s in sigs:
        kid = s["keyid"]
        if kid in revoked:
            was_revoked = True
            continue
        if kid not in allowed or kid in good:
            continue
        try:
            sig = binascii.unhexlify(s["sig"])
        except ValueError:
            bad = True
            continue
        if ed25519.verify(keys[kid], digest, sig):
            good.append(kid)
        else:
            bad = True
    if len(good) >= threshold:
        return good
    if bad:
        raise Refused(BAD_SIGNATURE, "a signature does not match")
    if was_revoked:
        raise Refused(REVOKED, "signed by a revoked key")
    raise Refused(NOT_DELEGATED, "no signature by a key trusted for this")


