# The base MicroPython image through esp32.Partition OTA slots (boards whose partition table has ota_0 and
# ota_1), with the same boot-state logic as app slots: stream the image into the next OTA partition with its
# length and SHA-256 checked, switch with one pointer write (set_boot writes the otadata sector), reset; the
# first boot of the new image must confirm (mark_app_valid_cancel_rollback), or the bootloader (with
# CONFIG_BOOTLOADER_APP_ROLLBACK_ENABLE) returns to the previous image by itself.
#
# The bare unix port has no esp32 module: SimPartition SIMULATES the partitions and the bootloader's otadata
# with files (/fw/ota_0.bin, /fw/ota_1.bin, /fw/otadata) for unit tests. It runs the same code path; it does
# not replace the MicroPython binary. A virtual board has esp32.Partition over its partitioned flash.
import json
import os

from .files import FileCheck

BLOCK = 4096


class ImageUpdate:
    def __init__(self, partition_cls=None):
        if partition_cls is None:
            import esp32

            partition_cls = esp32.Partition
        self.P = partition_cls

    def write(self, src, entry, buf=None):
        """Streams the image from `src` (readinto) into the next OTA partition; returns that partition."""
        nxt = self.P(self.P.RUNNING).get_next_update()
        fc = FileCheck(entry)
        block = bytearray(BLOCK)
        mv = memoryview(block)
        n_block = 0
        while True:
            got = 0
            while got < BLOCK:
                want = min(BLOCK - got, fc.remaining + 1 - got) if fc.remaining + 1 > got else 1
                n = src.readinto(mv[got:got + want])
                if not n:
                    break
                got += n
            if got:
                fc.update(mv[:got])
                for i in range(got, BLOCK):
                    block[i] = 0xFF
                nxt.writeblocks(n_block, block)
                n_block += 1
            if got < BLOCK:
                break
        fc.finish()
        return nxt

    def switch(self, partition):
        partition.set_boot()  # the one pointer write

    def confirm(self):
        self.P.mark_app_valid_cancel_rollback()


class SimPartition:
    """esp32.Partition's OTA calls, simulated on files (see the top of this module)."""

    RUNNING = "running"
    MAX_TRIES = 3
    root = "/fw"

    def __init__(self, which):
        st = SimPartition._state()
        self.index = st["running"] if which == SimPartition.RUNNING else int(which)

    @classmethod
    def _state(cls):
        try:
            with open(cls.root + "/otadata") as f:
                return json.load(f)
        except (OSError, ValueError):
            return {"running": 0, "boot": 0, "pending": False, "tries": 0}

    @classmethod
    def _save(cls, st):
        try:
            os.mkdir(cls.root)
        except OSError:
            pass
        with open(cls.root + "/otadata.tmp", "w") as f:
            f.write(json.dumps(st))
        os.rename(cls.root + "/otadata.tmp", cls.root + "/otadata")

    def get_next_update(self):
        return SimPartition(1 - self.index)

    def writeblocks(self, n, buf):
        try:
            os.mkdir(self.root)
        except OSError:
            pass
        path = "%s/ota_%d.bin" % (self.root, self.index)
        with open(path, "r+b" if n else "wb") as f:
            f.seek(n * BLOCK)
            f.write(buf)

    def set_boot(self):
        st = SimPartition._state()
        st.update(boot=self.index, pending=True, tries=0, previous=st["running"])
        SimPartition._save(st)

    @classmethod
    def mark_app_valid_cancel_rollback(cls):
        st = cls._state()
        st.update(pending=False, tries=0)
        cls._save(st)

    @classmethod
    def bootloader(cls):
        """What the ESP-IDF bootloader does at reset: boot the new image while it is pending and has tries
        left, else go back to the one that ran before. Returns the partition index that boots."""
        st = cls._state()
        if st["pending"]:
            if st["tries"] >= cls.MAX_TRIES:
                st.update(boot=st["previous"], pending=False, tries=0)
            else:
                st["tries"] += 1
                st["running"] = st["boot"]
                cls._save(st)
                return st["boot"]
        st["running"] = st["boot"]
        cls._save(st)
        return st["running"]
