# Streaming file checks on the device (firmware/bysans/ota/files.py) under MicroPython with a small heap:
# length and SHA-256 while a file streams, a repository object inflated by deflate.DeflateIO, and which
# files need to travel. Vectors: tests/firmware/ota_vectors/ (made by the host library).
# Heap: 96 KiB here, because these modules are compiled from .py source by a 64-bit port (pointers twice
# an ESP32's). The same checks from .mpy (what a release ships) run with an 80 KiB heap in
# tests/host/test_release_cli.py::test_device_verifies_cli_releases_from_mpy_in_a_small_heap.
# mp: -X heapsize=96K
import gc
import hashlib
import json

from bysans.ota import verify as ov

_DIR = __file__.rsplit("/", 1)[0] + "/ota_vectors/"


def _read(name):
    with open(_DIR + name, "rb") as f:
        return f.read()


def _refusal(fn, *args):
    try:
        fn(*args)
    except ov.Refused as e:
        return ov.NAMES[e.reason]
    return "OK"


def _manifest():
    root = ov.load_root(_read("root1.json"))
    now = json.loads(_read("cases.json"))["now"]
    return ov.verify_release(_read("release_good.json"), root, "virtual", "0751", now)[0]


def _stream(entry, data, chunk=64):
    fc = ov.FileCheck(entry)
    for i in range(0, len(data), chunk):
        fc.update(data[i:i + chunk])
    fc.finish()


def _entry(path, data):
    import binascii
    return {"path": path, "length": len(data), "sha256": binascii.hexlify(hashlib.sha256(data).digest()).decode()}


def test_file_check_accepts_the_announced_bytes():
    e = _entry("main.py", _read("file_small.bin"))
    assert _refusal(_stream, e, _read("file_small.bin")) == "OK"


def test_file_check_refuses_longer_shorter_and_changed_files():
    e = _entry("main.py", _read("file_small.bin"))
    assert _refusal(_stream, e, _read("file_small.bin") + b"#") == "TOO_LONG"
    assert _refusal(_stream, e, _read("file_small.bin")[:-1]) == "TOO_SHORT"
    changed = bytearray(_read("file_small.bin"))
    changed[3] ^= 1
    assert _refusal(_stream, e, bytes(changed)) == "BAD_HASH"


def test_file_check_stops_at_the_first_extra_byte():
    e = _entry("x", b"abc")
    fc = ov.FileCheck(e)
    fc.update(b"ab")
    assert fc.remaining == 1
    try:
        fc.update(b"cd")
    except ov.Refused as err:
        assert err.reason == ov.TOO_LONG
    else:
        raise AssertionError("no refusal")


def test_repository_object_inflates_in_a_stream_with_its_hash_checked():
    # What the OTA client does with objects/<sha256>.z: deflate.DeflateIO reads the zlib header's 1 KiB
    # window, and the bytes go through FileCheck in small chunks (never a whole file in RAM).
    import deflate
    doc = _manifest()
    entry = [f for f in doc["files"] if f["path"] == "bysans/app.mpy"][0]
    big_len = entry["length"]
    doc = None
    gc.collect()
    src = open(_DIR + "file_big.z", "rb")  # a file, as on the device's flash or socket
    d = deflate.DeflateIO(src, deflate.ZLIB)
    fc = ov.FileCheck(entry)
    buf = bytearray(256)
    mv = memoryview(buf)
    while True:
        n = d.readinto(mv[:min(256, fc.remaining + 1)])
        if not n:
            break
        fc.update(mv[:n])
    fc.finish()
    src.close()
    import os
    assert fc.seen == big_len > 4000 and os.stat(_DIR + "file_big.z")[6] < big_len // 4


def test_changed_files_lists_only_new_content():
    doc = _manifest()
    assert len(ov.changed_files(doc)) == 2
    assert ov.changed_files(doc, doc) == []
    old = {"files": [doc["files"][1]]}
    assert [f["path"] for f in ov.changed_files(doc, old)] == ["bysans/app.mpy"]


