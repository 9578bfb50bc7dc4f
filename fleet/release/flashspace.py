"""What a release takes in a board's littlefs `vfs` partition, counted as littlefs stores it.

MicroPython v1.28's `vfs.VfsLfs2` on an ESP32 (extmod/vfs_lfs.c defaults; provisioning/fsimage.py has the
whole geometry) uses 4096-byte blocks (the flash's erase sector: esp32.Partition's block size, and the only
one the ESP32 port mounts) with a 128-byte cache. littlefs (lfs2.c, lfs_init) keeps a file inline in its
directory's metadata only up to inline_max = min(cache_size, attr_max, block_size / 8) = 128 bytes; every
bigger file takes whole blocks of its own (a CTZ skip-list: block i > 0 begins with ctz(i) + 1 four-byte
pointers), and every directory a metadata pair (two blocks). So a slot of 85 files of 1.7 KiB on average
takes about 100 blocks (400 KiB), not the 150 KiB its bytes add up to.

A board's `app_budget` (bytes, docs/boards.md) is half of its `vfs` partition less a reserve for config and
state: one slot of the two. It is compared here with the blocks a slot takes, times the block size.
"""

BLOCK_SIZE = 4096
CACHE_SIZE = 128                                   # VfsLfs2: min(block, 4 * max(readsize 32, progsize 32))
INLINE_MAX = min(CACHE_SIZE, 1022, BLOCK_SIZE // 8)  # lfs2.c lfs_init; attr_max 1022 (MicroPython's build)
PAIR = 2                                           # blocks of a directory's metadata pair
RESERVE = 128 * 1024  # of the vfs, beside the app slots: config, OTA and LoRaWAN state, the root directory


def _ctz(n: int) -> int:
    return (n & -n).bit_length() - 1


def file_blocks(length: int, block_size: int = BLOCK_SIZE) -> int:
    """Blocks littlefs gives a file of `length` bytes: 0 when it stays inline, else its CTZ list's length."""
    if length <= INLINE_MAX:
        return 0
    n, capacity = 1, block_size
    while capacity < length:
        capacity += block_size - 4 * (_ctz(n) + 1)
        n += 1
    return n


def slot_blocks(paths_lengths, block_size: int = BLOCK_SIZE) -> int:
    """Blocks one app slot takes: a metadata pair for the slot's directory and each directory in it, and each
    file's blocks. `paths_lengths`: (release path, length) pairs, paths relative to the slot."""
    dirs = {""}
    total = 0
    for path, length in paths_lengths:
        parts = path.split("/")[:-1]
        for i in range(1, len(parts) + 1):
            dirs.add("/".join(parts[:i]))
        total += file_blocks(length, block_size)
    return total + PAIR * len(dirs)


def slot_budget_blocks(app_budget: int, block_size: int = BLOCK_SIZE) -> int:
    """The blocks one slot may take on a board whose `app_budget` is `app_budget` bytes."""
    return app_budget // block_size


# ----- a board whose app slots are ROMFS images (board file "app_store": "romfs") -----------------------------
# Its slots are images in the halves of the table's `romfs` partition (firmware bysans/ota/romfs.py), so a
# release takes the bytes of its image, not littlefs blocks: app_budget is one half. The image holds the signed
# manifest too (manifest.json and manifest.sig, first), so META_ROOM is kept for it beside the files.

META_ROOM = 4096  # manifest.sig and what signing adds to manifest.json: a few signatures and kommuner


def _uint(v: int) -> bytes:
    out = [v & 0x7F]
    v >>= 7
    while v:
        out.insert(0, 0x80 | (v & 0x7F))
        v >>= 7
    return bytes(out)


def _rec(n: int) -> int:
    return 1 + len(_uint(n)) + n


def rom_image(files) -> bytes:
    """The ROMFS image bysans.ota.romfs writes for (path, bytes) pairs in image order (manifest.json,
    manifest.sig, then the release's files sorted by path), byte for byte."""
    files = list(files)
    dirs: dict[str, int] = {}
    top = 0

    def name(p):
        return p.rsplit("/", 1)[-1].encode()

    def file_rec(p, n):
        k = name(p)
        return _rec(len(_uint(len(k))) + len(k) + _rec(n))

    for p, data in files:
        d = p.rsplit("/", 1)[0] if "/" in p else ""
        a = d
        while a:
            dirs.setdefault(a, 0)
            a = a.rsplit("/", 1)[0] if "/" in a else ""
        if d:
            dirs[d] += file_rec(p, len(data))
        else:
            top += file_rec(p, len(data))
    for d in sorted(dirs, key=lambda x: -x.count("/")):
        k = name(d)
        dirs[d] += len(_uint(len(k))) + len(k)
        if "/" in d:
            dirs[d.rsplit("/", 1)[0]] += _rec(dirs[d])
        else:
            top += _rec(dirs[d])
    head = b"\xd2\xcd\x31" + _uint(top)
    if (len(head) + top) % 2:
        head = b"\xd2\xcd\x31\x80" + _uint(top)
    out = bytearray(head)
    cur: list[str] = []
    for p, data in files:
        d = p.rsplit("/", 1)[0] if "/" in p else ""
        while cur and not (d == cur[-1] or d.startswith(cur[-1] + "/")):
            cur.pop()
        chain = [] if not d else ["/".join(d.split("/")[:i]) for i in range(1, d.count("/") + 2)]
        for a in chain[len(cur):]:
            k = name(a)
            out += bytes([4]) + _uint(dirs[a]) + _uint(len(k)) + k
            cur.append(a)
        k = name(p)
        out += bytes([5]) + _uint(len(_uint(len(k))) + len(k) + _rec(len(data))) + _uint(len(k)) + k
        out += bytes([2]) + _uint(len(data)) + data
    assert len(out) == len(head) + top
    return bytes(out)


def rom_image_bytes(paths_lengths, manifest_bytes: int) -> int:
    """The bytes of a release's ROM slot image: its files ((path, length) pairs) and its signed manifest
    (manifest_bytes, with META_ROOM for what signing adds)."""
    pairs = [("manifest.json", b"\0" * manifest_bytes), ("manifest.sig", b"\0" * META_ROOM)]
    pairs += [(p, b"\0" * n) for p, n in sorted(paths_lengths)]
    return len(rom_image(pairs))
