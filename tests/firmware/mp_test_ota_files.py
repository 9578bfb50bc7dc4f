# Streaming file checks on the device (firmware/bysans/ota/files.py) under MicroPython with a 64 KiB heap:
# length and SHA-256 while a file streams, a repository object inflated by deflate.DeflateIO, and which
# files need to travel (manifest.changed_files). Vectors: tests/firmware/ota_vectors/ (made by the host
# library). The manifest is read here without its signature check (that is mp_test_ota_verify.py's).
# mp32: also on 32 bits at the smallest board's heap (tests/firmware/conftest.py)
# mp: -X heapsize=64K
import gc
import hashlib

from bysans.ota import files as of, manifest
from bysans.ota.reasons import NAMES, TOO_LONG, Refused

_DIR = __file__.rsplit("/", 1)[0] + "/ota_vectors/"


def _read(name):
    with open(_DIR + name, "rb") as f:
        return f.read()


def _refusal(fn, *args):
    try:
        fn(*args)
    except Refused as e:
        return NAMES[e.reason]
    return "OK"


def _manifest():
    with open(_DIR + "release_good.json", "rb") as f:
        return manifest.read_release(f)[0]


def _stream(entry, data, chunk=64):
    fc = of.FileCheck(entry)
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
    fc = of.FileCheck(e)
    fc.update(b"ab")
    assert fc.remaining == 1
    try:
        fc.update(b"cd")
    except Refused as err:
        assert err.reason == TOO_LONG
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
    fc = of.FileCheck(entry)
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
    assert len(manifest.changed_files(doc)) == 2
    assert manifest.changed_files(doc, doc) == []
    old = {"files": [doc["files"][1]]}
    assert [f["path"] for f in manifest.changed_files(doc, old)] == ["bysans/app.mpy"]


