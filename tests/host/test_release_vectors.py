"""The device test vectors (tests/firmware/ota_vectors/) are current, and the host verifier gives each the
same reason the device must; the host enum and the device's reason codes are the same table."""

import re
from pathlib import Path

import release_support as rs

from fleet.release import Reason
from fleet.release.verify import Refusal, load_root, walk_roots, verify_release

FIRMWARE_OTA = Path(__file__).resolve().parents[2] / "firmware" / "bysans" / "ota"


def test_vectors_are_current():
    files = rs.vector_files(rs.make_vectors())
    for name, data in files.items():
        assert (rs.VECTORS_DIR / name).read_bytes() == data, f"{name}: run release_support.write_vectors()"


def test_host_verifier_gives_the_expected_reasons():
    v = rs.make_vectors()
    root = load_root(v["ROOT1"], None, v["NOW"])
    for name, data, installed, want in v["RELEASES"]:
        got = verify_release(data, root, now=v["NOW"], board="virtual", kommune="0751", installed_counter=installed)
        assert got.reason.name == want, name


def test_host_root_chain_rules():
    v = rs.make_vectors()
    r1 = load_root(v["ROOT1"], None, v["NOW"])
    assert walk_roots([v["ROOT1"], v["ROOT2"]], None, v["NOW"]).version == 2
    for data, trusted, want in ((v["ROOT2_NEW_ONLY"], r1, Reason.BAD_SIGNATURE), (v["ROOT1_EXPIRED"], None, Reason.EXPIRED)):
        try:
            load_root(data, trusted, v["NOW"])
        except Refusal as e:
            assert e.reason is want
        else:
            raise AssertionError("accepted")


def test_reason_codes_match_the_device():
    src = (FIRMWARE_OTA / "reasons.py").read_text()
    device = {m.group(1): int(m.group(2)) for m in re.finditer(r"^([A-Z_]+) = const\((\d+)\)", src, re.M)}
    device.pop("FORMAT")
    assert device == {r.name: int(r) for r in Reason}
    names = re.search(r"NAMES = \(([^)]*)\)", src, re.S).group(1)
    assert [n.strip().strip('"') for n in names.split(",") if n.strip()] == [r.name for r in Reason]
    assert len({r.exit_code for r in Reason}) == len(Reason)


def test_every_device_reason_has_the_hosts_words():
    # the codes come from the firmware's table: a new code there needs a message and a hint here
    for r in Reason:
        assert r.message
        assert r.hint or r is Reason.OK, r.name
