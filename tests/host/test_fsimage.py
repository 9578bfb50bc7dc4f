"""The host-built littlefs image (provisioning/fsimage.py) as MicroPython itself mounts it: its own
`vfs.VfsLfs2` with the geometry of the board's `vfs` partition reads every file back, byte for byte, and
can write to it; per-device images from one template; too much for the partition is refused."""

import hashlib
import json
import subprocess

import pytest

from fleet.resources import micropython_path
from provisioning import fsimage

MOUNT = """
import vfs, sys, json, hashlib, binascii
img = open(sys.argv[1], 'rb').read()
N = int(sys.argv[2])
class BD:
    def __init__(s): s.b = bytearray(img) + bytearray(b'\\xa5' * (N * 4096 - len(img)))
    def readblocks(s, blk, buf, off=0):
        a = blk * 4096 + off; buf[:] = s.b[a:a + len(buf)]
    def writeblocks(s, blk, buf, off=None):
        a = blk * 4096 + (off or 0); s.b[a:a + len(buf)] = buf
    def ioctl(s, op, arg):
        if op == 4: return N
        if op == 5: return 4096
        if op == 6:
            a = arg * 4096; s.b[a:a + 4096] = b'\\xff' * 4096
        return 0
fs = vfs.VfsLfs2(BD())
out = {}
def walk(d):
    for name, kind, *_ in fs.ilistdir(d):
        p = d.rstrip('/') + '/' + name
        if kind == 0x4000: walk(p)
        else: out[p] = binascii.hexlify(hashlib.sha256(open_(p)).digest()).decode()
def open_(p):
    f = fs.open(p, 'rb'); d = f.read(); f.close(); return d
walk('/')
f = fs.open('/written_on_board.txt', 'w'); f.write('x' * 9000); f.close()
out['free_blocks'] = fs.statvfs('/')[3]
print(json.dumps(out))
"""


def mount_on_micropython(tmp_path, image, blocks) -> dict:
    """MicroPython's own littlefs mounts the image on a partition of `blocks` whose blocks after the image
    hold garbage (as a board's flash after an earlier filesystem), lists every file with its SHA-256, and
    writes a new file."""
    (tmp_path / "fs.bin").write_bytes(image)
    (tmp_path / "mount.py").write_text(MOUNT)
    r = subprocess.run([micropython_path(), "-X", "heapsize=16M", str(tmp_path / "mount.py"),
                        str(tmp_path / "fs.bin"), str(blocks)], capture_output=True, timeout=60)
    assert r.returncode == 0, r.stdout + r.stderr
    return json.loads(r.stdout)


FILES = {"/bysans/app.mpy": bytes(range(256)) * 70, "/bysans/drivers/bme280.mpy": b"\x4d\x06" * 3000,
         "/board.json": b'{"name":"virtual"}', "/boot.py": b"import sys\n", "/main.py": b"from bysans import app\n"}


def test_micropython_mounts_the_image_and_reads_every_file_back(tmp_path):
    geo = fsimage.Geometry.of_partition(0x200000)
    template = fsimage.Template(FILES, geo)
    device = {"/config/lorawan.json": b'{"app_key":"00"}', "/config/device.json": b'{"name":"x"}'}
    image = template.image(device)
    assert len(image) % 4096 == 0 and len(image) < 64 * 4096  # only the blocks in use
    seen = mount_on_micropython(tmp_path, image, geo.block_count)
    free = seen.pop("free_blocks")
    want = {p: hashlib.sha256(d).hexdigest() for p, d in {**FILES, **device}.items()}
    assert seen == want
    assert free > geo.block_count - 64  # the superblock names the whole partition


def test_each_device_image_has_only_its_own_files_on_the_shared_template(tmp_path):
    geo = fsimage.Geometry.of_partition(0x40000)
    template = fsimage.Template(FILES, geo)
    a = fsimage.read(template.image({"/config/device.json": b"A"}), geo)
    b = fsimage.read(template.image({"/config/device.json": b"B" * 5000}), geo)
    assert a["/config/device.json"] == b"A" and b["/config/device.json"] == b"B" * 5000
    assert {p: a[p] for p in FILES} == FILES == {p: b[p] for p in FILES}
    assert fsimage.read(template.image(), geo) == FILES


def test_files_bigger_than_the_partition_are_refused_with_both_sizes():
    geo = fsimage.Geometry.of_partition(0x20000)  # 32 blocks
    with pytest.raises(fsimage.TooBig) as e:
        fsimage.build({"/bysans/app.mpy": b"\x01" * 0x30000}, geo)
    assert "196608 bytes" in e.value.message and "131072 bytes" in e.value.message
    with pytest.raises(fsimage.TooBig):  # fits by size, not with littlefs's own blocks
        fsimage.Template(FILES, geo).image({"/config/big.bin": bytes(0x1E000)})


def test_the_written_extent_ends_on_an_erase_block_when_that_is_quicker(tmp_path):
    """romflash pads the image with erased bytes to its last 64 KiB block from 5 tail sectors on (one block
    erase then beats erasing the tail sector by sector), never past the partition; MicroPython still mounts
    it and finds the same files and free blocks."""
    from provisioning.romflash import erase_friendly

    vfs, geo = 0x200000, fsimage.Geometry.of_partition(0x200000)
    image = fsimage.Template(FILES, geo).image()
    sectors = len(image) // 4096
    padded = erase_friendly(image, vfs, vfs + geo.size)
    assert len(padded) == (0x10000 if sectors >= 5 else len(image)) and padded.startswith(image)
    assert set(padded[len(image):]) <= {0xFF}
    assert erase_friendly(b"\0" * 4 * 4096, vfs, vfs + geo.size) == b"\0" * 4 * 4096  # 4 sectors: as they are
    assert len(erase_friendly(b"\0" * 5 * 4096, vfs, vfs + geo.size)) == 0x10000
    assert len(erase_friendly(b"\0" * 0x11000, vfs, vfs + geo.size)) == 0x11000  # one sector past a block
    assert len(erase_friendly(b"\0" * 0x8000, vfs, vfs + 0xC000)) == 0x8000  # the partition ends first
    assert len(erase_friendly(b"\0" * 0x10000, vfs, vfs + geo.size)) == 0x10000  # already whole blocks
    a, b = mount_on_micropython(tmp_path, image, geo.block_count), mount_on_micropython(tmp_path, padded, geo.block_count)
    assert a == b
