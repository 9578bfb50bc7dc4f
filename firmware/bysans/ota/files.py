# A release file checked on the device while it streams (bysans.ota.stream, image): its length and SHA-256.
import binascii
import hashlib

from .reasons import BAD_HASH, TOO_LONG, TOO_SHORT, Refused


class FileCheck:
    """Checks one file while it streams: refuses the first byte past the announced length (TOO_LONG),
    and at the end a short file (TOO_SHORT) or another hash (BAD_HASH).

        fc = FileCheck(entry)
        while True:
            n = src.readinto(buf)   # ask for at most fc.remaining + 1 bytes: one more shows a long file
            if not n: break
            fc.update(mv[:n]); dst.write(mv[:n])
        fc.finish()
    """

    def __init__(self, entry):
        self.path = entry["path"]
        self.length = entry["length"]
        self._want = entry["sha256"]
        self._h = hashlib.sha256()
        self.seen = 0

    @property
    def remaining(self):
        return self.length - self.seen

    def update(self, chunk):
        n = len(chunk)
        if self.seen + n > self.length:
            self.seen += n
            raise Refused(TOO_LONG, "%s: more than %d bytes" % (self.path, self.length))
        self.seen += n
        self._h.update(chunk)

    def finish(self):
        if self.seen < self.length:
            raise Refused(TOO_SHORT, "%s: %d of %d bytes" % (self.path, self.seen, self.length))
        if binascii.hexlify(self._h.digest()).decode() != self._want:
            raise Refused(BAD_HASH, self.path)
