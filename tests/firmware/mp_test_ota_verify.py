# Release manifests on the device (firmware/bysans/ota/verify.py) under MicroPython with a 64 KiB heap: each
# refusal with its own reason, on manifests the host library signed (tests/firmware/ota_vectors/, generated
# and checked by tests/host/test_release_vectors.py), read from files through a small buffer as the OTA client
# reads them from flash. Roots: mp_test_ota_root.py; reading and packing: mp_test_ota_manifest.py. These
# modules are compiled from .py source here, by a 64-bit port (pointers twice an ESP32's): the whole check
# of a release of the whole app, from .mpy as a release ships it, is tests/host/test_release_device_heap.py.
# mp32: also on 32 bits at the smallest board's heap (tests/firmware/conftest.py)
# mp: -X heapsize=64K
import gc

from bysans.ota import verify as ov

_DIR = __file__.rsplit("/", 1)[0] + "/ota_vectors/"


def _read(name):
    with open(_DIR + name, "rb") as f:
        return f.read()


def _cases():
    import json

    with open(_DIR + "cases.json") as f:
        c = json.load(f)
    return c["now"], c["releases"]


NOW = _cases()[0]


def _refusal(fn, *args):
    try:
        fn(*args)
    except ov.Refused as e:
        return ov.NAMES[e.reason]
    return "OK"


def _root(name="root1.json", trusted=None, now=NOW):
    with open(_DIR + name, "rb") as f:
        return ov.load_root(f, trusted, now)


def _release(name, root, now=NOW, installed=None, digest=None, board="virtual"):
    with open(_DIR + name, "rb") as f:
        return ov.verify_release(f, root, board, "0751", now, installed, digest)


def test_each_release_case_gets_its_reason():
    root = _root()
    for name, installed, want in _cases()[1]:
        gc.collect()
        got = _refusal(_release, "release_%s.json" % name, root, NOW, installed)
        assert got == want, (name, got, want)


def test_good_release_returns_manifest_and_digest():
    import hashlib

    doc, digest = _release("release_good.json", _root())
    assert doc["counter"] == 10 and doc["version"] == "1.0.10" and doc["boards"] == ["virtual"]
    assert digest == hashlib.sha256(_read("release_good.json").split(b"\n")[0]).digest()
    files = doc["files"]
    assert len(files) == 2 and [f["path"] for f in files] == ["bysans/app.mpy", "main.py"]
    for f, name in zip(files, ("file_big.bin", "file_small.bin")):
        h = hashlib.sha256()
        n = 0
        with open(_DIR + name, "rb") as src:
            while True:
                chunk = src.read(256)
                if not chunk:
                    break
                h.update(chunk)
                n += len(chunk)
        assert f["length"] == n and f["sha256"] == _hex(h.digest())
    assert files[-1] == files[1] and "main.py" in files and "main" not in files
    assert files.find(files[0]["sha256"]) == 0 and files.find("0" * 64) == -1


def _hex(b):
    import binascii

    return binascii.hexlify(b).decode()


def test_files_bytes_and_a_tiny_buffer_verify_the_same():
    root = _root()
    doc, digest = ov.verify_release(_read("release_good.json"), root, "virtual", "0751", NOW)
    assert (list(doc["files"]), digest) == (list(_release("release_good.json", root)[0]["files"]),
                                            _release("release_good.json", root)[1])


def test_same_counter_other_contents_is_a_downgrade():
    root = _root()
    _doc, digest = _release("release_good.json", root, NOW, 10)
    assert _refusal(_release, "release_good.json", root, NOW, 10, digest) == "OK"
    assert _refusal(_release, "release_good.json", root, NOW, 10, b"\x00" * 32) == "DOWNGRADE"


def test_expires_exactly_now_is_expired():
    root = _root()
    at = _release("release_good.json", root)[0]["expires"]
    assert _refusal(_release, "release_good.json", root, at) == "EXPIRED"
    assert _refusal(_release, "release_good.json", root, at - 1) == "OK"


def test_malformed_shapes():
    for data in (b"", b"{}", b"{}\n[]", b'{"format":1}\n{}', b"[]\n[]", b'{"format":2}\n[]', b'{"format":true}\n[]',
                 b'{"format":1}\n[{"keyid":1}]', b'{"format":1}\n[]\nmore\n', b'{"format":1}'):
        assert _refusal(ov.read, data) == "MALFORMED", data
