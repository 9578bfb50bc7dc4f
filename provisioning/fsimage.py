"""A board's whole filesystem built on the host: the littlefs image that `fleet flash` writes at the `vfs`
partition's offset through the ROM loader (provisioning/romflash.py).

    template = Template(shared_files, Geometry.of_partition(vfs_size))   # once per release and board
    image = template.image(device_files)                                 # per device: only its own files

The geometry is MicroPython v1.28's `vfs.VfsLfs2(bdev)` with its defaults (extmod/vfs_lfs.c, vfs_lfsx.c):
block size 4096 (the flash sector, what esp32.Partition reports), block count = partition size / 4096,
read and prog size 32, lookahead 32 bytes, cache min(block, 4 * max(read, prog)) = 128, block_cycles 100,
and the littlefs limits MicroPython builds with (lib/littlefs/lfs2.h: name_max 255, file_max 2**31 - 1,
attr_max 1022). littlefs-python 0.19 is littlefs v2.11 with on-disk version 2.1, as MicroPython 1.28's.

Only the blocks in use are written: the image is built on a few blocks and then grown (lfs_fs_grow) to the
partition's block count, so its superblock names the whole partition while every block it uses sits at the
start. The blocks after it keep whatever they held: littlefs counts only blocks its tree reaches as used,
and erases a block before it writes it.

Everything stays in memory (the device's keys among the files): nothing is written to disk here.
"""

from dataclasses import dataclass

from fleet.errors import FilesystemTooBig

