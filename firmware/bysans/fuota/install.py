# Installing the release a FUOTA session carried (docs/formats/fuota.md, "Update payload"): the rebuilt
# block (bysans.fuota.frag.block_path) is an update payload (bysans.fuota.payload_spec). It goes through the
# OTA client's own poll() (bysans.ota.client.Client): the same verification (root, Ed25519 chain, expiry,
# board, kommune, counter: verify.check_release), the same refusals recorded in ota/client.json, the same
# inactive slot, files checked as they stream, the same one-pointer switch, and the first boot's self-test
# and rollback. Only where the bytes come from differs: the manifest and the objects are read from the
# block in flash, through the client's 512-byte buffer, never whole in RAM; there is no check-in and no
# repository (the node keeps the root it trusts; a root rotation reaches it over HTTP or at a service visit).
#
#   from bysans.fuota import install
#   install.install(frag.block_path(store), board)   # verifies, writes the slot, switches, resets
import binascii
import gc
import os
import struct

from bysans.ota import client as _client
from bysans.ota.reasons import BAD_HASH, MALFORMED, TOO_LONG, TOO_SHORT, Refused

from . import payload_spec as ps

_ENTRY = "<32sII"  # the index kept per object: SHA-256, offset of its zlib stream, its length
_ENTRY_SIZE = 40
_PER_CHUNK = 8


def _bad(detail):
    return Refused(MALFORMED, detail)


