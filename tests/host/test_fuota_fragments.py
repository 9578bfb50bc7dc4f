"""TS004 fragments on the host: the message layouts and the parity matrix against an independent
implementation's published vectors, the encoder, the rebuild, and `fleet fuota fragments/rebuild`."""

import random

import pytest

from fleet.cli import main as fleet_main
from fleet.errors import FragmentsError
from fleet.fuota.fragments import encode, session_for
from fleet.fuota.rebuild import parse_lines, rebuild
from fleet.fuota.spec import SPEC

# brocaar/lorawan (the Go library under ChirpStack), applayer/fragmentation/fragmentation_test.go: each
# command's fields and its bytes, CID included.
LAYOUT_VECTORS = [
    (SPEC.pack_setup_req(3, 513, 255, 129, bytes([1, 2, 3, 4]), mc_group_mask=0b0101, block_ack_delay=4,
                         matrix=5), "02350102ff2c8101020304"),
    (SPEC.pack_setup_ans(3, 0x0F), "02cf"),
    (SPEC.pack_delete_req(3), "0303"),
    (SPEC.pack_delete_ans(3, True), "0307"),
    (SPEC.pack_data_fragment(3, 513, bytes([1, 2, 3, 4, 5, 6])), "0801c2010203040506"),
    (SPEC.pack_status_req(3, True), "0107"),
    (SPEC.pack_status_ans(3, 513, 255, SPEC.STATUS_NOT_ENOUGH_MATRIX_MEMORY), "0101c2ff01"),
]

# brocaar/lorawan applayer/fragmentation/encode_test.go, "fragment size 10, redundancy 10": the coded
# fragments 11..20 of bytes(range(100)).
BROCAAR_CODED = [
    "262622222e2e22222626", "5455565758596a6b7c7d", "5c5d6e6f101102030405", "363632323e3e22223636",
    "3a3a0e0e0a0a06060a0a", "0e0e3232363622223e3e", "02020e0e727276766262", "1e1e1a1a66665a5a4e4e",
    "1a1b1c1d1e1f30312223", "22232425262718190a0b",
]


@pytest.mark.parametrize("packed, hexbytes", LAYOUT_VECTORS,
                         ids=["setup_req", "setup_ans", "delete_req", "delete_ans", "data_fragment", "status_req",
                              "status_ans"])
def test_layouts_match_brocaar_vectors(packed, hexbytes):
    assert packed.hex() == hexbytes


def test_setup_req_and_status_ans_decode_their_own_fields():
    f = SPEC.unpack_setup_req(bytes.fromhex("350102ff2c8101020304"))
    assert f == {"frag_index": 3, "mc_group_mask": 5, "nb_frag": 513, "frag_size": 255, "block_ack_delay": 4,
                 "matrix": 5, "padding": 129, "descriptor": b"\x01\x02\x03\x04"}
    assert SPEC.unpack_status_ans(bytes.fromhex("01c2ff01")) == {
        "frag_index": 3, "received": 513, "missing": 255, "not_enough_matrix_memory": True}


def test_coded_fragments_match_brocaar_vectors():
    session, payloads = encode(bytes(range(100)), 10, 10)
    assert (session.nb_frag, session.padding) == (10, 0)
    assert [p[3:].hex() for p in payloads[10:]] == BROCAAR_CODED
    assert [SPEC.unpack_data_head(p[1:3]) for p in payloads] == [(0, n) for n in range(1, 21)]


def test_matrix_line_for_a_power_of_two_block_by_hand():
    # M = 8 is a power of two, so r = x mod 9 and a draw of 8 is drawn again (TS004-2.0.0 annex). By hand:
    # line 1: x = 1 + 1001 = 1002; prbs23 steps give x = 4194805 (r 4), 2097402 (r 6), 5243005 (r 1),
    # 2621502 (r 0): rows {0, 1, 4, 6}.
    # line 2: x = 2003 -> 4195305 (r 0), 2097652 (r 4), 5243130 (r 0, again), 6815869 (r 7): rows {0, 4, 7}.
    assert SPEC.prbs23(1002) == 4194805 and SPEC.prbs23(4194805) == 2097402
    assert SPEC.matrix_line(1, 8) == [0, 1, 4, 6]
    assert SPEC.matrix_line(2, 8) == [0, 4, 7]


