"""The image route's read-back (provisioning/readback.py): the board's own digest of its whole filesystem
(MicroPython's hashlib, on the board) equals the host's over the same files, and any changed, missing or
extra file changes it."""

from provisioning.readback import board_digest, tree_digest
from provisioning.session import Session

FILES = {"/a.txt": b"alpha\n", "/lib/b.bin": bytes(range(256)) * 9, "/lib/deep/c.py": "print('Æ')\n".encode()}


def _write(s, path, data):
    d = path.rsplit("/", 1)[0]
    s.exec(f"import os\nfor p in {[d[:i] for i in range(1, len(d) + 1) if d[i:i + 1] in ('/', '')]!r}:\n"
           f" try:\n  os.mkdir(p)\n except OSError:\n  pass\n")
    s.exec(f"f=open({path!r},'wb');f.write({data!r});f.close()")


def test_the_boards_digest_is_the_hosts_and_names_any_difference(vboard):
    vboard.wait_prompt()
    with Session(vboard.port) as s:
        count, _ = board_digest(s)
        assert count == 0, "a fresh virtual board has an empty filesystem"
        for p, d in FILES.items():
            _write(s, p, d)
        assert board_digest(s) == tree_digest(FILES)
        _write(s, "/lib/b.bin", FILES["/lib/b.bin"][:-1] + b"\0")  # one byte changed
        assert board_digest(s) != tree_digest(FILES)
        _write(s, "/lib/b.bin", FILES["/lib/b.bin"])
        _write(s, "/extra.txt", b"")  # a file the image did not hold
        assert board_digest(s) == tree_digest({**FILES, "/extra.txt": b""}) != tree_digest(FILES)
