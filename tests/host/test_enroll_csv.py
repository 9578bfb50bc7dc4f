"""Enrolling a pallet from CSV: the whole file is checked first; a bad file enrolls nobody."""

import base64
import threading

import pytest

from fleet.errors import Conflict, CsvInvalid
from provisioning.enrollment import enroll_csv, plan_csv
from provisioning.labels import label_text, write_label
from test_registry_support import run_cli as run
from test_registry_support import (ADMIN, AARHUS, ODENSE, db_url, key, key_env,  # noqa: F401 (fixtures)
                                   registry)

GOOD = """kommune,site,kind,board,lat,lon,mac,sensors
751,"Park Allé 1, bin 3",waste,virtual,56.1535,10.2040,24:0a:c4:00:00:01,jsn-sr04t;lis3dh
0751,Bispetorv,env,virtual,,,24:0a:c4:00:00:02,bme280 scd41
Aarhus,Ringgadebroen,waste,virtual,56.16,10.18,,
"""


def write(tmp_path, text, name="pallet.csv", encoding="utf-8"):
    p = tmp_path / name
    p.write_bytes(text.encode(encoding))
    return p


def test_a_good_file_enrolls_every_row_in_one_go(registry, tmp_path):
    out = enroll_csv(registry, AARHUS, write(tmp_path, GOOD))
    recs = [r for r, _ in out]
    assert [r.dev_eui for r in recs[:2]] == ["240AC4FFFE000001", "240AC4FFFE000002"]
    assert recs[0].sensors == ("jsn-sr04t", "lis3dh") and recs[1].sensors == ("bme280", "scd41")
    assert recs[0].latitude == pytest.approx(56.1535) and recs[1].latitude is None
    assert {r.kommune_kode for r in recs} == {"0751"}
    assert registry.count_devices(AARHUS) == 3
    keys = registry.app_keys(AARHUS, [r.dev_eui for r in recs], purpose="test")
    assert keys == {r.dev_eui: ident.app_key for r, ident in out}
    assert all(a.note == "enrolled from pallet.csv" for a in registry.audit_log(AARHUS)
               if a.action == "device.enroll")


def test_semicolons_and_a_bom_from_a_danish_spreadsheet(registry, tmp_path):
    text = "\ufeffKommune;Site;Kind;Board;Lat;Lon\n751;Park Allé 1;waste;virtual;56,1535;10,2040\n"
    [(rec, _)] = enroll_csv(registry, AARHUS, write(tmp_path, text))
    assert rec.latitude == pytest.approx(56.1535) and rec.site == "Park Allé 1"


BAD_ROWS = [
    ("9999,Park,waste,virtual,,,,", "kommune", "not a kommunekode"),
    ("751,,waste,virtual,,,,", "site", "empty"),
    ("751,Park,toaster,virtual,,,,", "kind", "toaster"),
    ("751,Park,waste,no-such-board,,,,", "board", "unknown board"),
    ("751,Park,waste,virtual,10.2,56.1,,", "latitude", "swapped"),
    ("751,Park,waste,virtual,56.1,,,", "longitude", "both"),
    ("751,Park,waste,virtual,north,10.2,,", "latitude", "not a number"),
    ("751,Park,waste,virtual,,,24:0a:c4:00:00,", "mac", "MAC"),
    ("461,Flakhaven,waste,virtual,,,,", "kommune", "may not enroll"),
    ("751,Park,waste,virtual,,,,,extra", None, "fields"),
]


@pytest.mark.parametrize("row,column,words", BAD_ROWS, ids=[c or "fields" for _, c, _ in BAD_ROWS])
def test_one_bad_row_enrolls_nobody_and_is_named_by_line_and_column(registry, tmp_path, row, column, words):
    header = "kommune,site,kind,board,lat,lon,mac,sensors\n"
    text = header + "751,Good 1,waste,virtual,,,,\n" + row + "\n" + "751,Good 2,env,virtual,,,,\n"
    with pytest.raises(CsvInvalid) as e:
        enroll_csv(registry, AARHUS, write(tmp_path, text))
    [p] = e.value.problems
    assert (p.line, p.column) == (3, column)
    assert words in p.message
    assert "line 3" in e.value.message and "nothing was enrolled" in e.value.message
    assert registry.count_devices(ADMIN) == 0
    assert registry.audit_log(ADMIN) == []


def test_every_problem_is_reported_not_just_the_first(registry, tmp_path):
    text = "kommune,site,kind\n9999,,toaster\n751,ok,waste\n0751,,env\n"
    with pytest.raises(CsvInvalid) as e:
        enroll_csv(registry, AARHUS, write(tmp_path, text), default_board="virtual")
    assert [(p.line, p.column) for p in e.value.problems] == [(2, "kommune"), (2, "site"), (2, "kind"),
                                                              (4, "site")]


