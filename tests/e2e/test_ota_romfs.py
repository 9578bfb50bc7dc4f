"""A TTGO whose MicroPython has ROMFS (`virtual_ttgo_rom`, docs/virtual-board.md "ROMFS", docs/ota.md "ROM
slots"): its two app slots are ROMFS images in the halves of its `romfs` partition, mounted at /a and /b, and
the release runs in place from there. Provisioned over serial (also again, over a running image), the first
boot makes slot a's image from the files (mpremote's bytes) and removes them; an OTA update writes the new
release as an image into the other half (unchanged files copied from the running image, the rest downloaded,
each checked), switches, self-tests and confirms, or rolls back to the old image; a power cut while the
image is written, or a tampered object, leaves the old release running; FUOTA installs through the same
path. Needs the virtual board's 32-bit interpreter (scripts/build-micropython32-rom)."""

import random
import threading
import time

import pytest

from fleet import boards
from fleet.sim.vrom import romfs_image
from fleet.sim import flashmap
from lab.ota import Lab, Repl, count_cut, provision, wait_until
from provisioning.ota import slot_files

BOARD = "virtual_ttgo_rom"
CUTS = 4  # random power cuts after the one while the image is written
FAILING_CHECK = b"def run(board):\n    raise ValueError('the new release refuses this board')\n"
MOUNTS = ("import vfs, os, json\n"
          "m = {p: type(f).__name__ for f, p in vfs.mount()}\n"
          "print(json.dumps([m.get('/a'), m.get('/b'), m.get('/rom'), 'a' in os.listdir('/') and "
          "type(vfs.mount()[0][0]).__name__]))\n")
LITTLEFS_SLOTS = ("import vfs, os\n"
                  "vfs.umount('/a') if any(p == '/a' for f, p in vfs.mount()) else None\n"
                  "vfs.umount('/b') if any(p == '/b' for f, p in vfs.mount()) else None\n"
                  "print([d for d in ('a', 'b') if d in os.listdir('/')])\n")


@pytest.fixture
def lab(tmp_path):
    """The lab's OTA server with release 1.0.0 for the board published (lab.r1); stopped after the test."""
    lab = Lab(tmp_path / "ota")
    try:
        lab.r1 = lab.build("1.0.0", board=BOARD)
        lab.publish(lab.r1)
        lab.serve()
        yield lab
    finally:
        lab.stop()


def _board(make_board, lab, mp32rom, dev):
    b = make_board(board=BOARD, interpreter=mp32rom, heap=boards.load(BOARD)["heap"], scenario=lab.wifi_scenario)
    provision(b, lab.r1, lab.root1, lab.config(dev))
    r = Repl(b)
    r.run("import machine")
    r.c.write(b"\x02")  # friendly REPL, then reset: the board boots its slot as a board in the field does
    b.reset()
    r.reconnect()
    return b, r


def _romfs():
    [part] = [p for p in flashmap.parse_table(flashmap.build_table("4MiB-ota-romfs")) if p.label == "romfs"]
    return part


def _flash(b, at, n):
    with open(b.dir / "flash.img", "rb") as f:  # the board's flash, as the supervisor keeps it
        f.seek(at)
        return f.read(n)


def _image(rel):
    """Slot a's image of a provisioned release: its files as mpremote's `romfs build` makes them (VfsRomWriter)."""
    return romfs_image({p[3:]: d for p, d in slot_files(rel, "a").items() if p.startswith("/a/")})


def _rom_slots(r):
    a, b, rom, _ = r.json(MOUNTS)
    return a, b, rom


def test_an_update_writes_a_rom_image_into_the_other_slot_and_runs_from_it(make_board, lab, mp32rom):
    b, r = _board(make_board, lab, mp32rom, "70B3D57ED0000071")
    st = r.state()
    assert (st["version"], st["app"], st["slot"], st["path"]) == ("1.0.0", "1.0.0", "a", "/a")
    assert _rom_slots(r) == ("VfsRom", None, None)  # slot a is an image; b is erased; no /rom
    assert r.files_ok()
    want = _image(lab.r1)  # provisioned as files, made slot a's image at the first boot: mpremote's bytes
    assert _flash(b, _romfs().offset, len(want)) == want
    r2 = lab.derive(lab.r1, "2.0.0")
    lab.publish(r2)
    assert r.poll() is None  # written into b's half, switched, reset
    st = r.state()
    assert (st["version"], st["app"], st["slot"], st["trial"], st["path"]) == ("2.0.0", "2.0.0", "b", None, "/b")
    assert st["last"]["state"] == "confirmed"
    assert _rom_slots(r) == ("VfsRom", "VfsRom", None)
    assert r.files_ok()
    assert "2.0.0" in r.run("print(open('/b/bysans/version.mpy', 'rb').read())")
    assert "1.0.0" in r.run("print(open('/a/bysans/version.mpy', 'rb').read())")  # the old one, to roll back to
    assert r.run(LITTLEFS_SLOTS).strip() == "[]"  # no release file in littlefs
    r.close()


