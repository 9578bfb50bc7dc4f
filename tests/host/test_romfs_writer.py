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

SCRIPT = """
import sys, os, binascii, vfs, io
sys.path.insert(0, %(fw)r)
from bysans.ota import romfs

class Part:  # esp32.Partition's block protocol over a bytearray; records the order of writes
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
    script = SCRIPT % {"fw": str(firmware_dir()), "src": str(src)}
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