def test_rebuild_from_any_full_rank_subset_in_any_order():
    rnd = random.Random(14)
    data = rnd.randbytes(4321)
    session, payloads = encode(data, 48, 20)
    assert session.nb_frag == 91 and session.padding == 91 * 48 - 4321
    assert payloads[90][3 + 48 - session.padding:] == bytes(session.padding)  # the last one padded with zeros
    done = 0
    for _ in range(5):
        kept = [p for p in payloads if rnd.random() >= 0.1]
        rnd.shuffle(kept)
        try:
            assert rebuild(kept, nb_frag=91, padding=session.padding) == data
            done += 1
        except FragmentsError as e:
            assert "too few fragments" in str(e)
    assert done >= 4


def test_rebuild_says_what_is_wrong():
    _, payloads = encode(bytes(range(200)), 20, 2)
    with pytest.raises(FragmentsError, match="rank 9 of 10"):
        rebuild(payloads[1:10], nb_frag=10)
    with pytest.raises(FragmentsError, match="another session"):
        rebuild(payloads[:5] + [payloads[5][:-1]], nb_frag=10)
    with pytest.raises(FragmentsError, match="not a DataFragment"):
        rebuild([b"\x02" + payloads[0][1:]], nb_frag=10)
    with pytest.raises(FragmentsError, match="line 2 is not hex"):
        parse_lines(["0801", "zz"])
    with pytest.raises(FragmentsError, match="fragment size 256"):
        session_for(1000, 256)
    with pytest.raises(FragmentsError, match="16383 fragment counters"):
        encode(bytes(16000), 1, 400)


def test_cli_fragments_then_rebuild(tmp_path, capsys):
    rnd = random.Random(201)
    src = tmp_path / "release.bin"
    src.write_bytes(rnd.randbytes(1000))
    fleet_main(["fuota", "fragments", str(src), "--fragment-size", "48", "--redundancy", "8"])
    out = capsys.readouterr()
    lines = out.out.split()
    assert len(lines) == 21 + 8
    assert lines[0].startswith("080100") and lines[20].startswith("081500") and lines[-1].startswith("081d00")
    assert "NbFrag 21" in out.err and "Padding 8" in out.err and "FragSessionSetupReq 0201150030000800000000" in out.err
    kept = tmp_path / "kept.txt"
    kept.write_text("\n".join(lines[:3] + lines[5:12] + lines[13:]) + "\n")  # three lost
    fleet_main(["fuota", "rebuild", str(kept), "--size", "1000", "-o", str(tmp_path / "out.bin")])
    assert (tmp_path / "out.bin").read_bytes() == src.read_bytes()
    fleet_main(["fuota", "rebuild", str(kept), "--nb-frag", "21", "--padding", "8", "-o", str(tmp_path / "o2")])
    assert (tmp_path / "o2").read_bytes() == src.read_bytes()

    # --json: the same payloads and setup fields for a script, and what rebuild wrote
    import hashlib
    import json

    fleet_main(["fuota", "fragments", str(src), "--fragment-size", "48", "--redundancy", "8", "--json"])
    doc = json.loads(capsys.readouterr().out)
    assert doc["fragments"] == lines and (doc["nb_frag"], doc["padding"], doc["frag_size"]) == (21, 8, 48)
    assert doc["setup_req"] == "0201150030000800000000"
    fleet_main(["fuota", "rebuild", str(kept), "--size", "1000", "-o", str(tmp_path / "o3"), "--json"])
    done = json.loads(capsys.readouterr().out)
    assert done["sha256"] == hashlib.sha256(src.read_bytes()).hexdigest() and done["bytes"] == 1000


def test_cli_rebuild_refuses_too_few_lines_and_writes_nothing(tmp_path, capsys):
    src = tmp_path / "f.bin"
    src.write_bytes(bytes(range(256)) * 4)
    fleet_main(["fuota", "fragments", str(src), "--fragment-size", "50", "--redundancy", "1"])
    lines = capsys.readouterr().out.split()
    few = tmp_path / "few.txt"
    few.write_text("\n".join(lines[:10]) + "\n")
    with pytest.raises(SystemExit) as e:
        fleet_main(["fuota", "rebuild", str(few), "--size", "1024", "-o", str(tmp_path / "out.bin")])
    assert e.value.code == FragmentsError.exit_code
    err = capsys.readouterr().err
    assert "too few fragments" in err and "11 data fragments cannot be recovered" in err and "hint:" in err
    assert not (tmp_path / "out.bin").exists()
    with pytest.raises(SystemExit):
        fleet_main(["fuota", "rebuild", str(few), "-o", str(tmp_path / "out.bin")])
    assert "--size" in capsys.readouterr().err