class BlockClient(_client.Client):
    """The OTA client with a payload in flash for its source (see the module's comment)."""

    def __init__(self, block_path, board=None, root="/", config=None):
        if config is None:  # a LoRaWAN-only node's config names no server: the client needs no URL here
            import json

            from bysans.device_spec import OTA_CONFIG

            with open(root.rstrip("/") + OTA_CONFIG) as f:
                config = json.loads(f.read())
        if not config.get("server") and not config.get("repo"):
            config["repo"] = "-"  # never asked: nothing here goes to a network
        _client.Client.__init__(self, board, root, config)
        self.block = block_path
        self._index = None
        self._kind = self._mlen = 0
        self._counter = 0  # the payload's release counter, once its manifest was read (the update report)

    # ---- what to take: the payload, once it is whole and parses --------------------------------------
    # poll() asks the route with `self._net_up(); take = self._checkin()`: here the first checks the block
    # (there is no network to bring up) and the second names it (there is no server to ask).

    def _net_up(self):
        if self._index is None:
            self._check_block()

    def _checkin(self, quiet=False):
        return "fuota"  # also the check-ins poll() sends after the switch: no server, the outcome stays
        #                 in ota/client.json

    def _check_block(self):
        """Checks the payload's CRC-32 over all its bytes, then its layout, and indexes its objects
        (40 bytes each). Refused(MALFORMED) with the reason otherwise: nothing else is read before."""
        try:
            size = os.stat(self.block)[6]
        except (OSError, TypeError):
            raise Refused(TOO_SHORT, "no rebuilt FUOTA block")
        if size < ps.HEADER_SIZE + ps.CRC_SIZE:
            raise _bad("FUOTA payload of %d bytes is too short" % size)
        mv = self._mv
        crc = 0
        with open(self.block, "rb") as f:
            left = size - ps.CRC_SIZE
            while left:
                n = f.readinto(mv[:left if left < _client.CHUNK else _client.CHUNK])
                if not n:
                    raise _bad("FUOTA payload ended early")
                crc = binascii.crc32(mv[:n], crc)
                left -= n
            if f.readinto(mv[:4]) != 4 or struct.unpack("<I", mv[:4])[0] != crc & 0xFFFFFFFF:
                raise _bad("FUOTA payload fails its CRC-32 (damaged in transit)")
            f.seek(0)
            f.readinto(mv[:ps.HEADER_SIZE])
            try:
                self._kind, n, self._mlen = ps.unpack_header(bytes(mv[:ps.HEADER_SIZE]))
            except ValueError as e:
                raise _bad(str(e.args[0]) if e.args else "not a FUOTA payload")
            if self._mlen > _client.MAX_MANIFEST_BYTES:
                raise Refused(TOO_LONG, "payload manifest of %d bytes" % self._mlen)
            # 40 bytes an object, _PER_CHUNK objects to a bytearray: no block of more than 320 bytes to find in
            # a fragmented heap (a whole release's 85 objects in one block did not fit a TTGO's, 44K free)
            index = [bytearray(_ENTRY_SIZE * min(_PER_CHUNK, n - k)) for k in range(0, n, _PER_CHUNK)]
            pos = ps.HEADER_SIZE + self._mlen
            for i in range(n):
                f.seek(pos)
                if pos + ps.OBJECT_SIZE > size - ps.CRC_SIZE or f.readinto(mv[:ps.OBJECT_SIZE]) != ps.OBJECT_SIZE:
                    raise _bad("FUOTA payload ends inside object %d of %d" % (i + 1, n))
                digest, clen = ps.unpack_object(bytes(mv[:ps.OBJECT_SIZE]))
                pos += ps.OBJECT_SIZE
                struct.pack_into(_ENTRY, index[i // _PER_CHUNK], (i % _PER_CHUNK) * _ENTRY_SIZE, digest, pos, clen)
                pos += clen
            if pos != size - ps.CRC_SIZE:
                raise _bad("FUOTA payload: its parts add up to %d bytes, not %d" % (pos + ps.CRC_SIZE, size))
        self._index = index

    def _find(self, sha_hex):
        """(offset, length) of the object whose file has this SHA-256, or None."""
        want = binascii.unhexlify(sha_hex)
        for idx in self._index:
            for i in range(0, len(idx), _ENTRY_SIZE):
                if idx[i:i + 32] == want:
                    return struct.unpack_from("<II", idx, i + 32)
        return None

    # ---- the manifest: the signed file, or a delta against the running release ------------------------

    def _fetch_release(self, path, slot, cur_digest):
        base = self.ota + "/new"
        with open(self.block, "rb") as f:
            f.seek(ps.HEADER_SIZE)
            if self._kind == ps.KIND_DELTA:
                if cur_digest is None:
                    raise _bad("the payload's manifest is a delta, and this board runs no release")
                from bysans.ota.delta import apply
                from bysans.ota import slots

                with open(base + ".json", "wb") as fb, open(base + ".sig", "wb") as fs:
                    apply(f, self._mlen, slots.slot_dir(slot, self.root) + "/manifest.json",
                          binascii.unhexlify(cur_digest), fb, fs, self._buf, _client.MAX_MANIFEST_BYTES,
                          lambda done, length, err: _bad("payload manifest ends early"))
            else:
                self._split_signed(f, self._mlen, net=False)
        r = self._read_new(False)  # its files are read again, kept, for the install (Client._files_of)
        self._counter = r[0]["counter"]
        return r

    def _record(self, state, reason=None, detail="", target=None, fails=None, delay_s=None):
        # Each outcome also becomes an update report for the next wakes (bysans.update_report): a LoRaWAN-only
        # node has no check-in to carry it. "installed" is noted before the switch; best effort, never in the
        # way of the update.
        last = _client.Client._record(self, state, reason, detail, target, fails, delay_s)
        if state in ("installed", "confirmed", "failed", "rolled_back"):
            try:
                from bysans import update_report

                update_report.note(state, reason, self._counter, target, self.root)
            except (ImportError, MemoryError, OSError):
                pass
        return last

    def _fetch_new(self, path, limit, missing_ok=False):
        # Asked only for the next root step: a LoRaWAN-only node has no repository; it keeps its root.
        if missing_ok:
            return False
        raise _bad("%s is not in a FUOTA payload" % path)

    # ---- the objects -----------------------------------------------------------------------------------

    def _download(self, e, dst):
        where = self._find(e["sha256"])
        if where is None:
            raise Refused(TOO_SHORT, "%s: neither in the payload nor on the board" % e["path"])
        f = open(self.block, "rb")
        try:
            f.seek(where[0])
            try:
                self._stream(lambda: self._inflater(f), e, dst)
            except OSError as err:
                if (err.args[0] if err.args else 0) in (22, 5, 84):  # not a deflate stream: a forged payload
                    raise Refused(BAD_HASH, "%s: not a valid compressed object" % e["path"])
                raise  # the flash: recorded as FLASH
        finally:
            f.close()
            self._take_reserve()


def install(block_path, board=None, root="/", config=None, reboot=True):
    """Verifies and installs the update payload at `block_path` (the rebuilt FUOTA block) into the inactive
    slot and switches to it; resets the board when `reboot` (the first boot self-tests and confirms, or
    rolls back). Returns the outcome as the OTA client records it in ota/client.json: {"state":
    "installed" | "confirmed" (it runs that release) | "failed" (refused: "reason" is the code's name,
    "detail" why) | "rolled_back" | "error", ...}. A refused payload changes nothing but that record."""
    return BlockClient(block_path, board, root, config).poll(reboot)
