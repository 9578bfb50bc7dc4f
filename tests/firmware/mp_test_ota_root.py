# Root metadata on the device (firmware/bysans/ota/root.py, through verify's API) under MicroPython with a
# 64 KiB heap: rotation signed by the old and the new root, expiry, tampering; vectors the host library signed
# (tests/firmware/ota_vectors/, checked by tests/host/test_release_vectors.py), read from files through a
# small buffer as the OTA client reads them from flash. Releases: mp_test_ota_verify.py.
# mp32: also on 32 bits at the smallest board's heap (tests/firmware/conftest.py)
# mp: -X heapsize=64K
from bysans.ota import verify as ov

_DIR = __file__.rsplit("/", 1)[0] + "/ota_vectors/"


def _now():
    import json

    with open(_DIR + "cases.json") as f:
        return json.load(f)["now"]


NOW = _now()


def _refusal(fn, *args):
    try:
        fn(*args)
    except ov.Refused as e:
        return ov.NAMES[e.reason]
    return "OK"


def _root(name="root1.json", trusted=None, now=NOW):
    with open(_DIR + name, "rb") as f:
        return ov.load_root(f, trusted, now)


def _release(name, root, now=NOW):
    with open(_DIR + name, "rb") as f:
        return ov.verify_release(f, root, "virtual", "0751", now)


def test_a_root_read_through_a_tiny_buffer_is_the_same():
    root = _root()
    with open(_DIR + "root1.json", "rb") as f:  # through 8 bytes: every token spans reads
        r = ov.load_root(f, None, NOW, bytearray(8))
    assert r.digest == root.digest and r.keys == root.keys and r.release == root.release
    assert r.version == 1 and r.revoked == root.revoked and len(r.revoked) == 1


def test_expired_root_refuses_releases():
    assert _refusal(_root, "root1_expired.json") == "EXPIRED"
    old = _root("root1_expired.json", None, None)  # without a time: parsed and signature-checked only
    assert _refusal(_release, "release_good.json", old) == "EXPIRED"


def test_root_rotation_needs_old_and_new_root():
    r1 = _root()
    r2 = _root("root2.json", r1)
    assert r2.version == 2 and r2.root_keyids != r1.root_keyids
    assert _refusal(_root, "root2_new_only.json", r1) == "BAD_SIGNATURE"
    assert _refusal(_root, "root1.json", r2) == "DOWNGRADE"
    assert _root("root2.json", r2) is r2  # the same version again: nothing to do
    # releases keep verifying under the rotated root (the release keys did not change)
    _release("release_good.json", r2)


class _Parts:
    """A stream of byte strings, read as one (a file in pieces: no block of its size in the heap)."""

    def __init__(self, parts):
        self.parts = parts
        self.i = self.p = 0

    def readinto(self, b):
        n = 0
        while n < len(b) and self.i < len(self.parts):
            part = self.parts[self.i]
            k = min(len(b) - n, len(part) - self.p)
            b[n:n + k] = part[self.p:self.p + k]
            n += k
            self.p += k
            if self.p == len(part):
                self.i += 1
                self.p = 0
        return n


def _pieces(name, change=None):
    out = []
    with open(_DIR + name, "rb") as f:
        while True:
            piece = f.read(128)
            if not piece:
                assert change is None, "no piece holds the bytes to change"
                return out
            if change and change[0] in piece:
                piece = piece.replace(change[0], change[1], 1)
                change = None
            out.append(piece)


def test_tampered_root_is_refused():
    assert _refusal(ov.load_root, _Parts(_pieces("root1.json")), None, NOW) == "OK"
    bad = _Parts(_pieces("root1.json", (b'"version":1', b'"version":3')))  # in the signed body
    assert _refusal(ov.load_root, bad, None, NOW) == "BAD_SIGNATURE"
    assert _refusal(ov.load_root, b"garbage", None, NOW) == "MALFORMED"
    assert _refusal(ov.load_root, _Parts(_pieces("root1.json")[:1]), None, NOW) == "MALFORMED"  # cut short


def test_keyid_matches_host_definition():
    # first 16 bytes of SHA-256 of the raw key, hex: the host computes the same (fleet.keys.base.keyid)
    assert ov.keyid(bytes(32)) == "66687aadf862bd776c8fc18b8e9f8e20"
