# Root metadata on the device: which keys are root, which release keys serve which kommuner, which are
# revoked; rotation chains (each new version signed by the old root and the new one).
import binascii

from .reasons import BAD_SIGNATURE, DOWNGRADE, EXPIRED, MALFORMED, NOT_DELEGATED, ROOT_TYPE, Refused, _is_int, _is_str_list, _need
from .signed import _signed_by, keyid, split

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


def load_root(data, trusted=None, now=None):
    """Checks root metadata and returns a Root.

    Without `trusted` (the root the device was enrolled with, read from its own flash), the metadata
    must carry a threshold of signatures by its own root keys. With `trusted`, it is the next step of a
    rotation chain: its version must be higher, and it must be signed by a threshold of the trusted root
    keys and of its own (so a rotation is signed by the old and the new root). Walk a chain one version
    at a time; `now` (Unix seconds) is checked only if given: check it on the last step only (TUF 5.3).
    """
    _body, doc, sigs, digest = split(data)
    return root_from_parts(doc, sigs, digest, trusted, now)


def root_from_parts(doc, sigs, digest, trusted=None, now=None):
    """load_root on a body and signatures already parsed (signed.parts checked) and its SHA-256 digest."""
    _root_doc(doc)
    root = Root(doc, digest)
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


