"""ROMFS on a virtual board, as MicroPython 1.28 has it on an ESP32 built with it (docs/virtual-board.md,
"ROMFS"): vfs.rom_ioctl maps the flash's `romfs` partition outside the heap, mp_init mounts it at /rom and
sys.path gets /rom and /rom/lib before /lib; .mpy code there runs in place; a module on the filesystem
shadows the ROM's. A board whose table has no romfs partition has no /rom. Needs the virtual board's
32-bit interpreter (scripts/build-micropython32-rom)."""

import json
import subprocess
import tempfile
from pathlib import Path

from e2e_tools import run_fleet
from fleet.resources import mpy_cross_binary
from fleet.sim import flashmap
from fleet.sim.vrom import romfs_image
from lab.serialconsole import Console

MOD = "WORDS = %r\n\ndef hello():\n    return %r\n" % (tuple("w%03d_%s" % (i, "x" * 40) for i in range(60)), "rom")


def _mpy(source: str) -> bytes:
    with tempfile.TemporaryDirectory() as d:
        src, out = Path(d) / "m.py", Path(d) / "m.mpy"
        src.write_text(source)
        subprocess.run([mpy_cross_binary(), "-march=x86", "-o", str(out), str(src)], check=True)
        return out.read_bytes()


def _start(name, board, mp32rom):
    r = run_fleet("sim", "start", "--name", name, "--board", board, "--interpreter", mp32rom, "--erase", "--json")
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout)[0]["port"]


def _exec(port, code):
    c = Console(port)
    try:
        c.raw_repl()
        return c.exec(code)
    finally:
        c.close()


def test_a_romfs_partition_is_mounted_at_rom_and_its_code_runs_in_place(mp32rom):
    port = _start("rom1", "virtual_ttgo_rom", mp32rom)
    try:
        [part] = [p for p in flashmap.parse_table(flashmap.build_table("4MiB-ota-romfs")) if p.label == "romfs"]
        assert "0 True" in _exec(port, "import vfs\nprint(len([m for m in vfs.mount() if m[1] == '/rom']), "
                                       "vfs.rom_ioctl(1) == 1)")  # erased: no ROMFS to mount, as on an ESP32
        mpy = _mpy(MOD)
        img = romfs_image({"romtest.mpy": mpy, "lib/romlib.mpy": mpy})
        # written through esp32.Partition, as the board's own writer does (bysans/ota/romfs.py)
        code = ["import esp32\np = esp32.Partition.find(esp32.Partition.TYPE_DATA, label='romfs')[0]",
                f"assert p.info()[2:4] == ({part.offset}, {part.size})"]
        code += [f"p.ioctl(6, {b})" for b in range(0, (len(img) + 4095) // 4096)]
        code += [f"p.writeblocks(0, bytes.fromhex('{img[i:i + 512].hex()}'), {i})" for i in range(0, len(img), 512)]
        _exec(port, "\n".join(code))
        # a copy of the same module on the filesystem, and one that shadows the ROM's
        shadow = _mpy("def hello():\n    return 1\n")
        _exec(port, f"with open('/fsmod.mpy', 'wb') as f:\n f.write(bytes.fromhex('{mpy.hex()}'))\n"
                    f"with open('/romlib.mpy', 'wb') as f:\n f.write(bytes.fromhex('{shadow.hex()}'))")
        run_fleet("sim", "reset", "rom1")
        out = _exec(port, "import sys, gc, vfs\nprint(sys.path)\nprint([m[1] for m in vfs.mount()])\n"
                          "gc.collect(); a = gc.mem_alloc()\nimport romtest\ngc.collect(); b = gc.mem_alloc()\n"
                          "import fsmod\ngc.collect(); c = gc.mem_alloc()\n"
                          "import romlib\nprint(b - a, c - b, romtest.hello(), romlib.hello(), romlib.__file__)")
        path, mounts, costs = out.strip().splitlines()[-3:]
        assert path == "['', '.frozen', '/rom', '/rom/lib', '/lib']"  # MicroPython 1.28's ESP32 order
        assert "'/rom'" in mounts and "/_vrom" not in mounts
        from_rom, from_fs, hello, shadow, where = costs.split()
        assert hello == "rom" and shadow == "1" and where == "romlib.mpy"  # the filesystem's copy wins
        assert int(from_rom) * 2 < int(from_fs), costs  # code, names and strings stay in flash
    finally:
        run_fleet("sim", "stop", "rom1")


def test_without_a_romfs_partition_there_is_no_rom(mp32rom):
    port = _start("rom2", "virtual_ttgo", mp32rom)
    try:
        out = _exec(port, "import sys, vfs\nprint(vfs.rom_ioctl(1), vfs.rom_ioctl(2, 0), [m[1] for m in vfs.mount()], "
                          "sys.path)")
        assert out.strip().splitlines()[-1] == "0 -22 ['/'] ['', '.frozen', '/lib']"
    finally:
        run_fleet("sim", "stop", "rom2")
