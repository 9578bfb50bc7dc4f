"""The board's ROMFS writer (firmware bysans/ota/romfs.py, run under MicroPython) against mpremote's own
(mpremote/romfs.py VfsRomWriter, behind `mpremote romfs build`): the same tree gives the same bytes, the
header goes last, and MicroPython's VfsRom reads the files back."""

import json
import subprocess

from fleet.resources import firmware_dir, micropython_path
from fleet.sim.vrom import romfs_image

TREE = {
    "manifest.json": b'{"version": "1.0.0"}',
    "bysans/__init__.mpy": b"",
    "bysans/a.mpy": bytes(range(256)) * 20,  # crosses a 4 KiB block
    "bysans/lorawan/mac.mpy": b"M" * 127,
    "bysans/lorawan/region.mpy": b"odd",
    "z.bin": b"\x00" * 300,
}

# esp32.Partition's block protocol over a bytearray, for the scripts below; records the order of writes
PART = """class Part:
    def __init__(self, n):
        self.mem = bytearray(b"\\xff" * n)
        self.log = []
    def ioctl(self, op, arg):
        if op == 6:
            self.mem[arg * 4096:(arg + 1) * 4096] = b"\\xff" * 4096
        return 0
    def writeblocks(self, block, buf, off):
        at = block * 4096 + off
        self.log.append(at)
        self.mem[at:at + len(buf)] = buf
    def info(self):
        return (1, 0x8f, 0, len(self.mem), "romfs", False)
"""

SCRIPT = """
import sys, os, binascii, vfs, io
sys.path.insert(0, %(fw)r)
from bysans.ota import romfs

%(part)s
p = Part(0x10000)
n = romfs.write(p, %(src)r)
img = bytes(p.mem[:n])
fs = vfs.VfsRom(img)
vfs.mount(fs, "/romtest")
got = {}
def walk(d, rel):
    for e in os.ilistdir(d):
        path = d + "/" + e[0]
        if e[1] == 0x4000:
            walk(path, rel + e[0] + "/")
        else:
            got[rel + e[0]] = binascii.hexlify(open(path, "rb").read()).decode()
walk("/romtest", "")
print(binascii.hexlify(img).decode())
print(n, romfs.image_size(%(src)r), p.log[0], p.log[-1])
import json
print(json.dumps(got))
"""


def test_the_boards_romfs_writer_makes_mpremotes_image(tmp_path):
    src = tmp_path / "slot"
    for path, data in TREE.items():
        (src / path).parent.mkdir(parents=True, exist_ok=True)
        (src / path).write_bytes(data)
    script = SCRIPT % {"part": PART, "fw": str(firmware_dir()), "src": str(src)}
    proc = subprocess.run([micropython_path(), "-X", "heapsize=256K", "-c", script], capture_output=True, text=True,
                          timeout=60)
    assert proc.returncode == 0, proc.stderr + proc.stdout
    hexed, sizes, files = proc.stdout.splitlines()
    expected = romfs_image(TREE)
    assert bytes.fromhex(hexed) == expected
    n, predicted, first, last = map(int, sizes.split())
    assert n == predicted == len(expected)
    # block 0's magic (bytes 0-2) is written last, after everything else: a cut write is no ROMFS
    assert first == 3 and last == 0
    assert {k: bytes.fromhex(v) for k, v in json.loads(files).items()} == TREE


SLOT_SCRIPT = """
import sys, os, binascii, vfs, json
sys.path.insert(0, %(fw)r)
from bysans.ota import romfs
from bysans.ota.manifest import Files
from bysans.ota.reasons import Refused

%(part)s
entries = json.loads(%(entries)r)
data = {k: binascii.unhexlify(v) for k, v in json.loads(%(data)r).items()}
files = Files()
for e in entries:
    files.add(e)
meta = (("manifest.json", len(data["manifest.json"])), ("manifest.sig", len(data["manifest.sig"])))

def put(path, e, out):
    fc = None
    out.put(data[path])

p = Part(0x10000)
n = romfs.write_slot(p, "b", files, meta, put)
img = bytes(p.mem[0x8000:0x8000 + n])
fs = vfs.VfsRom(img)
vfs.mount(fs, "/slot")
got = {}
def walk(d, rel):
    for name in sorted(os.listdir(d)):
        p2 = d + "/" + name
        if os.stat(p2)[0] & 0x4000:
            walk(p2, rel + name + "/")
        else:
            got[rel + name] = binascii.hexlify(open(p2, "rb").read()).decode()
walk("/slot", "")
print(binascii.hexlify(img).decode())
print(n, romfs.slot_image_size(list(meta) + [(e["path"], e["length"]) for e in entries]), p.log[0], p.log[-1],
      bytes(p.mem[:0x8000]) == b"\\xff" * 0x8000)
print(json.dumps(got))
unsorted = Files()
for e in reversed(entries):
    unsorted.add(e)
try:
    romfs.write_slot(Part(0x10000), "a", unsorted, meta, put)
    print("written")
except Refused as e:
    print("refused", e.detail)
"""


def test_a_rom_slots_image_is_what_the_host_counts_mounts_and_keeps_the_other_slot(tmp_path):
    """The client's ROM slot writer (romfs.write_slot: the signed manifest first, then the manifest's files in
    its path order, directories as they come) makes byte for byte the image fleet release build counts
    (fleet/release/flashspace.rom_image), in slot b's half only, its magic last; VfsRom reads every file back;
    a manifest whose files are not in path order is refused (a ROMFS directory must be contiguous)."""
    import hashlib

    from fleet.release import flashspace

    data = {"manifest.json": b'{"version": "1.0.0"}', "manifest.sig": b"[sigs]\n", **TREE,
            "bysans/ota/a-file.mpy": b"x" * 5000, "bysans/ota.mpy": b"y" * 300, "bysans/zz.mpy": b""}
    entries = [{"path": p, "length": len(d), "sha256": hashlib.sha256(d).hexdigest()}
               for p, d in sorted(data.items()) if not p.startswith("manifest.")]
    script = SLOT_SCRIPT % {"part": PART, "fw": str(firmware_dir()), "entries": json.dumps(entries),
                            "data": json.dumps({k: v.hex() for k, v in data.items()})}
    proc = subprocess.run([micropython_path(), "-X", "heapsize=1M", "-c", script], capture_output=True, text=True,
                          timeout=60)
    assert proc.returncode == 0, proc.stderr + proc.stdout
    hexed, sizes, files, unsorted = proc.stdout.splitlines()
    expected = flashspace.rom_image([("manifest.json", data["manifest.json"]), ("manifest.sig", data["manifest.sig"])]
                                    + [(e["path"], data[e["path"]]) for e in entries])
    assert bytes.fromhex(hexed) == expected
    n, predicted, first, last, a_untouched = sizes.split()
    assert int(n) == int(predicted) == len(expected) and a_untouched == "True"  # slot a's half never touched
    assert (int(first), int(last)) == (0x8000 + 3, 0x8000)  # slot b's half; its magic written last
    assert {k: bytes.fromhex(v) for k, v in json.loads(files).items()} == data
    assert unsorted.startswith("refused files not in path order")
    # what the build counts (signatures up to META_ROOM) is never less than the image
    assert len(expected) <= flashspace.rom_image_bytes([(e["path"], e["length"]) for e in entries],
                                                       len(data["manifest.json"])) <= len(expected) + flashspace.META_ROOM
