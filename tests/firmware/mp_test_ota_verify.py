# Release metadata checks on the device (firmware/bysans/ota/verify.py) under MicroPython with a small
# heap, on roots and manifests the host library signed (tests/firmware/ota_vectors/, generated and
# checked by tests/host/test_release_vectors.py; releases the real CLI builds are run through this code in
# tests/host/test_release_cli.py).
# Heap: 96 KiB here, because these modules are compiled from .py source by a 64-bit port (pointers twice
# an ESP32's). The same checks from .mpy (what a release ships) run with an 80 KiB heap in
# tests/host/test_release_cli.py::test_device_verifies_cli_releases_from_mpy_in_a_small_heap.
# mp: -X heapsize=96K
import gc
import hashlib
import io

import json

from bysans.ota import verify as ov

_DIR = __file__.rsplit("/", 1)[0] + "/ota_vectors/"


def _read(name):
    with open(_DIR + name, "rb") as f:
        return f.read()


class _Vectors:
    # Read from the files when asked, never all at once: the test must fit the heap of a small board.
    def __init__(self):
        c = json.loads(_read("cases.json"))
        self.NOW = c["now"]
        self.CASES = c["releases"]

    def __getattr__(self, name):
        return _read(_NAMES[name])


_NAMES = {"ROOT1": "root1.json", "ROOT2": "root2.json", "ROOT2_NEW_ONLY": "root2_new_only.json",
          "ROOT1_EXPIRED": "root1_expired.json", "FILE_SMALL": "file_small.bin", "FILE_BIG": "file_big.bin",
          "FILE_BIG_Z": "file_big.z", "GOOD": "release_good.json"}
V = _Vectors()


def _refusal(fn, *args):
    try:
        fn(*args)
    except ov.Refused as e:
        return ov.NAMES[e.reason]
    return "OK"


def _root():
    return ov.load_root(V.ROOT1, None, V.NOW)


def test_each_release_case_gets_its_reason():
    root = _root()
    for name, installed, want in V.CASES:
        gc.collect()
        data = _read("release_%s.json" % name)
        got = _refusal(ov.verify_release, data, root, "virtual", "0751", V.NOW, installed)
        assert got == want, (name, got, want)


def test_good_release_returns_manifest_and_digest():
    doc, digest = ov.verify_release(V.GOOD, _root(), "virtual", "0751", V.NOW)
    assert doc["counter"] == 10 and len(digest) == 32
    assert [f["path"] for f in doc["files"]] == ["bysans/app.mpy", "main.py"]


def test_same_counter_other_contents_is_a_downgrade():
    root = _root()
    good = V.GOOD
    _doc, digest = ov.verify_release(good, root, "virtual", "0751", V.NOW, 10, None)
    assert _refusal(ov.verify_release, good, root, "virtual", "0751", V.NOW, 10, digest) == "OK"
    assert _refusal(ov.verify_release, good, root, "virtual", "0751", V.NOW, 10, b"\x00" * 32) == "DOWNGRADE"


def test_expires_exactly_now_is_expired():
    root = _root()
    doc, _ = ov.verify_release(V.GOOD, root, "virtual", "0751", V.NOW)
    at = doc["expires"]
    assert _refusal(ov.verify_release, V.GOOD, root, "virtual", "0751", at) == "EXPIRED"
    assert _refusal(ov.verify_release, V.GOOD, root, "virtual", "0751", at - 1) == "OK"


def test_expired_root_refuses_releases():
    assert _refusal(ov.load_root, V.ROOT1_EXPIRED, None, V.NOW) == "EXPIRED"
    old = ov.load_root(V.ROOT1_EXPIRED)  # without a time: parsed and signature-checked only
    assert _refusal(ov.verify_release, V.GOOD, old, "virtual", "0751", V.NOW) == "EXPIRED"


def test_root_rotation_needs_old_and_new_root():
    r1 = _root()
    r2 = ov.load_root(V.ROOT2, r1, V.NOW)
    assert r2.version == 2 and r2.root_keyids != r1.root_keyids
    assert _refusal(ov.load_root, V.ROOT2_NEW_ONLY, r1, V.NOW) == "BAD_SIGNATURE"
    assert _refusal(ov.load_root, V.ROOT1, r2, V.NOW) == "DOWNGRADE"
    assert ov.load_root(V.ROOT2, r2, V.NOW) is r2  # the same version again: nothing to do
    # releases keep verifying under the rotated root (the release keys did not change)
    ov.verify_release(V.GOOD, r2, "virtual", "0751", V.NOW)


def test_tampered_root_is_refused():
    bad = V.ROOT1.replace(b'"threshold":1', b'"threshold":2', 1)
    assert _refusal(ov.load_root, bad, None, V.NOW) in ("BAD_SIGNATURE", "NOT_DELEGATED")
    assert _refusal(ov.load_root, b"garbage", None, V.NOW) == "MALFORMED"
    assert _refusal(ov.load_root, V.ROOT1[:40], None, V.NOW) == "MALFORMED"


def test_malformed_shapes():
    for data in (b"", b"{}", b"{}\n[]", b'{"format":1}\n{}', b"[]\n[]", b'{"format":2}\n[]',
                 b'{"format":1}\n[{"keyid":1}]', b'{"format":1}\n[]\nmore\n'):
        assert _refusal(ov.split, data) == "MALFORMED", data


def test_keyid_matches_host_definition():
    # first 16 bytes of SHA-256 of the raw key, hex: the host computes the same (fleet.keys.base.keyid)
    assert ov.keyid(bytes(32)) == "66687aadf862bd776c8fc18b8e9f8e20"