@pytest.mark.parametrize("text,words", [
    ("", "empty"),
    ("kommune,site,kind,board\n", "only a header"),
    ("kommune,site,board\n751,x,virtual\n", "missing the required column 'kind'"),
    ("kommune,site,kind,colour\n751,x,waste,red\n", "unknown column"),
    ('kommune,site,kind\n751,"unterminated,waste\n', "not valid CSV"),
])
def test_a_malformed_file_enrolls_nobody(registry, tmp_path, text, words):
    with pytest.raises(CsvInvalid) as e:
        enroll_csv(registry, AARHUS, write(tmp_path, text), default_board="virtual")
    assert words in str(e.value.problems)
    assert registry.count_devices(ADMIN) == 0


def test_a_file_that_is_not_utf8_is_refused(registry, tmp_path):
    with pytest.raises(CsvInvalid) as e:
        enroll_csv(registry, AARHUS, write(tmp_path, "kommune,site,kind\n751,Park Allé,waste\n", encoding="latin-1"),
                   default_board="virtual")
    assert e.value.problems[0].line == 2 and "UTF-8" in e.value.problems[0].message


def test_duplicate_dev_euis_in_the_file_and_in_the_registry(registry, tmp_path):
    enroll_csv(registry, AARHUS, write(tmp_path, "kommune,site,kind,mac\n751,a,waste,240ac4000001\n", "first.csv"),
               default_board="virtual")
    text = ("kommune,site,kind,mac,dev_eui\n751,b,waste,240ac4000001,\n751,c,waste,240ac4000009,\n"
            "751,d,env,,240AC4FFFE000009\n")
    with pytest.raises(CsvInvalid) as e:
        enroll_csv(registry, AARHUS, write(tmp_path, text), default_board="virtual")
    got = [(p.line, p.column, p.message) for p in e.value.problems]
    assert got == [(2, "mac", "DevEUI 240AC4FFFE000001 is already enrolled"),
                   (4, "dev_eui", "DevEUI 240AC4FFFE000009 is also on line 3")]
    assert registry.count_devices(AARHUS) == 1


def test_vendor_app_keys_are_taken_and_never_shown(registry, tmp_path):
    app_key = "00112233445566778899AABBCCDDEEFF"
    text = f"kommune,site,kind,dev_eui,app_key\n751,a,waste,70B3D57ED0000001,{app_key}\n"
    [(rec, _)] = enroll_csv(registry, AARHUS, write(tmp_path, text), default_board="virtual")
    assert registry.app_keys(AARHUS, [rec.dev_eui], purpose="t")[rec.dev_eui].hex().upper() == app_key
    bad = f"kommune,site,kind,dev_eui,app_key\n751,a,waste,70B3D57ED0000002,{app_key[:-1]}Z\n"
    with pytest.raises(CsvInvalid) as e:
        enroll_csv(registry, AARHUS, write(tmp_path, bad, "bad.csv"), default_board="virtual")
    assert e.value.problems[0].column == "app_key" and app_key[:20] not in str(e.value.problems)


def test_two_concurrent_pallets_with_one_shared_board_one_wins(registry, db_url, key, tmp_path):
    from fleet.registry import Registry

    a = write(tmp_path, "kommune,site,kind,mac\n751,a1,waste,240ac4000001\n751,a2,waste,240ac4000002\n", "a.csv")
    b = write(tmp_path, "kommune,site,kind,mac\n751,b1,env,240ac4000003\n751,b2,env,240ac4000002\n", "b.csv")
    # Both files pass validation before either is recorded: the unique constraint decides.
    regs = [registry, Registry.open(db_url, key=key)]
    plans = [plan_csv(r, AARHUS, f, default_board="virtual") for r, f in zip(regs, (a, b))]
    barrier = threading.Barrier(2)
    results = [None, None]

    def run(i):
        barrier.wait()
        try:
            results[i] = regs[i].add_devices(AARHUS, [(p.device, p.identity) for p in plans[i]])
        except Exception as e:  # noqa: BLE001
            results[i] = e

    threads = [threading.Thread(target=run, args=(i,)) for i in range(2)]
    [t.start() for t in threads]
    [t.join(60) for t in threads]
    regs[1].close()
    losers = [r for r in results if isinstance(r, Exception)]
    assert len(losers) == 1 and isinstance(losers[0], Conflict), results
    assert "240AC4FFFE000002" in losers[0].message
    winner = next(r for r in results if not isinstance(r, Exception))
    assert sorted(d.site for d in registry.list_devices(AARHUS)) == sorted(d.site for d in winner)


