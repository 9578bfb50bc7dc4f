# A release manifest on the device: its format (read_release; the signature and what it says are checked by
# verify.check_release), its list of files packed as it is read (Files: a manifest of ~60 files would be ~60
# dicts and ~180 strings otherwise, ~16 KiB on the 64-bit unix port), and which files need to travel.
import binascii

from .reasons import RELEASE_TYPE, _is_int, _is_str_list, _need
from .signed import read

try:
    from micropython import const
except ImportError:  # CPython
    def const(x):
        return x

_N = const(4)  # entries to a chunk
_LENS = const(128)  # where a chunk's lengths start: after its 4 SHA-256s
_PATHS = const(144)  # where its paths start: after 4 lengths


def _safe_path(path):
    if type(path) is not str or not path or len(path) > 128:
        return False
    if path[0] == "/" or "\\" in path or "\x00" in path:
        return False
    for part in path.split("/"):
        if part in ("", ".", ".."):
            return False
    return True


def _raw(sha256):
    """The 32 bytes of a SHA-256 written as 64 lowercase hex digits, or None for any other text."""
    try:
        raw = binascii.unhexlify(sha256)
    except ValueError:
        return None
    return raw if len(raw) == 32 and binascii.hexlify(raw) == sha256.encode() else None


def _entry(e):
    """(path, length, sha256 text) of one entry of a manifest's "files"; Refused(MALFORMED) for a bad one."""
    _need(type(e) is dict, "bad file entry")
    path = e.get("path")
    _need(_safe_path(path), "unsafe or missing file path")
    length = e.get("length")
    _need(_is_int(length) and length >= 0, "bad file length")
    h = e.get("sha256")
    _need(type(h) is str and len(h) == 64, "bad file sha256")
    return path, length, h


class Entries:
    """The `files` of a release manifest read only to be verified (a check-in that finds the release it
    runs): each entry is checked as Files checks it, counted and dropped, so the list never takes heap. A
    path that appears twice is found when the files are kept (Files: read again for an install)."""

    def __init__(self):
        self.start()

    def start(self):
        self.n = 0

    def add(self, e):
        _entry(e)
        self.n += 1

    def __len__(self):
        return self.n


class Files(Entries):
    """The `files` of a release manifest, filled by signed.read (add() takes each entry as it is read, and
    the entry is dropped), packed _N entries to a bytearray: their SHA-256s (32 bytes each), their lengths
    (4 bytes each, little-endian), then their paths (UTF-8, each after a NUL: a safe path has none). About
    75 bytes a file, and no block of more than about 300 bytes to find in a fragmented heap. Entries are
    made on demand as {"path", "length", "sha256"} dicts:

        for e in files: ...      files[i]      len(files)      path in files      files.find(sha256) -> i or -1
    """

    def start(self):
        self.n = 0
        self._chunks = []
        self._end = 0  # where the next path goes in the last chunk
        self._odd = {}  # index -> a sha256 that is not 64 lowercase hex digits: it never matches, kept as is
        self._big = {}  # index -> a length of 2**32 or more

    def add(self, e):
        """One entry of the manifest's list; Refused(MALFORMED) for a bad one."""
        path, length, h = _entry(e)
        _need(path not in self, "a path appears twice")
        n = self.n
        j = n % _N
        if not j:  # room for paths of 24 bytes on average; zeros after the last path are never matched
            self._chunks.append(bytearray(_PATHS + 1 + _N * 24))
            self._end = _PATHS + 1  # after the NUL before the first path
        c = self._chunks[-1]
        pb = path.encode()
        end = self._end + len(pb) + 1
        if end > len(c):
            c.extend(bytes(end - len(c)))
        raw = _raw(h)
        if raw is None:
            self._odd[n] = h
        else:
            c[32 * j:32 * j + 32] = raw
        if length >> 32:
            self._big[n] = length
        else:
            c[_LENS + 4 * j:_LENS + 4 * j + 4] = length.to_bytes(4, "little")
        c[self._end:end - 1] = pb  # then a NUL: c[end - 1] is still 0
        self._end = end
        self.n = n + 1

    def __contains__(self, path):
        pb = b"\x00" + path.encode() + b"\x00"
        for c in self._chunks:
            if c.find(pb, _PATHS) >= 0:
                return True
        return False

    def __getitem__(self, i):
        if i < 0:
            i += self.n
        if not 0 <= i < self.n:
            raise IndexError(i)
        c = self._chunks[i // _N]
        j = i % _N
        a = _PATHS
        for _ in range(j):
            a = c.find(b"\x00", a + 1)
        n = self._big[i] if i in self._big else int.from_bytes(c[_LENS + 4 * j:_LENS + 4 * j + 4], "little")
        h = self._odd[i] if i in self._odd else binascii.hexlify(c[32 * j:32 * j + 32]).decode()
        return {"path": str(memoryview(c)[a + 1:c.find(b"\x00", a + 1)], "utf-8"), "length": n, "sha256": h}

    def __iter__(self):
        for i in range(self.n):
            yield self[i]

    def find(self, sha256):
        """The index of an entry with this SHA-256 (hex text), or -1."""
        for i in self._odd:
            if self._odd[i] == sha256:
                return i
        raw = _raw(sha256)
        for k in range(len(self._chunks) if raw is not None else 0):
            p = -1
            while True:
                p = self._chunks[k].find(raw, p + 1, _LENS)
                i = _N * k + (p >> 5)
                if p < 0 or i >= self.n:
                    break
                if not p & 31 and i not in self._odd:
                    return i
        return -1


def _release_doc(doc):
    _need(doc.get("_type") == RELEASE_TYPE, "not a release manifest")
    _need(type(doc.get("version")) is str, "bad version")
    _need(_is_int(doc.get("counter")) and doc["counter"] >= 0, "bad counter")
    _need(_is_int(doc.get("expires")), "bad expires")
    _need(_is_str_list(doc.get("boards")), "bad boards")
    _need(_is_str_list(doc.get("kommuner")), "bad kommuner")
    _need(isinstance(doc.get("files"), Entries), "bad files")  # each entry was checked as it was read


def read_release(src, buf=None, sigs=None, keep=True):
    """(manifest dict, signatures, SHA-256 of the body) of a release manifest, its format checked and
    nothing else: signed.read's arguments. The manifest's "files" is a manifest.Files, or when not `keep`
    an Entries (each checked, none kept: to verify a manifest whose files are not needed)."""
    doc, sigs, digest = read(src, {"files": Files() if keep else Entries()}, buf, sigs)
    _release_doc(doc)
    return doc, sigs, digest


def changed_files(new, old=None):
    """The entries of manifest `new` whose content (SHA-256) the installed manifest `old` lacks: only
    these need to travel."""
    out = []
    for f in new["files"]:
        if old is None or _find(old["files"], f["sha256"]) < 0:
            out.append(f)
    return out


def _find(files, sha256):
    if type(files) is Files:
        return files.find(sha256)
    for i, f in enumerate(files):  # a list of entries
        if f["sha256"] == sha256:
            return i
    return -1
