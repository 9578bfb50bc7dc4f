# The OTA client's slots and streaming on the device (bysans.ota.stream, bysans.ota.slots, which the client
# uses), with the heap limited to 64 KiB: a 228 KB file (more than three times the heap) is inflated from
# its zlib object straight to flash with its length and hash checked; a window bigger than 1 KiB is refused before anything is allocated for it; the boot state
# counts a trial slot's boots, confirms, rolls back by itself, and survives a damaged state file.
# Vectors: tests/firmware/ota_client_vectors/ (made with CPython's zlib).
# mp32: also on 32 bits at the smallest board's heap (tests/firmware/conftest.py)
# mp: -X heapsize=64K
import gc
import json
import os

from bysans.ota import slots, stream
from bysans.ota.reasons import NAMES, Refused

_DIR = __file__.rsplit("/", 1)[0] + "/ota_client_vectors/"
import time
_ROOT = "/tmp/bysans-mp-ota-%d" % time.ticks_us()


def _rm(path):
    try:
        st = os.stat(path)
    except OSError:
        return
    if st[0] & 0x4000:
        for name in os.listdir(path):
            _rm(path + "/" + name)
        os.rmdir(path)
    else:
        os.remove(path)


def _fresh():
    _rm(_ROOT)
    slots.ensure_dir(_ROOT + "/ota")
    return _ROOT


def _entry():
    with open(_DIR + "big.json") as f:
        return json.load(f)


def test_a_file_bigger_than_the_heap_streams_to_flash_with_its_hash_checked():
    _fresh()
    e = _entry()
    buf = bytearray(512)
    gc.collect()
    assert e["length"] > 3 * 64 * 1024
    with open(_DIR + "big.z", "rb") as f:
        stream.copy_checked(lambda: stream.inflater(f), e, _ROOT + "/big.bin", buf)
    assert os.stat(_ROOT + "/big.bin")[6] == e["length"]
    assert stream.matches(_ROOT + "/big.bin", e, buf)
    assert not stream.matches(_ROOT + "/big.bin", dict(e, sha256="1" * 64), buf)


def test_a_longer_or_changed_file_is_refused_and_leaves_nothing():
    _fresh()
    e = _entry()
    buf = bytearray(512)
    for entry, want in ((dict(e, length=e["length"] - 1), "TOO_LONG"), (dict(e, sha256="0" * 64), "BAD_HASH"),
                        (dict(e, length=e["length"] + 5), "TOO_SHORT")):
        try:
            with open(_DIR + "big.z", "rb") as f:
                stream.copy_checked(lambda: stream.inflater(f), entry, _ROOT + "/big.bin", buf)
            got = "OK"
        except Refused as r:
            got = NAMES[r.reason]
        assert got == want, (got, want)
        try:
            os.stat(_ROOT + "/big.bin")
            assert False, "a refused file was kept"
        except OSError:
            pass


def test_a_32k_window_is_refused_before_it_is_allocated():
    _fresh()
    try:
        with open(_DIR + "big_w15.z", "rb") as f:
            stream.copy_checked(lambda: stream.inflater(f), _entry(), _ROOT + "/big.bin", bytearray(512))
        got = "OK"
    except Refused as r:
        got = NAMES[r.reason]
    assert got == "BAD_HASH"


def _slot(root, name, version):
    slots.ensure_dir(root + "/" + name)
    with open(root + "/" + name + "/manifest.json", "w") as f:
        f.write(json.dumps({"version": version, "files": []}))


def test_trial_boots_are_counted_and_the_board_returns_by_itself():
    root = _fresh()
    _slot(root, "a", "1")
    _slot(root, "b", "2")
    slots.save({"confirmed": "a", "trial": None, "tries": 0, "target": None, "bad": [], "last": None}, root)
    slots.switch("b", "d" * 64, root)
    for n in range(slots.MAX_TRIES):  # boots that never confirm (crash, hang, power cut)
        assert slots.choose(root) == ("b", True)
        assert slots.load(root)["tries"] == n + 1
    assert slots.choose(root) == ("a", False)
    st = slots.load(root)
    assert st["trial"] is None and st["last"]["state"] == "rolled_back" and st["bad"] == ["d" * 64]
    assert st["last"]["reason"] == "BOOT_FAILED"


def test_confirm_moves_the_confirmed_slot_and_its_marker():
    root = _fresh()
    _slot(root, "a", "1")
    _slot(root, "b", "2")
    slots.switch("b", "e" * 64, root)
    assert slots.choose(root) == ("b", True)
    slots.confirm(root, "2")
    assert slots.choose(root) == ("b", False)
    assert slots.confirmed_hint(root) == "b"
    assert slots.inactive(slots.load(root)) == "a"


def test_an_incomplete_trial_slot_is_never_booted():
    root = _fresh()
    _slot(root, "a", "1")
    slots.ensure_dir(root + "/b")  # files written, manifest.json not yet
    slots.save({"confirmed": "a", "trial": None, "tries": 0, "target": None, "bad": [], "last": None}, root)
    slots.switch("b", "f" * 64, root)
    assert slots.choose(root) == ("a", False)
    assert slots.load(root)["last"]["reason"] == "SLOT_INCOMPLETE"


def test_a_damaged_state_file_falls_back_to_the_confirmed_marker():
    root = _fresh()
    _slot(root, "b", "2")
    slots.confirm(root)  # nothing to confirm: no trial
    with open(root + "/ota/confirmed", "w") as f:
        f.write("b")
    text = slots.encode({"confirmed": "b", "trial": "a", "tries": 0, "target": None, "bad": [], "last": None})
    with open(root + "/ota/boot.json", "w") as f:
        f.write(text.replace('"tries": 0', '"tries": 9'))  # the checksum no longer matches
    assert slots.decode(open(root + "/ota/boot.json").read()) is None
    assert slots.choose(root) == ("b", False)
    _rm(_ROOT)


def test_base_image_partitions_switch_confirm_and_roll_back_simulated():
    from bysans.ota import image

    root = _fresh()
    image.SimPartition.root = root + "/fw"
    up = image.ImageUpdate(image.SimPartition)
    e = _entry()
    with open(_DIR + "big.z", "rb") as f:
        nxt = up.write(stream.inflater(f), e)
    assert nxt.index == 1
    up.switch(nxt)
    for _ in range(image.SimPartition.MAX_TRIES):  # never confirmed: three boots of the new image...
        assert image.SimPartition.bootloader() == 1
    assert image.SimPartition.bootloader() == 0  # ...then the previous image, by itself
    up.switch(nxt)
    assert image.SimPartition.bootloader() == 1
    up.confirm()
    assert image.SimPartition.bootloader() == 1
    _rm(_ROOT)