BLOCK_SIZE = 4096
READ_SIZE = PROG_SIZE = 32          # VfsLfs2's readsize / progsize defaults
LOOKAHEAD = 32                      # VfsLfs2's lookahead default (bytes)
CACHE_SIZE = min(BLOCK_SIZE, 4 * max(READ_SIZE, PROG_SIZE))
BLOCK_CYCLES = 100
NAME_MAX, FILE_MAX, ATTR_MAX = 255, 2147483647, 1022
ERASED = b"\xff" * BLOCK_SIZE
INLINE_MAX = min(CACHE_SIZE, ATTR_MAX, BLOCK_SIZE // 8)  # lfs2.c lfs_init's default: files this small stay inline


TooBig = FilesystemTooBig  # the files do not fit the board's `vfs` partition: raised before any byte is written
@dataclass(frozen=True)
class Geometry:
    block_count: int
    block_size: int = BLOCK_SIZE

    @classmethod
    def of_partition(cls, size: int) -> "Geometry":
        return cls(size // BLOCK_SIZE)

    @property
    def size(self) -> int:
        return self.block_count * self.block_size


def _fs(buffer: bytearray, block_count: int):
    from littlefs import LittleFS, UserContext

    return LittleFS(context=UserContext(buffer=buffer), mount=False, block_size=BLOCK_SIZE,
                    block_count=block_count, read_size=READ_SIZE, prog_size=PROG_SIZE,
                    lookahead_size=LOOKAHEAD, cache_size=CACHE_SIZE, block_cycles=BLOCK_CYCLES,
                    name_max=NAME_MAX, file_max=FILE_MAX, attr_max=ATTR_MAX)


def _estimate(files: dict[str, bytes]) -> int:
    """Blocks the files take, tightly: a metadata pair per directory (and the root's), no block for a file
    littlefs keeps inline in its directory (up to INLINE_MAX bytes), else its data blocks (less the CTZ
    pointers). Built on just enough blocks, littlefs's allocator wraps around and reuses the blocks it
    freed, so the image spans few blocks: the ROM erases, and the line carries, only those (the virtual
    board's app: 82 blocks where twice the room left a span of 163). A build that runs out of room is
    tried again a block or two bigger (_grow_and_write)."""
    dirs = {p.rsplit("/", 1)[0] for p in files}
    return 2 + 2 * len(dirs) + sum(0 if len(d) <= INLINE_MAX else -(-len(d) // (BLOCK_SIZE - 8))
                                   for d in files.values())


def _write(fs, files: dict[str, bytes]):
    for path, data in files.items():
        d = path.rsplit("/", 1)[0]
        if d:
            fs.makedirs(d, exist_ok=True)
        with fs.open(path, "wb") as f:
            f.write(data)


def _too_big(files: dict[str, bytes], geometry: Geometry, shared: int = 0) -> TooBig:
    total = shared + sum(len(d) for d in files.values())
    return TooBig(f"the app and config ({total} bytes in files) do not fit the board's vfs partition "
                  f"({geometry.size} bytes, {geometry.block_count} blocks of {geometry.block_size}); "
                  f"nothing was written")


def _grow_and_write(buf: bytearray, mounted_count: int, files: dict[str, bytes], geometry: Geometry,
                    *, shared_bytes: int = 0, fresh: bool) -> tuple[bytearray, int]:
    """Writes `files` into the littlefs in `buf` (made here when `fresh`), growing it as needed up to the
    partition's block count; returns (buffer, block count the filesystem spans now)."""
    from littlefs import LittleFSError

    want = min(geometry.block_count, mounted_count + _estimate(files))
    while True:
        work = bytearray(buf) + bytearray(ERASED * (want - len(buf) // BLOCK_SIZE))
        fs = _fs(work, want if fresh else mounted_count)
        try:
            if fresh:
                fs.format()
                fs.mount()
            else:
                fs.mount()
                if want > mounted_count:
                    fs.fs_grow(want)
            _write(fs, files)
            fs.unmount()
            return work, want
        except LittleFSError as e:
            if e.code != LittleFSError.Error.LFS_ERR_NOSPC:
                raise
            if want >= geometry.block_count:
                raise _too_big(files, geometry, shared_bytes) from None
            want = min(geometry.block_count, want + max(1, want // 32))  # a tight fit: fewer blocks to erase


def _finish(buf: bytearray, count: int, geometry: Geometry) -> bytes:
    """The filesystem grown to the whole partition, without its erased tail."""
    if count < geometry.block_count:
        fs = _fs(buf, count)
        fs.mount()
        fs.fs_grow(geometry.block_count)
        fs.unmount()
    used = max((i for i in range(len(buf) // BLOCK_SIZE) if buf[i * BLOCK_SIZE:(i + 1) * BLOCK_SIZE] != ERASED),
               default=0) + 1
    return bytes(buf[:used * BLOCK_SIZE])


class Template:
    """The shared part of a filesystem (the release's app and board file), built once; image() adds one
    device's own files to a copy."""

    def __init__(self, files: dict[str, bytes], geometry: Geometry):
        self.geometry = geometry
        self.shared_bytes = sum(len(d) for d in files.values())
        if self.shared_bytes > geometry.size:
            raise _too_big(files, geometry)
        self._buf, self._count = _grow_and_write(bytearray(), 0, files, geometry, fresh=True)

    def image(self, device_files: dict[str, bytes] | None = None) -> bytes:
        """The whole filesystem: the template's files plus `device_files` (which replace a shared file of the
        same path), as bytes from the partition's first block on."""
        if not device_files:
            return _finish(bytearray(self._buf), self._count, self.geometry)
        if self.shared_bytes + sum(len(d) for d in device_files.values()) > self.geometry.size:
            raise _too_big(device_files, self.geometry, self.shared_bytes)
        buf, count = _grow_and_write(self._buf, self._count, device_files, self.geometry,
                                     shared_bytes=self.shared_bytes, fresh=False)
        return _finish(buf, count, self.geometry)


def build(files: dict[str, bytes], geometry: Geometry) -> bytes:
    """A filesystem holding exactly `files` (board path -> bytes)."""
    return Template(files, geometry).image()


def read(image: bytes, geometry: Geometry) -> dict[str, bytes]:
    """Every file in an image (as build() makes it): board path -> bytes."""
    buf = bytearray(image) + bytearray(ERASED * (geometry.block_count - len(image) // BLOCK_SIZE))
    fs = _fs(buf, geometry.block_count)
    fs.mount()
    out = {}
    for top, _dirs, names in fs.walk("/"):
        for n in names:
            p = (top.rstrip("/") + "/" + n)
            with fs.open(p, "rb") as f:
                out[p] = f.read()
    fs.unmount()
    return out
