"""fleet release build's flash count (fleet/release/flashspace.py) against littlefs itself: littlefs-python
(littlefs v2.11, MicroPython 1.28's on-disk version) builds the filesystem with MicroPython's VfsLfs2 geometry
(provisioning/fsimage.py) and counts the blocks its tree reaches (lfs_fs_size)."""

import pytest

from fleet import boards
from fleet.release import build, flashspace
from fleet.sim import flashmap
from provisioning import fsimage


def _lfs_used(files: dict, block_count: int) -> int:
    """Blocks in use in a filesystem of `block_count` blocks holding `files`, as littlefs counts them."""
    image = fsimage.build(files, fsimage.Geometry(block_count))
    buf = bytearray(image) + bytearray(fsimage.ERASED * (block_count - len(image) // fsimage.BLOCK_SIZE))
    fs = fsimage._fs(buf, block_count)
    fs.mount()
    try:
        return fs.used_block_count
    finally:
        fs.unmount()


def _release_files(tmp_path, board) -> tuple:
    built = build.build(board, "1.0.0", tmp_path / board, counter=1)
    root = tmp_path / board / "files"
    return built, {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def test_a_built_releases_block_count_is_what_littlefs_uses_for_it(tmp_path):
    """The slot's directory is the filesystem's root here, so the count is the slot's alone."""
    built, files = _release_files(tmp_path, "virtual")
    assert len(files) == built.files and sum(map(len, files.values())) == built.bytes
    assert built.blocks == _lfs_used({"/" + p: d for p, d in files.items()}, 512)
    assert built.blocks * flashspace.BLOCK_SIZE > 2 * built.bytes  # the reason for counting blocks at all


@pytest.mark.parametrize("sizes", [
    [0, 1, 128, 129],                        # inline up to 128 bytes (inline_max), a block from 129
    [4095, 4096, 4097, 8184, 8185],          # the CTZ list: the second block starts with a pointer
    [40000, 100000, 300000],                 # long lists: ctz(i) + 1 pointers in block i
])
def test_file_blocks_match_littlefs_at_the_boundaries(sizes):
    files = {f"/d{i % 3}/sub/f{i}.bin": bytes([i]) * n for i, n in enumerate(sizes)}
    mine = flashspace.slot_blocks((p[1:], len(d)) for p, d in files.items())
    assert mine == _lfs_used(files, 256)


def test_two_slots_and_the_state_fit_every_boards_vfs_and_one_more_block_per_slot_is_refused(tmp_path):
    """What build() accepts fits twice in the board's vfs (its table's) with the reserve left: checked on
    littlefs-python's filesystem of the partition's size, the release in /a and /b."""
    for name in ("tbeam", "heltec_v3", "virtual_4mib_ota"):  # boards whose slots are littlefs files
        b = boards.load(name)
        vfs = flashmap.vfs_partition(flashmap.parse_table(flashmap.build_table(b["flash"]["partitions"])),
                                     b["flash"]["size"])
        count = vfs.size // flashspace.BLOCK_SIZE
        built, files = _release_files(tmp_path, name)
        two = {f"/{slot}/{p}": d for slot in "ab" for p, d in files.items()}
        used = _lfs_used(two, count)
        assert used == 2 * built.blocks + 2, name  # the root's pair is the reserve's
        assert 2 * built.budget_blocks + 32 <= count, name  # the 128 KiB reserve for config and state
