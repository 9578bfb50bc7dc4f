"""Manifest deltas (docs/formats/update-repository.md, "Manifest deltas"): the host's fleet/release/delta.py
makes them and the device's firmware/bysans/ota/delta.py rebuilds the signed file from them in a 64 KiB heap,
byte for byte what the host rebuilds; the rebuilt file gets the same verdict from the device's and the
host's verifier; and every broken delta is refused by both."""

import hashlib
import struct

import pytest

from fleet.errors import ReleaseError
from fleet.release import delta, metadata
from fleet.release.verify import Refusal, load_root, parse, verify_release
import release_support as rs
from release_support import NOW, release_body, root_body, run_mp

K751 = rs.test_signer("release-0751")
ROOT = rs.test_signer("root-1")


def _files(n, changed=()):
    return {f"bysans/mod{i:02d}.mpy": b"module %d%s\n" % (i, b" v2" if i in changed else b"") * 40
            for i in range(n)}


@pytest.fixture(scope="module")
def pair():
    old = metadata.sign(release_body(counter=10, files=_files(60)), [K751])
    new = metadata.sign(release_body(counter=11, files=_files(60, changed={17})), [K751])
    return old, new


DEVICE = """
import binascii, gc, hashlib
from bysans.ota import delta
from bysans.ota import verify as ov
from bysans.ota.reasons import NAMES, Refused

top, now = sys.argv[1], int(sys.argv[2])
buf = bytearray(512)
with open(top + "/root.json", "rb") as f:
    root = ov.load_root(f, None, now, buf)


class Fail(Exception):
    pass


def fail(done, length, err):
    return Fail("TRUNCATED %d of %d" % (done, length))


def sha256_of(*paths):  # through buf, as the device reads from flash
    h = hashlib.sha256()
    for i, p in enumerate(paths):
        if i:
            h.update(b"\\n")
        with open(p, "rb") as f:
            while True:
                n = f.readinto(buf)
                if not n:
                    break
                h.update(memoryview(buf)[:n])
    return h.digest()


for name in sys.argv[3:]:
    gc.collect()
    base = top + "/base.json"
    digest = sha256_of(base)
    path = top + "/" + name + ".bin"
    size = __import__("os").stat(path)[6]
    try:
        with open(path, "rb") as src, open(top + "/out.json", "wb") as fb, open(top + "/out.sig", "wb") as fs:
            delta.apply(src, size, base, digest, fb, fs, buf, 65536, fail)
        rebuilt = binascii.hexlify(sha256_of(top + "/out.json", top + "/out.sig")).decode()
        try:
            with open(top + "/out.sig", "rb") as fs:
                sigs = fs.read().rstrip(b"\\n")
            with open(top + "/out.json", "rb") as fb:
                doc, sigs, d = ov.read_release(fb, buf, sigs)  # as the client reads ota/new.*
            ov.check_release(doc, sigs, d, root, "virtual", "0751", now)
            verdict = "OK"
        except Refused as e:
            verdict = NAMES[e.reason]
        doc = sigs = None
        print(name, "rebuilt", rebuilt, verdict)
    except Refused as e:
        print(name, NAMES[e.reason])
    except Fail:
        print(name, "TRUNCATED")
"""


def _root():
    return metadata.sign(root_body(1, [ROOT], {K751: ["0751"]}), [ROOT])


def _device(tmp_path, base_body, deltas):
    (tmp_path / "base.json").write_bytes(base_body)
    (tmp_path / "root.json").write_bytes(_root())
    for name, data in deltas.items():
        (tmp_path / f"{name}.bin").write_bytes(data)
    out = run_mp(DEVICE, str(tmp_path), str(NOW), *deltas, heap="64K")
    return dict(line.split(" ", 1) for line in out.splitlines())


def _host_verdict(signed):
    return verify_release(signed, load_root(_root()), now=NOW, board="virtual", kommune="0751").reason.name


def test_a_one_module_release_travels_as_a_small_delta_rebuilt_alike_on_host_and_device(tmp_path, pair):
    old, new = pair
    old_body = old.split(b"\n")[0]
    d = delta.make(old_body, new)
    assert len(d) < len(new) // 10, (len(d), len(new))  # two hashes and a few fields, not 60 entries
    assert delta.apply(d, old_body) == new
    got = _device(tmp_path, old_body, {"good": d})
    # the device rebuilds the signed file byte for byte and its verifier accepts it, as the host's does
    assert got == {"good": f"rebuilt {hashlib.sha256(new).hexdigest()} OK"}
    assert _host_verdict(delta.apply(d, old_body)) == "OK" == _host_verdict(new)


def _ops(d):
    """(header, ops bytes, signature line) of a delta."""
    i = delta.HEADER
    while d[i] != delta.OP_END:
        i += 7 if d[i] == delta.OP_COPY else 3 + struct.unpack_from("<H", d, i + 1)[0]
    return d[:delta.HEADER], d[delta.HEADER:i + 1], d[i + 1:]


def test_broken_deltas_are_refused_by_device_and_host(tmp_path, pair):
    old, new = pair
    old_body = old.split(b"\n")[0]
    d = delta.make(old_body, new)
    head, ops, sig = _ops(d)
    other_base = delta.make(old_body + b" ", new)
    copy_past = head + struct.pack("<BIH", delta.OP_COPY, len(old_body) - 2, 10) + ops
    wrong_length = head[:36] + struct.pack("<I", struct.unpack_from("<I", head, 36)[0] + 1) + ops + sig
    cases = {
        "garbage": b"\x89PNG\r\n" + bytes(60),
        "other_format": b"BMD\x02" + d[4:],
        "other_base": other_base,
        "copy_past_the_base": copy_past + sig,
        "unknown_op": head + b"\x07" + ops + sig,
        "wrong_length": wrong_length,
        "no_signature_line": head + ops,
        "truncated": d[:delta.HEADER + 5],
    }
    got = _device(tmp_path, old_body, cases)
    assert got == {name: "MALFORMED" for name in cases}, got
    for name, data in cases.items():
        assert _host_refuses(data, old_body), name


def _host_refuses(data, base_body):
    try:
        parse(delta.apply(data, base_body))  # a file without its signature line is not metadata
    except (ReleaseError, Refusal):
        return True
    return False


def test_a_changed_byte_in_an_added_piece_fails_the_signature(tmp_path, pair):
    old, new = pair
    old_body = old.split(b"\n")[0]
    d = bytearray(delta.make(old_body, new))
    i = d.index(b'"counter":') if b'"counter":' in d else d.index(b"11")
    d[d.index(b"11", i) + 1] = ord("3")  # counter 11 -> 13 in an ADD piece: the rebuilt body is not the signed one
    rebuilt = delta.apply(bytes(d), old_body)
    assert rebuilt != new and _host_verdict(rebuilt) == "BAD_SIGNATURE"
    got = _device(tmp_path, old_body, {"flipped": bytes(d)})
    assert got == {"flipped": f"rebuilt {hashlib.sha256(rebuilt).hexdigest()} BAD_SIGNATURE"}
