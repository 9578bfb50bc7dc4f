"""Board files: every shipped one passes the schema and agrees with REFERENCE.md §5; broken ones are refused
with a message naming the field; `fleet boards` lists, shows and checks them."""

import copy
import json

import pytest

from fleet import boards
from fleet.errors import BoardInvalid, NotFound
from test_registry_support import run_cli

# REFERENCE.md §5, restated: radio chip, NSS, RST, DIO1 (IRQ on SX1262), BUSY, SCK, MOSI, MISO, SDA, SCL
TABLE = {
    "heltec_v3": ("sx1262", 8, 12, 14, 13, 9, 10, 11, 41, 42),
    "ttgo_lora32_v21": ("sx1276", 18, 23, 33, None, 5, 27, 19, 21, 22),
    "tbeam": ("sx1276", 18, 23, 33, None, 5, 27, 19, 21, 22),
}
IMAGE_OFFSET = {"esp32": 0x1000, "esp32s3": 0x0}


def test_every_board_file_is_valid():
    assert set(boards.names()) >= {"heltec_v3", "ttgo_lora32_v21", "tbeam", "virtual"}
    for name in boards.names():
        assert boards.check(boards.load(name), name=name) == []


@pytest.mark.parametrize("name", sorted(TABLE))
def test_pins_match_the_reference_table(name):
    b = boards.load(name)
    chip, nss, rst, dio1, busy, sck, mosi, miso, sda, scl = TABLE[name]
    r = b["radio"]
    assert (r["chip"], r["nss"], r["rst"], r["dio1"], r.get("busy")) == (chip, nss, rst, dio1, busy)
    spi = [s for s in b["spi"] if s["id"] == r["spi"]][0]
    assert (spi["sck"], spi["mosi"], spi["miso"]) == (sck, mosi, miso)
    assert (b["i2c"][0]["sda"], b["i2c"][0]["scl"]) == (sda, scl)
    if chip == "sx1276":
        assert r["dio0"] == 26
    assert b["mpy_arch"] == "xtensawin"
    assert b["flash"]["offset"] == IMAGE_OFFSET[b["chip"]]


def test_heltec_specifics():
    b = boards.load("heltec_v3")
    assert b["chip"] == "esp32s3"
    assert b["radio"]["tcxo_v"] == 1.8 and b["radio"]["dio2_rf_switch"] is True
    assert b["power"] == {"vext_pin": 36, "vext_level": 0}
    assert (b["battery"]["adc_pin"], b["battery"]["enable_pin"]) == (1, 37)


def test_virtual_board_lists_every_simulated_sensor():
    from fleet.sim.devices import DEVICE_TYPES

    b = boards.load("virtual")
    assert {s["type"] for s in b["sensors"]} | {"battery"} == set(DEVICE_TYPES)
    assert b["battery"]["adc_pin"] == 35


def _broken(mutate):
    b = copy.deepcopy(boards.load("ttgo_lora32_v21"))
    mutate(b)
    return boards.check(b, name="ttgo_lora32_v21")


@pytest.mark.parametrize("mutate, expect", [
    (lambda b: b["flash"].update(offset=0), "flash.offset"),
    (lambda b: b.update(mpy_arch="x64"), "mpy_arch"),
    (lambda b: b.update(chip="esp8266"), "chip"),
    (lambda b: b.pop("flash"), "'flash' is missing"),
    (lambda b: b["sensors"].append({"type": "dht22", "bus": "i2c0", "address": 64}), "dht22"),
    (lambda b: b["sensors"].append({"type": "bme280", "bus": "i2c0", "address": 41}), "already taken"),
    (lambda b: b["sensors"].append({"type": "bme280", "bus": "i2c1", "address": 119}), "no I2C bus 1"),
    (lambda b: b["sensors"].append({"type": "jsn_sr04t", "bus": "uart1"}), "no UART 1"),
    (lambda b: b["sensors"].append({"type": "jsn_sr04t", "bus": "i2c0"}), "sits on a UART"),
    (lambda b: b["sensors"].append({"type": "sps30", "bus": "i2c0", "address": 105}), "100 kHz"),
    (lambda b: b["sensors"][0].update(address=200), "above the maximum"),
    (lambda b: b["i2c"][0].update(sda=18), "GPIO 18 is used twice"),
    (lambda b: b["battery"].pop("divider_ohm"), "divider_ohm"),
    (lambda b: b["i2c"][0].update(speed=1), "unknown field 'speed'"),
    (lambda b: b.update(name="other"), "differs from the file name"),
])
def test_broken_board_is_refused_naming_the_problem(mutate, expect):
    problems = _broken(mutate)
    assert problems and any(expect in p for p in problems), problems


