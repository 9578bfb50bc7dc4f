# The ROM follows the release that runs: on a board whose MicroPython has ROMFS (a `romfs` data partition,
# mounted at /rom by MicroPython 1.28's mp_init, vfs.rom_ioctl), the slot that boots is written there as a
# ROMFS image, so its .mpy modules run in place from flash and take little heap (bysans.ota.slots.run_dir).
# Written at boot, before the app imports anything, whenever the ROM does not hold the slot's signed
# manifest byte for byte: after provisioning, after an update switches slots, after a rollback.
#
# The image is MicroPython's ROMFS format as mpremote's `romfs build` writes it (mpremote/romfs.py,
# VfsRomWriter): the slot's tree, names sorted, each file verbatim. It is streamed a 4 KiB block at a time;
# block 0 (the header) is written last, so a power cut leaves no valid ROMFS (not mounted: the slot runs
# from the filesystem, and the next boot writes the ROM again).
import os

_BLOCK = 4096
_CHUNK = 256
_DIR, _FILE, _DATA = 4, 5, 2  # ROMFS record kinds (extmod/vfs_rom.c)
_HEADER = b"\xd2\xcd\x31"


def _uint(v):
    # ROMFS's unsigned integer: 7 bits a byte, most significant first, the high bit set on all but the last
    out = bytes((v & 0x7F,))
    v >>= 7
    while v:
        out = bytes((0x80 | (v & 0x7F),)) + out
        v >>= 7
    return out


def _rec(payload_len):
    # a record's bytes around a payload of `payload_len`: its kind (one byte here) and its length
    return 1 + len(_uint(payload_len)) + payload_len


def _tree(d):
    """[(name, size, children)] of directory `d`, names sorted; children is None for a file."""
    out = []
    for name in sorted(e[0] for e in os.ilistdir(d)):
        p = d + "/" + name
        if os.stat(p)[0] & 0x4000:
            kids = _tree(p)
            out.append((name, _payload(name, kids), kids))
        else:
            n = os.stat(p)[6]
            out.append((name, len(_uint(len(name))) + len(name) + _rec(n), None))
    return out


def _payload(name, kids):
    return len(_uint(len(name))) + len(name) + sum(_rec(k[1]) for k in kids)


class _Out:
    # Streams through a small buffer: each block is erased when first reached, then written piecewise (the
    # block protocol's offset form, which does not erase). The header's 3 magic bytes are written last.
    def __init__(self, part):
        self.part, self.buf, self.n, self.at = part, bytearray(_CHUNK), 0, 0

    def put(self, data):
        mv = memoryview(data)
        while mv:
            room = min(_CHUNK - self.n, _BLOCK - (self.at + self.n) % _BLOCK)
            k = min(len(mv), room)
            self.buf[self.n:self.n + k] = mv[:k]
            self.n += k
            mv = mv[k:]
            if k == room:
                self.flush()

    def flush(self):
        if not self.n:
            return
        block, off = divmod(self.at, _BLOCK)
        if off == 0:
            self.part.ioctl(6, block)  # erase
        skip = len(_HEADER) if self.at == 0 else 0
        self.part.writeblocks(block, memoryview(self.buf)[skip:self.n], off + skip)
        self.at += self.n
        self.n = 0

    def close(self):
        self.flush()
        self.part.writeblocks(0, _HEADER, 0)  # now it is a ROMFS


def _write(out, d, tree):
    for name, size, kids in tree:
        p = d + "/" + name
        if kids is None:
            n = os.stat(p)[6]
            out.put(bytes((_FILE,)) + _uint(size) + _uint(len(name)) + name.encode() + bytes((_DATA,)) + _uint(n))
            buf = bytearray(256)
            with open(p, "rb") as f:
                while True:
                    k = f.readinto(buf)
                    if not k:
                        break
                    out.put(memoryview(buf)[:k])
        else:
            out.put(bytes((_DIR,)) + _uint(size) + _uint(len(name)) + name.encode())
            _write(out, p, kids)


def image_size(d):
    """The size of the ROMFS image of directory `d`, as write() makes it."""
    body = sum(_rec(k[1]) for k in _tree(d))
    n = len(_HEADER) + len(_uint(body)) + body
    return n + n % 2


def write(part, d):
    """Writes directory `d` as a ROMFS image into partition `part` (esp32.Partition); returns its size."""
    tree = _tree(d)
    body = sum(_rec(k[1]) for k in tree)
    head = _HEADER + _uint(body)
    if (len(head) + body) % 2:
        head = _HEADER + b"\x80" + _uint(body)  # the image's length made even, as mpremote's writer does
    out = _Out(part)
    out.put(head)
    _write(out, d, tree)
    out.close()
    return out.at


def partition():
    """The `romfs` partition when this MicroPython maps one (vfs.rom_ioctl), else None."""
    try:
        import vfs
        import esp32

        if vfs.rom_ioctl(1) < 1:
            return None
        found = esp32.Partition.find(esp32.Partition.TYPE_DATA, label="romfs")
    except (ImportError, AttributeError, OSError):
        return None
    return found[0] if found else None


def follow(src, rom="/rom"):
    """Makes the ROM hold the slot directory `src` (when the board has a romfs partition it fits) and mounts
    it at `rom`. True when the ROM was written."""
    part = partition()
    if part is None:
        return False
    if image_size(src) > part.info()[3]:
        return False  # the slot runs from the filesystem
    import vfs

    try:
        vfs.umount(rom)
    except OSError:
        pass
    write(part, src)
    try:
        vfs.mount(vfs.VfsRom(vfs.rom_ioctl(2, 0)), rom)
    except OSError:
        pass
    return True