def test_a_release_failing_its_self_test_rolls_back_to_the_old_image(make_board, lab, mp32rom):
    b, r = _board(make_board, lab, mp32rom, "70B3D57ED0000072")
    bad = lab.derive(lab.r1, "2.0.0", files={"bysans/checks.mpy": FAILING_CHECK})
    lab.publish(bad)
    assert r.poll() is None  # installed, switched, reset; the trial's self-test fails, the board resets again
    st = r.state()
    assert (st["version"], st["app"], st["slot"], st["trial"], st["path"]) == ("1.0.0", "1.0.0", "a", None, "/a")
    assert st["last"]["state"] == "rolled_back" and st["last"]["reason"].startswith("SELFTEST")
    assert r.files_ok()
    assert r.poll()["state"] == "rolled_back"  # never taken again
    r.close()


def test_a_power_cut_while_the_image_is_written_leaves_the_old_release_running(make_board, lab, mp32rom):
    b, r = _board(make_board, lab, mp32rom, "70B3D57ED0000073")
    blob = random.Random(7).randbytes(24 * 1024)  # one more file to download
    lab.publish(lab.derive(lab.r1, "2.0.0", files={"bysans/blob.bin": blob}))
    b_half = _romfs().offset + _romfs().size // 2  # slot b's image in the board's flash

    def flash(at, n):
        return _flash(b, at, n)

    r.c.write(b"from bysans.ota import client\nclient.Client().poll()\n\x04")
    r.c.read_until(b"OK", 30)
    wait_until(lambda: flash(b_half + 4, 64) != b"\xff" * 64, timeout=60, step=0.01)  # being written
    b.powercut(0)
    assert flash(b_half, 3) == b"\xff" * 3  # cut before the header's magic: no image in slot b
    r.reconnect(timeout=60)
    st = r.state()
    assert (st["version"], st["app"], st["slot"], st["trial"], st["path"]) == ("1.0.0", "1.0.0", "a", None, "/a")
    assert r.files_ok()
    assert _rom_slots(r)[1] is None  # the cut image is not mounted
    t0 = time.monotonic()
    assert r.poll() is None  # the next poll writes it again, whole, and switches
    took = time.monotonic() - t0
    st = r.state()
    assert (st["version"], st["slot"], st["trial"], st["path"]) == ("2.0.0", "b", None, "/b")
    assert r.files_ok()
    # then cuts at random moments of further updates (before, while and after the image is written, around
    # the switch): each time the board comes back running a confirmed image whole (lab.ota.count_cut)
    rng = random.Random(12)
    stats = {"cuts": 0, "bricked": 0, "old": 0, "new": 0, "rolled_back": 0, "problems": []}
    for k in range(CUTS):
        lab.publish(lab.derive(lab.r1, f"3.{k}.0"))
        r.c.write(b"from bysans.ota import client\nclient.Client().poll()\n\x04")
        time.sleep(rng.uniform(0.0, 1.3 * took))
        b.powercut(0)
        stats["cuts"] += 1
        assert count_cut(r, stats, threading.Lock(), board=0, cut=k, want="B", sim=b) is not None, stats
    assert stats["bricked"] == 0 and stats["cuts"] == CUTS, stats
    r.close()


def test_a_tampered_object_is_refused_and_nothing_is_switched(make_board, lab, mp32rom):
    from fleet.release import metadata, repository

    b, r = _board(make_board, lab, mp32rom, "70B3D57ED0000074")
    r2 = lab.derive(lab.r1, "2.0.0")
    lab.publish(r2)
    entry = next(e for e in metadata.body_of((r2 / "release.json").read_bytes())["files"]
                 if e["path"] == "bysans/version.mpy")
    obj = repository.object_path(lab.repo, entry["sha256"])
    raw = (r2 / "files" / "bysans/version.mpy").read_bytes()
    obj.write_bytes(repository.compress(raw[:-1] + bytes([raw[-1] ^ 1])))
    out = r.poll()
    assert out is not None and (out["state"], out["reason"]) == ("failed", "BAD_HASH"), out
    st = r.state()
    assert (st["version"], st["app"], st["slot"], st["trial"], st["path"]) == ("1.0.0", "1.0.0", "a", None, "/a")
    assert _rom_slots(r)[1] is None  # b's image was never finished
    assert r.files_ok()
    r.close()