def test_load_refuses_a_broken_file(tmp_path, monkeypatch):
    (tmp_path / "boards").mkdir()
    (tmp_path / "boards" / "bad.json").write_text('{"name": "bad",')
    (tmp_path / "boards" / "odd.json").write_text(json.dumps({"name": "odd", "title": "x", "chip": "esp32"}))
    monkeypatch.setenv("BYSANS_HOME", str(tmp_path))
    with pytest.raises(BoardInvalid, match="not valid JSON"):
        boards.load("bad")
    with pytest.raises(BoardInvalid) as e:
        boards.load("odd")
    assert any("'flash' is missing" in p for p in e.value.problems)
    with pytest.raises(NotFound):
        boards.load("nope")


def test_schema_is_valid_json_schema_and_accepts_the_boards():
    jsonschema = pytest.importorskip("jsonschema")
    jsonschema.Draft202012Validator.check_schema(boards.SCHEMA)
    for name in boards.names():
        jsonschema.validate(boards.load(name), boards.SCHEMA)


def test_device_copy_is_compact_and_complete():
    b = boards.load("heltec_v3")
    raw = boards.device_copy(b)
    slim = json.loads(raw)
    assert b"notes" not in raw and b" " not in raw.replace(b"ESP32-S3", b"")
    assert slim["radio"] == b["radio"] and slim["sensors"] == b["sensors"]
    assert "note" not in slim["battery"]


def _fleet(capsys, *argv):
    return run_cli(argv, capsys)


def test_cli_list_and_show(capsys):
    code, out, _ = _fleet(capsys, "boards", "list", "--json")
    assert code == 0
    assert {b["name"] for b in json.loads(out)} == set(boards.names())
    code, out, _ = _fleet(capsys, "boards", "show", "tbeam", "--json")
    assert code == 0 and json.loads(out)["radio"]["nss"] == 18
    code, out, _ = _fleet(capsys, "boards", "show", "heltec_v3")
    assert code == 0 and "base image at 0x0" in out and "sx1262" in out
    code, out, _ = _fleet(capsys, "boards", "list")
    assert code == 0 and "ttgo_lora32_v21" in out


def test_cli_errors(capsys, tmp_path):
    code, _, err = _fleet(capsys, "boards", "show", "nope")
    assert code == NotFound.exit_code and "unknown board 'nope'" in err and "hint: known boards" in err
    bad = tmp_path / "mine.json"
    b = boards.load("tbeam")
    b["name"] = "mine"
    b["flash"]["offset"] = 0
    bad.write_text(json.dumps(b))
    code, _, err = _fleet(capsys, "boards", "check", str(bad))
    assert code == BoardInvalid.exit_code and "flash.offset" in err
    good = tmp_path / "tbeam.json"
    good.write_text(json.dumps(boards.load("tbeam")))
    code, out, _ = _fleet(capsys, "boards", "check", str(good))
    assert code == 0 and out.strip().endswith("ok")


def test_board_object_is_the_checked_file_loaded_once():
    import dataclasses

    from fleet.resources import boards_dir

    raw = json.loads((boards_dir() / "heltec_v3.json").read_text())
    b = boards.get("heltec_v3")
    assert (b.name, b.chip.name, b.mpy_arch, b.hal, b.flash_size, b.flash_offset, b.title) == (
        raw["name"], raw["chip"], raw["mpy_arch"], raw["hal"], raw["flash"]["size"], raw["flash"]["offset"],
        raw["title"])
    assert b.chip.esptool == "ESP32-S3" and b.chip.image_id == 9 and not b.virtual
    assert b.device_copy() == boards.device_copy(raw)
    assert boards.get("virtual").virtual and boards.get("virtual").chip.esptool is None
    with pytest.raises(dataclasses.FrozenInstanceError):
        b.name = "other"
    with pytest.raises(NotFound):
        boards.get("nope")


def test_a_chip_decides_arch_hal_and_offset_from_one_table():
    assert {c.name: c.base_offset for c in boards.BOARD_CHIPS if c.name in IMAGE_OFFSET} == IMAGE_OFFSET
    assert boards.SCHEMA["properties"]["chip"]["enum"] == [c.name for c in boards.BOARD_CHIPS]
    for name in boards.names():
        b = boards.get(name)
        assert (b.hal, b.flash_offset) == (b.chip.hal, b.chip.base_offset)
        assert b.mpy_arch == b.chip.mpy_arch or (b.virtual and b.mpy_arch in boards.VIRTUAL_ARCHS)
    assert boards.chip_of_image(5).name == "esp32c3" and boards.chip_of_image(99) is None
    # a chip the tools know but no board file may name yet
    assert "esp32c3" in boards.CHIPS and "esp32c3" not in boards.SCHEMA["properties"]["chip"]["enum"]


