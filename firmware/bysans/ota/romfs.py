# App slots as ROMFS images (docs/ota.md, "ROM slots"). On a board whose MicroPython has ROMFS, the `romfs`
# partition (the one segment MicroPython 1.28's ESP32 port maps: vfs.rom_ioctl(2, 0)) holds the two app slots:
# slot a's image in its first half, slot b's in its second. boot.py mounts them at /a and /b (vfs.VfsRom over
# a slice of the mapped partition), so the slot directories are the images and a release's code runs in
# place from flash. No release file takes a littlefs block.
#
# The client (bysans.ota.client._install_rom, write_slot) writes a release into the other half: the files
# the running image holds are copied from it, the others downloaded (or taken from a FUOTA block), each
# checked against the signed manifest (length, SHA-256) as it streams through small buffers; the header's
# magic is written last, so a power cut or a refused file leaves no image there and the running slot
# untouched (the switch comes after, in the client).
# adopt() makes the image of a slot held as files (provisioned over serial) at its first boot, with the tree
# writer (write: the files as mpremote's `romfs build` orders them), and removes the files.
#
# write_slot's order: manifest.json, manifest.sig, then the manifest's files in its order, which must be sorted by
# path (fleet release build sorts them): a directory's files are then contiguous, as ROMFS needs.
#
# The format is MicroPython's ROMFS (extmod/vfs_rom.c) as mpremote's `romfs build` writes it (mpremote/romfs.py,
# VfsRomWriter); write() makes the image of a directory tree, names sorted, each file verbatim. Either writer
# streams a 4 KiB block at a time through a small buffer; block 0's magic is written last, so a power cut
# leaves no valid ROMFS (not mounted).
import os

from .files import FileCheck
from .reasons import MALFORMED, TOO_LONG, Refused

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
    def __init__(self, part, base=0):
        # `base`: the image's first block in the partition (write_slot: slot b's half)
        self.part, self.base, self.buf, self.n, self.at = part, base, bytearray(_CHUNK), 0, 0

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
            self.part.ioctl(6, self.base + block)  # erase
        skip = len(_HEADER) if self.at == 0 else 0
        self.part.writeblocks(self.base + block, memoryview(self.buf)[skip:self.n], off + skip)
        self.at += self.n
        self.n = 0

    def close(self):
        self.flush()
        self.part.ioctl(3, 0)  # sync: everything else is in flash before the magic
        self.part.writeblocks(self.base, _HEADER, 0)  # now it is a ROMFS
        self.part.ioctl(3, 0)


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


def write(part, d, base=0):
    """Writes directory `d` as a ROMFS image into partition `part` (esp32.Partition) from block `base`;
    returns its size."""
    tree = _tree(d)
    body = sum(_rec(k[1]) for k in tree)
    head = _HEADER + _uint(body)
    if (len(head) + body) % 2:
        head = _HEADER + b"\x80" + _uint(body)  # the image's length made even, as mpremote's writer does
    out = _Out(part, base)
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


# ----- the app slots as images --------------------------------------------------------------------------------
_META = ("manifest.json", "manifest.sig")


def half(part):
    """The bytes of one slot: half the partition, whole 4 KiB blocks."""
    return part.info()[3] // 2 // _BLOCK * _BLOCK


def _segment(slot):
    import vfs

    seg = memoryview(vfs.rom_ioctl(2, 0))  # the mapped partition (no copy): an esp32.Partition on a chip
    h = len(seg) // 2 // _BLOCK * _BLOCK
    return seg[:h] if slot == "a" else seg[h:2 * h]


def umount(slot):
    import vfs

    try:
        vfs.umount("/" + slot)
    except OSError:
        pass


def mount(slot):
    """Mounts slot's image at /<slot>; False when its half holds no ROMFS (erased, or a cut write)."""
    import vfs

    umount(slot)
    try:
        vfs.mount(vfs.VfsRom(_segment(slot)), "/" + slot)
        return True
    except OSError:
        return False


def _name(path):
    return path[path.rfind("/") + 1:].encode()


def _file_rec(path, n):
    k = len(_name(path))
    return _rec(len(_uint(k)) + k + _rec(n))


def _ancestors(d):
    out = []
    while d:
        out.append(d)
        i = d.rfind("/")
        d = d[:i] if i >= 0 else ""
    return out


