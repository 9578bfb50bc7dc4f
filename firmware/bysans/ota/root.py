# Root metadata on the device: which keys are root, which release keys serve which kommuner, which are
# revoked; rotation chains (each new version signed by the old root and the new one); and the signature
# check itself (Ed25519 over the SHA-256 of a body, by keys the root trusts for it).
import binascii
import hashlib

from .reasons import (BAD_SIGNATURE, DOWNGRADE, EXPIRED, MALFORMED, NOT_DELEGATED, REVOKED, ROOT_TYPE, Refused,
                      _is_int, _is_str_list, _need)
from .signed import read
from . import ed25519


class Root:
    """Parsed, signature-checked root metadata: which keys are root, which release keys serve which
    kommuner, which keys are revoked."""

    def __init__(self, doc, digest):
        self.version = doc["version"]
        self.expires = doc["expires"]
        self.digest = digest
        keys = {}
        for kid, pub in doc["keys"].items():
            _need(type(pub) is str and len(pub) == 64, "a public key is not 32 bytes of hex")
            try:
                raw = binascii.unhexlify(pub)
            except ValueError:
                raise Refused(MALFORMED, "a public key is not hex")
            _need(keyid(raw) == kid, "a key id does not match its key")
            keys[kid] = raw
        self.keys = keys
        root = doc["root"]
        _need(type(root) is dict and _is_str_list(root.get("keyids")) and _is_int(root.get("threshold")),
              "bad root role")
        self.root_keyids = root["keyids"]
        self.threshold = root["threshold"]
        _need(self.threshold >= 1, "root threshold below 1")
        self.release = doc["release"]  # keyid -> [kommunekode, ...]
        _need(type(self.release) is dict, "bad release delegations")
        for kid, kommuner in self.release.items():
            _need(kid in keys and _is_str_list(kommuner), "bad delegation")
        for kid in self.root_keyids:
            _need(kid in keys, "a root key id has no key")
        self.revoked = doc["revoked"]
        _need(_is_str_list(self.revoked), "bad revocation list")

    def delegated(self, kommune):
        """Key ids of the release keys delegated for `kommune` (revoked ones excluded)."""
        out = []
        for kid, kommuner in self.release.items():
            if kommune in kommuner and kid not in self.revoked:
                out.append(kid)
        return out


def _root_doc(doc):
    _need(doc.get("_type") == ROOT_TYPE, "not root metadata")
    _need(_is_int(doc.get("version")) and doc["version"] >= 1, "bad version")
    _need(_is_int(doc.get("expires")), "bad expires")
    _need(type(doc.get("keys")) is dict, "bad keys")
    _need(_is_str_list(doc.get("revoked")), "bad revoked")


def load_root(src, trusted=None, now=None, buf=None, sigs=None):
    """Checks root metadata and returns a Root. `src`, `buf`, `sigs`: as signed.read's (bytes, or a stream
    read through `buf`; line 2 apart).

    Without `trusted` (the root the device was enrolled with, read from its own flash), the metadata
    must carry a threshold of signatures by its own root keys. With `trusted`, it is the next step of a
    rotation chain: its version must be higher, and it must be signed by a threshold of the trusted root
    keys and of its own (so a rotation is signed by the old and the new root). Walk a chain one version
    at a time; `now` (Unix seconds) is checked only if given: check it on the last step only (TUF 5.3).
    Only the Root is kept (keys, roles, delegations): the document is garbage before the signatures are
    checked, and the trusted Root can go once the next one is loaded.
    """
    doc, sigs, digest = read(src, None, buf, sigs)
    _root_doc(doc)
    root = Root(doc, digest)
    doc = None
    return _checked(root, sigs, digest, trusted, now)


def _checked(root, sigs, digest, trusted, now):
    if trusted is not None:
        if root.version <= trusted.version:
            if root.version == trusted.version and digest == trusted.digest:
                return trusted
            raise Refused(DOWNGRADE, "root version %d, trusted %d" % (root.version, trusted.version))
        try:
            _signed_by(digest, sigs, trusted.keys, trusted.root_keyids, trusted.threshold)
        except Refused as e:
            if e.reason == NOT_DELEGATED:
                raise Refused(BAD_SIGNATURE, "not signed by the trusted root")
            raise
    try:
        _signed_by(digest, sigs, root.keys, root.root_keyids, root.threshold)
    except Refused as e:
        if e.reason == NOT_DELEGATED:
            raise Refused(BAD_SIGNATURE, "not signed by its own root keys")
        raise
    if now is not None and now >= root.expires:
        raise Refused(EXPIRED, "root metadata expired")
    return root


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