def test_a_release_over_fuota_is_installed_as_a_rom_image_through_the_same_client_path(make_board, tmp_path, mp32rom):
    """FUOTA (bysans.fuota.install: the OTA client's verification and slot code) on a ROM-slot board: the block
    rebuilt from fragments is installed as slot b's image, and the first boot confirms it."""
    from fleet.fuota.fragments import encode
    from fleet.fuota.payload import build
    from fleet.resources import firmware_dir
    from lab.fuota_air import install_and_reset
    from lab.fuota_powercut import FEED, put_file

    lab = Lab(tmp_path / "lab")
    try:
        r1 = lab.build("1.0.0", board=BOARD)
        src = (firmware_dir() / "bysans" / "sampler.py").read_bytes()
        r2 = lab.derive(r1, "2.0.0", files={"bysans/sampler.mpy": src + b"\n_FUOTA = 2\n"})
        b = make_board(board=BOARD, interpreter=mp32rom, heap=boards.load(BOARD)["heap"])
        provision(b, r1, lab.store.latest_root_bytes(), {"device": "70B3D57ED0000075", "kommune": "0751"}, wifi=None)
        r = Repl(b)
        r.c.write(b"\x02")
        b.reset()
        r.reconnect()
        info = build(r2, board=BOARD, kommune="751", base_body=(r1 / "release.json").read_bytes())
        session, frags = encode(info.data, 48, 4)
        put_file(r, "frags.bin", b"".join(frags))
        out = r.run(FEED % {"setup": session.setup_req().hex(), "rec": 3 + 48}, timeout=120)
        assert "BLOCK /fuota/frag.bin" in out, out
        r.c.write(b"\x02")
        b.reset()  # the install runs in the next boot's heap, as on a node (docs/formats/fuota.md)
        r.reconnect()
        assert install_and_reset(r) is None, "the installer did not switch and reset"
        st = r.state()
        assert (st["version"], st["app"], st["slot"], st["trial"], st["path"]) == ("2.0.0", "2.0.0", "b", None, "/b")
        assert st["last"]["state"] == "confirmed"
        assert _rom_slots(r) == ("VfsRom", "VfsRom", None)
        assert r.files_ok()
        r.close()
    finally:
        lab.stop()


def test_a_board_provisioned_again_makes_slot_a_the_image_of_the_new_release(make_board, lab, mp32rom):
    b, r = _board(make_board, lab, mp32rom, "70B3D57ED0000076")
    r.close()
    r2 = lab.derive(lab.r1, "2.0.0")
    provision(b, r2, lab.root1, lab.config("70B3D57ED0000076"))  # over serial, over the running image
    r = Repl(b)
    r.c.write(b"\x02")
    b.reset()
    r.reconnect()
    st = r.state()
    assert (st["version"], st["app"], st["slot"], st["path"]) == ("2.0.0", "2.0.0", "a", "/a")
    assert _rom_slots(r) == ("VfsRom", None, None)
    want = _image(r2)
    assert _flash(b, _romfs().offset, len(want)) == want
    assert r.files_ok()
    r.close()


def test_a_board_without_romfs_never_loads_the_rom_slot_writer_at_boot(make_board, tmp_path):
    """Board `virtual` (no romfs partition, its slots files): the boot's slot logic (bysans.ota.rundir) asks
    whether MicroPython maps a ROM segment before it imports bysans.ota.romfs. Loading it on every boot only to
    find no partition left its names interned for good (MicroPython never frees a qstr): 56 names, 0.7 KB of
    the 64-bit heap, enough to push the FUOTA node's names past a qstr pool's end in the air deployment test,
    where the next pool (1280 entries, 14 KB in one piece) found no room."""
    from lab.fuota_air import dev_eui
    from lab.ota import HEAP

    lab = Lab(tmp_path / "ota")
    r1 = lab.build("1.0.0")
    b = make_board(board="virtual", heap=HEAP)
    provision(b, r1, lab.store.latest_root_bytes(), {"device": dev_eui(0).hex().upper(), "kommune": "0751"},
              wifi=None)
    r = Repl(b)
    r.c.write(b"\x02")
    b.reset()
    r.reconnect()
    names = r.run("import micropython\nmicropython.qstr_info(1)")
    assert "Q(/a/bysans/ota/rundir.mpy)" in names, names[-500:]  # the boot's slot logic ran, from slot a
    assert "Q(bysans.ota.romfs)" not in names
