# The self-test on the first boot of a new app slot (bysans.ota.slots.boot runs it from that slot): every
# file of the slot's signed manifest is there with its length and SHA-256, the app's modules import, and a
# release may add its own checks in bysans/checks.py (`run(board)`, raising on failure).
import binascii
import hashlib
import json


def _sha256_file(path, buf):
    h = hashlib.sha256()
    n = 0
    with open(path, "rb") as f:
        while True:
            k = f.readinto(buf)
            if not k:
                break
            h.update(memoryview(buf)[:k])
            n += k
    return n, binascii.hexlify(h.digest()).decode()


def manifest_body(slot_dir):
    with open(slot_dir.rstrip("/") + "/manifest.json") as f:  # the signed body (manifest.sig: line 2)
        return json.load(f)


def check_files(slot_dir, doc=None):
    """Raises ValueError naming the first file that is missing, of another length or another hash."""
    doc = doc or manifest_body(slot_dir)
    buf = bytearray(512)
    for e in doc["files"]:
        try:
            n, h = _sha256_file(slot_dir.rstrip("/") + "/" + e["path"], buf)
        except OSError:
            raise ValueError("missing " + e["path"])
        if n != e["length"] or h != e["sha256"]:
            raise ValueError("changed " + e["path"])
    return doc


def run(board, slot_dir):
    """Returns the release's version; raises on any failure."""
    doc = check_files(slot_dir)
    import bysans.version
    import bysans.app  # noqa: F401 - it must at least import

    for e in doc["files"]:
        if e["path"] in ("bysans/checks.mpy", "bysans/checks.py"):
            import bysans.checks

            bysans.checks.run(board)
            break
    return doc["version"]