def test_labels_carry_dev_eui_kommune_and_site_but_no_key(registry, tmp_path):
    [(rec, ident)] = enroll_csv(registry, AARHUS, write(tmp_path, "kommune,site,kind,mac\n751,Park Allé 1,waste,"
                                                                 "240ac4000001\n"), default_board="virtual")
    png, svg = write_label(rec, tmp_path / "labels")
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    text = svg.read_text()
    assert text.startswith("<svg") and "0751 Aarhus" in text and "Park Allé 1" in text and "240A C4FF FE00 0001" in text
    assert "240AC4FFFE000001" in label_text(rec) and "Aarhus" in label_text(rec)
    for blob in (png.read_bytes(), text.encode(), label_text(rec).encode()):
        assert ident.app_key.hex().encode() not in blob.lower()
    import xml.dom.minidom

    xml.dom.minidom.parseString(text)
    # the PNG carries the text too, beside the code: a person reads the DevEUI without a phone
    from PIL import Image

    img = Image.open(png).convert("L")
    qr_side = img.height
    assert img.width > 2 * qr_side
    right = img.crop((qr_side + 8, 0, img.width, img.height))
    assert right.getextrema()[0] == 0  # dark pixels: the text


def test_a_pallet_on_a_terminal_is_summed_up_not_drawn(db_url, key_env, tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("FLEET_OPERATOR", "anna")
    monkeypatch.setattr("fleet.cli.enroll.is_terminal", lambda: True)
    rows = "".join(f"751,Vej {i},waste\n" for i in range(250))
    code, out, err = run(["enroll", "--db", db_url, "--kommune", "751", "--csv",
                          str(write(tmp_path, "kommune,site,kind\n" + rows)), "--board", "virtual",
                          "--labels", str(tmp_path / "labels")], capsys)
    assert code == 0, err
    assert "250 devices enrolled" in out and "fleet devices list --kommune 0751" in out
    assert f"labels in {tmp_path / 'labels'} (500 files)" in out  # the summary says where the labels went
    assert len(list((tmp_path / "labels").iterdir())) == 500
    assert len(out.splitlines()) < 5


# -- the command ---------------------------------------------------------------------------------------



def test_cli_bad_csv_lists_problems_exits_2_and_records_nothing(db_url, key_env, tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("FLEET_OPERATOR", "anna")
    bad = write(tmp_path, "kommune,site,kind\n751,ok,waste\n9999,x,waste\n751,,env\n")
    code, out, err = run(["enroll", "--db", db_url, "--kommune", "751", "--csv", str(bad), "--board", "virtual"],
                         capsys)
    assert code == 2
    assert "line 3, column 'kommune'" in err and "line 4, column 'site'" in err and "nothing was enrolled" in err
    code, out, _ = run(["devices", "list", "--db", db_url, "--kommune", "751", "--json"], capsys)
    assert code == 0 and out.strip() == "[]"


def test_cli_enrolls_lists_and_writes_labels(db_url, key_env, tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("FLEET_OPERATOR", "anna")
    monkeypatch.setenv("FLEET_KOMMUNE", "751")
    code, out, err = run(["enroll", "--db", db_url, "--csv", str(write(tmp_path, GOOD)), "--labels",
                          str(tmp_path / "labels"), "--json"], capsys)
    assert code == 0, err
    import json

    enrolled = json.loads(out)
    assert len(enrolled) == 3 and "app_key" not in out.lower()
    assert len(list((tmp_path / "labels").iterdir())) == 6
    code, out, err = run(["devices", "list", "--db", db_url, "--json"], capsys)
    assert [d["dev_eui"] for d in json.loads(out)] == [d["dev_eui"] for d in enrolled]
    # Odense's operator sees none of them, and cannot show one
    code, out, err = run(["devices", "show", enrolled[0]["dev_eui"], "--db", db_url, "--kommune", "461"], capsys)
    assert code == 3 and "no device" in err
    code, out, err = run(["enroll", "--db", db_url, "--csv", str(write(tmp_path, GOOD))], capsys)
    assert code == 2 and "already enrolled" in err


def test_a_name_os2iot_would_refuse_enrolls_nobody(registry, tmp_path):
    long = "Affaldsbeholder ved Aarhus Hovedbanegård perron 4 og 5 mod nord"  # 64 characters
    with pytest.raises(CsvInvalid) as e:
        enroll_csv(registry, AARHUS, write(tmp_path, f"kommune,site,kind,name\n751,Park Allé 1,waste,{long}\n"),
                   default_board="virtual")
    assert "line 2, column 'name'" in str(e.value.problems[0]) and "50" in str(e.value.problems[0])
    assert registry.list_devices(AARHUS) == []
