"""The binary channel to a board's running program: raw bytes through its stdin, in acknowledged blocks.

Once a program runs on the board (started by the raw REPL), its stdin is the serial line. The host sends
BLOCK-byte blocks; the board answers ACK for each block it has taken out of its input buffer, and the host
keeps at most WINDOW unacknowledged blocks on the line (an ESP32's stdin ring buffer holds 260 bytes), so
nothing is lost when the board is busy writing flash.

A few byte values must never cross the line as themselves (ESCAPED): Ctrl-A..Ctrl-D would steer the raw
REPL if the board's program ended early (Ctrl-D runs what it has, Ctrl-B leaves raw mode), Ctrl-C raises
KeyboardInterrupt on a board (and makes a terminal flush its input), Ctrl-Z and Ctrl-\\ stop or kill a
program behind a terminal that has ISIG (the virtual board's). Each is sent as ESC, value ^ 0x40; on
compressed data that costs about 3 % (8 values in 256).

    block   = BLOCK encoded bytes (the last one shorter); an ESC pair may straddle two blocks
    answer  = ACK per block; anything else means the program on the board stopped (its output follows)
    abort   = a block holding ABORT (ESC NUL, which escape() never sends): the program on the board stops
              (KeyboardInterrupt) and its raw REPL waits again -- what the host sends when it is interrupted,
              as a raw Ctrl-C would not reach a program reading stdin on every board (the virtual board's
              raw REPL takes it as data)
"""

ESC = 0x10
ESCAPED = frozenset((0x01, 0x02, 0x03, 0x04, ESC, 0x1A, 0x1C, 0x05))
BLOCK = 128
WINDOW = 2
ACK = b"\x06"
ABORT = bytes((ESC, 0))

_TABLE = [bytes((ESC, b ^ 0x40)) if b in ESCAPED else bytes((b,)) for b in range(256)]


def escape(data: bytes) -> bytes:
    """The bytes as they go on the line."""
    if not any(b in data for b in _ESCAPED_BYTES):
        return bytes(data)
    return b"".join(_TABLE[b] for b in data)


_ESCAPED_BYTES = [bytes((b,)) for b in ESCAPED]


def unescape(data: bytes) -> bytes:
    """The inverse of escape() (the board does the same in BOARD_CODE); for tests."""
    out, it = bytearray(), iter(data)
    for b in it:
        out.append(next(it) ^ 0x40 if b == ESC else b)
    return bytes(out)


# Runs on the board, defined once per session. `_bz_m(L)` reads a manifest of L encoded bytes (deflated:
# per file a line "size hexdigest path", or "- - path" for a file to remove), removes leftover .tmp files and prints the indices of the files
# that differ; `_bz_w(L, idx)` reads L encoded bytes (one deflate stream: the files idx of the manifest, one
# after the other), writes each to PATH.tmp, reads it back from flash, and renames it over PATH only when
# its SHA-256 is the manifest's, else removes it; at the end it prints the indices of the files that failed.
# Nothing is printed while blocks flow (the host reads ACKs then).
# Kept small: every byte of it crosses the line once per session.
BOARD_CODE = r"""
import sys,os,io,hashlib,binascii
try:
 import deflate as _bzd
except ImportError:
 _bzd=None
_bzi=sys.stdin.buffer
_bzo=sys.stdout
class _BzS(io.IOBase):
 def __init__(s,n):
  s.n=n;s.b=bytearray(%(BLOCK)d);s.c=0;s.p=b''
 def readinto(s,b):
  while not s.p:
   if s.n<=0:return 0
   k=min(%(BLOCK)d,s.n);m=memoryview(s.b)[:k];_bzi.readinto(m);s.n-=k;_bzo.write('\x06')
   d=bytes(m)
   if b'\x10\x00' in d:raise KeyboardInterrupt
   d=d.split(b'\x10')
   if s.c and d[0]:d[0]=bytes((d[0][0]^64,))+d[0][1:]
   s.c=0;o=[d[0]]
   for x in d[1:]:
    if x:o.append(bytes((x[0]^64,)));o.append(x[1:])
    else:s.c=1
   s.p=b''.join(o)
  k=min(len(b),len(s.p));b[:k]=s.p[:k];s.p=s.p[k:];return k
 def end(s):
  while s.n>0:
   k=min(%(BLOCK)d,s.n);_bzi.readinto(memoryview(s.b)[:k]);s.n-=k;_bzo.write('\x06')
def _bzr(z):
 return z if _bzd is None else _bzd.DeflateIO(z,_bzd.RAW,%(WBITS)d)
def _bzh(p):
 h=hashlib.sha256();b=bytearray(512)
 try:
  f=open(p,'rb')
 except OSError:
  return None
 while True:
  k=f.readinto(b)
  if not k:break
  h.update(memoryview(b)[:k])
 f.close();return h.digest()
def _bzmk(p):
 q=''
 for x in p.split('/')[1:-1]:
  q+='/'+x
  try:os.mkdir(q)
  except OSError:pass
def _bz_m(L,a=0):
 global _bzf
 s=_BzS(L);z=_bzr(s);t=b''
 while True:
  x=z.read(256)
  if not x:break
  t+=x
 s.end()
 _bzf=[l.split(b' ',2) for l in t.split(b'\n') if l]
 r=[]
 for i,(n,h,p) in enumerate(_bzf):
  p=p.decode()
  if n==b'-':
   try:os.remove(p)
   except OSError:pass
   continue
  try:os.remove(p+'.tmp')
  except OSError:pass
  if a or _bzh(p)!=binascii.unhexlify(h):r.append(i)
 print(r)
def _bz_w(L,idx):
 s=_BzS(L);z=_bzr(s);b=bytearray(512);mv=memoryview(b);r=[]
 for i in idx:
  n,h,p=_bzf[i];n=int(n);p=p.decode();t=p+'.tmp';_bzmk(p)
  f=open(t,'wb')
  while n:
   k=z.readinto(mv[:min(512,n)])
   if not k:break
   f.write(mv[:k]);n-=k
  f.close()
  d=_bzh(t)
  if n==0 and d==binascii.unhexlify(h):
   os.rename(t,p)
  else:
   os.remove(t);r.append(i)
 s.end();print(r)
"""

WBITS = 12  # a 4 KiB window: the board needs that much RAM to inflate; bigger gains < 1 % on .mpy files


def abort_block(remaining: int) -> bytes:
    """The block that stops the program on the board when `remaining` encoded bytes were still due (it reads
    min(BLOCK, remaining) bytes next); empty when nothing is due."""
    k = min(BLOCK, remaining)
    return (ABORT + bytes(max(k - len(ABORT), 0)))[:k] if k > 0 else b""


def board_code() -> str:
    return BOARD_CODE % {"BLOCK": BLOCK, "WBITS": WBITS}