def _dirs(entries):
    """({directory path: its record's payload}, the image's body length) for (path, length) pairs."""
    dirs = {}
    top = 0
    prev = None
    for path, n in entries:
        i = path.rfind("/")
        d = path[:i] if i >= 0 else ""
        if prev is not None and path <= prev:
            raise Refused(MALFORMED, "files not in path order: %s (a ROM slot needs them sorted)" % path)
        if path not in _META:
            prev = path
        for a in _ancestors(d):
            if a not in dirs:
                dirs[a] = 0
        if d:
            dirs[d] += _file_rec(path, n)
        else:
            top += _file_rec(path, n)
    for d in sorted(dirs, key=lambda x: -x.count("/")):  # deepest first: a directory's size is its children's
        k = len(_name(d))
        dirs[d] += len(_uint(k)) + k
        i = d.rfind("/")
        if i >= 0:
            dirs[d[:i]] += _rec(dirs[d])
        else:
            top += _rec(dirs[d])
    return dirs, top


def _head(body):
    head = _HEADER + _uint(body)
    if (len(head) + body) % 2:
        head = _HEADER + b"\x80" + _uint(body)  # even length, as mpremote's writer makes it
    return head


def slot_image_size(entries):
    """The bytes of the image of (path, length) pairs, in image order (manifest.json, manifest.sig first)."""
    _, body = _dirs(entries)
    return len(_head(body)) + body


def _pairs(files, meta):
    for m in meta:
        yield m
    for i in range(len(files)):
        e = files[i]
        yield e["path"], e["length"]


def write_slot(part, slot, files, meta, put_file):
    """Writes slot's image: `files` (manifest.Files), `meta` ((name, length) of manifest.json and .sig);
    put_file(path, entry or None, out) streams each file's bytes into out.put (checked: raises Refused).
    The header's magic goes last. Returns the image's size."""
    dirs, body = _dirs(_pairs(files, meta))
    head = _head(body)
    room = half(part)
    if len(head) + body > room:
        raise Refused(TOO_LONG, "release image %d bytes, a slot of the romfs partition holds %d" % (
            len(head) + body, room))
    umount(slot)  # its old image is erased from here
    out = _Out(part, 0 if slot == "a" else room // _BLOCK)
    out.put(head)
    cur = []  # the directories open, outermost first
    for path, n in meta:
        _file(out, path, n, put_file, None)
    for i in range(len(files)):
        e = files[i]
        path = e["path"]
        j = path.rfind("/")
        d = path[:j] if j >= 0 else ""
        while cur and not (d == cur[-1] or d.startswith(cur[-1] + "/")):
            cur.pop()
        for a in reversed(_ancestors(d)[:len(_ancestors(d)) - len(cur)]):
            k = _name(a)
            out.put(bytes((_DIR,)) + _uint(dirs[a]) + _uint(len(k)) + k)
            cur.append(a)
        _file(out, path, e["length"], put_file, e)
    out.close()
    return out.at


def _file(out, path, n, put_file, e):
    k = _name(path)
    out.put(bytes((_FILE,)) + _uint(len(_uint(len(k))) + len(k) + _rec(n)) +
            _uint(len(k)) + k + bytes((_DATA,)) + _uint(n))
    put_file(path, e, out)


def copy(src, e, out, buf):
    """Streams file `src` (a path) into out, checked against entry `e` (None: not checked)."""
    fc = FileCheck(e) if e is not None else None
    mv = memoryview(buf)
    with open(src, "rb") as f:
        while True:
            n = f.readinto(buf)
            if not n:
                break
            if fc is not None:
                fc.update(mv[:n])
            out.put(mv[:n])
    if fc is not None:
        fc.finish()


def adopt(slot, root="/"):
    """Makes slot's image from its files on the filesystem (a board provisioned over serial: the files were
    read back there), removes the files and mounts the image. False (the slot runs from its files) when it
    does not fit. The tree writer (write: mpremote's order) is the light one at boot: no manifest parsed."""
    part = partition()
    d = root.rstrip("/") + "/" + slot
    if part is None:
        return False
    room = half(part)
    if image_size(d) > room:
        return False
    umount(slot)
    write(part, d, 0 if slot == "a" else room // _BLOCK)
    _wipe(d)
    return mount(slot)


def _wipe(path):
    for ent in list(os.ilistdir(path)):
        p = path + "/" + ent[0]
        if ent[1] == 0x4000:
            _wipe(p)
        else:
            os.remove(p)
    os.rmdir(path)
