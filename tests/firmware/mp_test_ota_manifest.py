# Reading signed metadata on the device (firmware/bysans/ota/jsonpull.py, signed.py, manifest.py) under
# MicroPython with a 64 KiB heap: strict JSON in one pass through a small buffer, hashed as it is read, and a
# manifest's list of files packed as it is read (signatures: mp_test_ota_verify.py). Vectors:
# tests/firmware/ota_vectors/ (made by the host library); the JSON refused here is what CPython's json (the
# host's parser) refuses too.
# mp32: also on 32 bits at the smallest board's heap (tests/firmware/conftest.py)
# mp: -X heapsize=64K
from bysans.ota import manifest, signed
from bysans.ota.reasons import NAMES, Refused

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


def test_a_stream_bytes_and_a_tiny_buffer_read_the_same():
    import hashlib

    data = _read("release_good.json")
    doc, sigs, digest = manifest.read_release(data)
    assert digest == hashlib.sha256(data[:data.index(b"\n")]).digest()  # line 1, as received
    with open(_DIR + "release_good.json", "rb") as f:  # through 8 bytes: every token spans reads
        doc2, sigs2, digest2 = manifest.read_release(f, bytearray(8))
    assert digest2 == digest and sigs2 == sigs and len(sigs) == 1
    assert list(doc2["files"]) == list(doc["files"]) and doc2["expires"] == doc["expires"]
    body, rest = data.split(b"\n", 1)
    doc3, sigs3, digest3 = manifest.read_release(body, None, rest)  # the client keeps line 2 apart
    assert digest3 == digest and sigs3 == sigs and doc3["version"] == doc["version"] == "1.0.10"


def test_only_strict_json_is_read():
    # What CPython's json (the host's parser) refuses, the device refuses too; and floats, which the format
    # has none of (the host's canonical JSON refuses them), and nesting deeper than 8 (a manifest has 3).
    for body in (b'{"format":1,}', b'{"format":01}', b'{"format":1.0}', b'{"format":1e0}', b'{"format":-}',
                 b'{"format":1,"a":[1,]}', b'{"format":1,"a":"x\x01"}', b'{"format":1,"a":"\\x"}',
                 b'{"format":1,"a":"\\u00g0"}', b'{"format":1,"a":tru}', b'{"format":1} 2', b"{'format':1}",
                 b'{"format":1,"a":[[[[[[[[[1]]]]]]]]]}', b'{"format":1 "a":2}', b'{"format":1,"a":"x}'):
        assert _refusal(signed.read, body + b"\n[]") == "MALFORMED", body
    doc, sigs, _ = signed.read(b' {"a":[true,false,null,-7,0,""],"b":{"c":"\\"\\\\\\/\\u00e6\\n"},"format":1}\r\n[]\n')
    assert doc == {"a": [True, False, None, -7, 0, ""], "b": {"c": '"\\/\u00e6\n'}, "format": 1} and sigs == []


class _Parts:
    """A stream of byte strings, read as one: a manifest made in pieces, never joined in the heap."""

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


def _manifest(change=None):
    # more entries than a chunk holds, a long path, an escaped one, a length past 32 bits, a hash that is
    # not lowercase hex (it can never match; it reads back as written)
    parts = [b'{"_type":"bysans-release","boards":["virtual"],"counter":1,"expires":2,"files":[']
    for i in range(11):
        path = ("d/f%02d.mpy" % i).encode()
        if change and path == change[0]:
            path = change[1]
        parts.append(b'{"length":%d,"path":"%s","sha256":"%064x"},' % (i, path, i + 1))
    parts.append(b'{"length":1099511627776,"path":"' + b"p" * 120 + b'","sha256":"' + b"A" * 64 + b'"},')
    parts.append(b'{"length":7,"path":"d/\\u00e6.txt","sha256":"' + b"ab" * 32 + b'"}')
    parts.append(b'],"format":1,"kommuner":["0751"],"version":"1"}\n[]')
    return _Parts(parts)


def test_files_are_packed_and_read_back():
    doc, _sigs, _d = manifest.read_release(_manifest())
    files = doc["files"]
    assert len(files) == 13 and [f["length"] for f in files][:11] == list(range(11))
    assert files[3] == {"path": "d/f03.mpy", "length": 3, "sha256": "%064x" % 4}
    assert files[11] == {"path": "p" * 120, "length": 1 << 40, "sha256": "A" * 64}
    assert files[12]["path"] == "d/\u00e6.txt" and "d/\u00e6.txt" in files and "d/f10.mpy" in files
    assert files.find("%064x" % 11) == 10 and files.find("A" * 64) == 11 and files.find("a" * 64) == -1
    assert files.find("%064x" % 0) == -1  # all zeros: not the hash of the entry that is not hex
    assert manifest.changed_files(doc, {"files": [files[0], files[12]]}) == [files[i] for i in range(1, 12)]
    for bad in (b"d/f02.mpy", b"../x", b"/x", b"a//b", b"a\\\\b", b"", b"a/./b"):
        assert _refusal(manifest.read_release, _manifest((b"d/f05.mpy", bad))) == "MALFORMED", bad
    assert _refusal(manifest.read_release, _manifest((b"d/f05.mpy", b'x","length":-1,"y":"'))) == "MALFORMED"


def test_a_manifest_read_to_be_verified_keeps_no_files_and_checks_each_entry():
    # The OTA client's check-in reads the release manifest with keep=False (manifest.Entries): the digest and
    # every other field are those of the full read, the entries are checked as Files checks them, none kept.
    doc, sigs, digest = manifest.read_release(_manifest())
    lean, sigs2, digest2 = manifest.read_release(_manifest(), None, None, False)  # (a stream: read once)
    assert type(lean["files"]) is manifest.Entries and len(lean["files"]) == len(doc["files"]) == 13
    assert digest2 == digest and sigs2 == sigs and lean["version"] == doc["version"]
    assert not hasattr(lean["files"], "_chunks")  # nothing of the entries is kept
    for bad in (b"../x", b"/x", b"a//b", b"", b"a/./b"):
        assert _refusal(manifest.read_release, _manifest((b"d/f05.mpy", bad)), None, None, False) == "MALFORMED"
    assert _refusal(manifest.read_release, _manifest((b"d/f05.mpy", b'x","length":-1,"y":"')), None, None,
                    False) == "MALFORMED"
    # a path twice is found when the files are kept: the client reads them again, kept, before an install
    twice = (b"d/f05.mpy", b"d/f02.mpy")
    assert _refusal(manifest.read_release, _manifest(twice), None, None, False) == "OK"
    assert _refusal(manifest.read_release, _manifest(twice)) == "MALFORMED"