def _kib(heap: str) -> int:
    return int(heap[:-1]) * {"K": 1024, "M": 1 << 20}[heap[-1]]


def test_every_board_declares_its_python_heap_and_app_budget_with_a_source():
    """docs/boards.md gives the source of each board's heap and the sum behind its app budget."""
    doc = (boards.boards_dir().parent / "docs" / "boards.md").read_text()
    for name in boards.names():
        b = boards.load(name)
        assert "heap" in b and "app_budget" in b, name
        if b["chip"] != "virtual":
            row = next((ln for ln in doc.splitlines() if ln.startswith(f"| `{name}`")), None)
            assert row is not None, f"docs/boards.md has no row for {name}"
            assert f"`{b['heap']}`" in row and f"{b['app_budget']}" in row, row
    # MicroPython's initial heap is 56 KiB on an ESP32 and 64 KiB on an ESP32-S3 (REFERENCE-2.md section 4);
    # without PSRAM it may double once and still leave room for WiFi and one HTTPS request
    assert _kib(boards.load("ttgo_lora32_v21")["heap"]) == 2 * 56 * 1024
    assert _kib(boards.load("heltec_v3")["heap"]) == 2 * 64 * 1024


def test_the_32bit_virtual_ttgos_are_the_ttgo_in_heap_radio_and_sensors_and_the_rom_one_in_flash():
    """virtual_ttgo_rom is the TTGO as Bysans ships it (its MicroPython build's table, ROM slots, budget);
    virtual_ttgo is a TTGO on stock MicroPython (stock table), kept to measure what the build saves."""
    t = boards.load("ttgo_lora32_v21")
    for name in ("virtual_ttgo", "virtual_ttgo_rom"):
        v = boards.load(name)
        assert v["mpy_arch"] == "x86" and v["chip"] == "virtual", name
        assert v["heap"] == t["heap"] and v["radio"] == t["radio"], name
        assert [(s["type"], s["address"]) for s in v["sensors"]] == \
            [(s["type"], s["address"]) for s in t["sensors"]], name
    rom, stock = boards.load("virtual_ttgo_rom"), boards.load("virtual_ttgo")
    keys = ("app_budget", "app_slots", "app_store")
    assert [rom.get(k) for k in keys] == [t.get(k) for k in keys]
    assert rom["flash"]["partitions"] == t["flash"]["partitions"] == "4MiB-ota-romfs"
    assert t["micropython"] == "BYSANS_TTGO_LORA32" and stock["flash"]["partitions"] == "4MiBplus"


def test_a_real_board_with_rom_slots_names_a_build_with_romfs():
    b = copy.deepcopy(boards.load("ttgo_lora32_v21"))
    del b["micropython"]
    assert any("'romfs' needs a MicroPython built with ROMFS" in p for p in boards.check(b))
    b["micropython"] = "NO_SUCH_BUILD"
    assert any("no board build 'NO_SUCH_BUILD'" in p for p in boards.check(b))


def test_only_virtual_boards_run_x86_code():
    b = copy.deepcopy(boards.load("ttgo_lora32_v21"))
    b["mpy_arch"] = "x86"
    assert any("runs 'xtensawin' code" in p for p in boards.check(b))


def test_every_boards_app_budget_follows_from_its_partition_table():
    """The `vfs` partition that the board's own table leaves, less 128 KiB, over its app slots (docs/boards.md);
    a real board names its table too, so its budget is not a guess."""
    from fleet.sim import flashmap

    for name in boards.names():
        b = boards.load(name)
        layout = b["flash"].get("partitions", flashmap.DEFAULT_LAYOUT)
        if b["chip"] != "virtual":
            assert "partitions" in b["flash"], name
        vfs = flashmap.vfs_partition(flashmap.parse_table(flashmap.build_table(flashmap.LAYOUTS[layout])),
                                     b["flash"]["size"])
        if b.get("app_store") == "romfs":  # the slots are ROMFS images in the halves of the romfs partition
            [rom] = [p for p in flashmap.parse_table(flashmap.build_table(flashmap.LAYOUTS[layout]))
                     if p.label == flashmap.ROMFS_LABEL]
            assert b["app_budget"] == rom.size // 2 and b.get("app_slots", 2) == 2, name
            assert vfs.size >= 128 * 1024, name
            continue
        assert b["app_budget"] == (vfs.size - 128 * 1024) // b.get("app_slots", 2), name