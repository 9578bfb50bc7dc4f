"""The read-back after an image flash: the board hashes its whole filesystem and reports one digest.

The board walks every file it has, hashes each with SHA-256, and sends back the file count and one
SHA-256 over the sorted (path, file hash) pairs:

    digest = SHA-256( for each path in sorted order: UTF-8 path, 0x00, SHA-256(file) )

The host computes the same over the files it put in the image (tree_digest). Equal digests say that every
file is on the board, byte for byte, and no other file is: a stronger check than one hash per file, for
70 bytes on the line instead of a manifest of every path and hash (at the REPL's 115200 baud that is
most of a second for an app). When they differ, transfer.differing() checks the files one by one and
names those that differ (a file the app made when it started is then no fault of the image).
"""

import hashlib

from .session import Session, literal

_BOARD = """import os,hashlib,binascii
def _bz_walk(d,o):
 for n in os.listdir(d):
  p=d.rstrip('/')+'/'+n
  if os.stat(p)[0]&0x4000:_bz_walk(p,o)
  else:o.append(p)
o=[];_bz_walk('/',o);o.sort()
h=hashlib.sha256();b=bytearray(1024)
for p in o:
 f=open(p,'rb');s=hashlib.sha256()
 while 1:
  n=f.readinto(b)
  if not n:break
  s.update(b[:n])
 f.close();h.update(p.encode()+b'\\0'+s.digest())
print(repr((len(o),binascii.hexlify(h.digest()).decode())))
del _bz_walk,o,h,b
"""


def tree_digest(files: dict[str, bytes]) -> tuple[int, str]:
    """(file count, digest) of a filesystem holding exactly `files` (board path -> bytes)."""
    h = hashlib.sha256()
    for path in sorted(files):
        h.update(path.encode() + b"\0" + hashlib.sha256(files[path]).digest())
    return len(files), h.hexdigest()


def board_digest(session: Session) -> tuple[int, str]:
    """(file count, digest) of the board's whole filesystem, computed on the board."""
    lines = session.exec(_BOARD).strip().splitlines()
    count, digest = literal(lines[-1])
    return count, digest
