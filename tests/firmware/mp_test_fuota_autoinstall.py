# The node installs a rebuilt FUOTA block by itself (bysans.fuota.autoinstall, run by bysans.app) on the unix
# port, the installer faked: the end of a wake with a block plans the install's own boot; that boot counts
# the try before the installer starts, resets into the new slot after an install, removes a refused block
# (and one whose release already runs here), tries a failing install again only at later wakes and gives it
# up after TRIES boots, power cuts included, with an update report that says refused. The installer itself
# is tested in tests/e2e/test_fuota_install.py and tests/host/test_fuota_update_report.py.
# mp: -X heapsize=128K
import os
import sys

from bysans.fuota import autoinstall as A
from bysans import update_report as U

TMP = "/tmp/bysans_mp_autoinstall_%d" % (os.getpid() if hasattr(os, "getpid") else 0)


class PowerCut(BaseException):
    pass


class Board:
    def __init__(self):
        self.t = 1000
        self.calls = []
        self.rtc = bytearray(64)

    def epoch_s(self):
        return self.t

    def watchdog(self, ms):
        self.calls.append(("watchdog", ms))
        return self

    def feed(self):
        pass

    def rtc_memory(self, data=None):
        if data is None:
            return bytes(self.rtc)
        self.rtc = bytearray(data)

    def reset(self):
        self.calls.append(("reset",))

    def soft_reset(self):
        self.calls.append(("soft_reset",))

    def deepsleep(self, ms):
        self.calls.append(("deepsleep", ms))


class Installer:
    """Stands in for bysans.fuota.install (a module the install boot imports, then drops)."""

    def __init__(self, *outcomes):
        self.outcomes = list(outcomes)
        self.runs = []

    def arm(self):
        me = self

        class BlockClient:
            def __init__(self, block, board, root):
                self.args = (block, root)
                self._counter = 7

            def poll(self, reboot=True):
                me.runs.append(self.args + (reboot,))
                o = me.outcomes.pop(0)
                if isinstance(o, BaseException):
                    raise o
                return o

        class M:
            pass
        M.BlockClient = BlockClient
        sys.modules["bysans.fuota.install"] = M
        sys.modules["bysans.fuota"].install = M  # as an import leaves it (bysans.modules.drop removes both)


def _rm(path):
    try:
        os.remove(path)
    except OSError:
        pass


def _mkdir(path):
    try:
        os.mkdir(path)
    except OSError:
        pass


def _world():
    for d in (TMP, TMP + "/fuota", TMP + "/ota"):
        _mkdir(d)
    for p in ("/fuota/frag.bin", "/fuota/frag.ses", "/fuota.due", "/ota/report", "/checkin.due"):
        _rm(TMP + p)
    for p in ("/fuota/frag.bin", "/fuota/frag.ses"):
        with open(TMP + p, "wb") as f:
            f.write(b"x" * 40)
    A.ROOT = TMP + "/"
    return Board()


BLOCK, MARK = TMP + "/fuota/frag.bin", TMP + "/fuota.due"


def _exists(path):
    try:
        os.stat(path)
        return True
    except OSError:
        return False


def _mark():
    with open(MARK) as f:
        return f.read()


def _boot(b, inst, checkin=None):
    inst.arm()
    b.calls = []
    return A.run(b, BLOCK, MARK, checkin)


def test_a_wake_that_finds_no_block_plans_nothing():
    b = _world()
    _rm(BLOCK)
    with open(MARK, "w") as f:
        f.write("0 0 2")  # a block of earlier that is gone: its count goes with it
    assert A.plan("1060 30000", BLOCK, MARK) is False and not _exists(MARK)
    assert A.run(b, BLOCK, MARK) is False and b.calls == []


def test_an_installed_block_goes_and_the_board_resets_into_the_new_slot():
    b = _world()
    assert A.plan("1060 30000", BLOCK, MARK) is True and _mark() == "1060 30000 0"
    inst = Installer({"state": "installed", "target": "ab" * 32})
    assert _boot(b, inst) is True
    assert inst.runs == [(BLOCK, A.ROOT, False)]
    assert ("reset",) in b.calls and not any(c[0] == "deepsleep" for c in b.calls), b.calls
    assert b.calls[0] == ("watchdog", A.WATCHDOG_MS)  # the install writes a whole slot: longer than a cycle
    assert not _exists(BLOCK) and not _exists(TMP + "/fuota/frag.ses") and not _exists(MARK)
    assert "bysans.fuota.install" not in sys.modules  # dropped before the reset's work


def test_a_refused_block_is_removed_never_tried_again():
    for outcome in ({"state": "failed", "reason": "WRONG_BOARD", "detail": "for ttgo_lora32_v21"},
                    {"state": "failed", "reason": "DOWNGRADE"},
                    {"state": "confirmed"},  # its release already runs here
                    {"state": "rolled_back", "reason": "ROLLED_BACK"}):  # it failed here before
        b = _world()
        A.plan("1060 30000", BLOCK, MARK)
        b.t = 1010
        assert _boot(b, Installer(outcome)) is True
        assert b.calls[-1] == ("deepsleep", 50000), b.calls  # until the reading the wake planned
        assert ("reset",) not in b.calls
        assert not _exists(BLOCK) and not _exists(MARK), outcome
        assert A.plan("1120 30000", BLOCK, MARK) is False  # the next wake: nothing to install
        if outcome["state"] == "failed":  # the fake installer noted no report: the boot did, once its heap was free
            assert U.load(A.ROOT)[:3] == [4, {"WRONG_BOARD": 7, "DOWNGRADE": 5}[outcome["reason"]], 7]


def test_a_failing_install_is_tried_at_later_wakes_then_given_up_and_reported():
    b = _world()
    inst = Installer(MemoryError(), {"state": "error", "reason": "FLASH", "detail": "28"}, MemoryError())
    for k in range(A.TRIES):
        assert A.plan("1060 30000", BLOCK, MARK) is True
        assert _mark() == "1060 30000 %d" % k
        assert _boot(b, inst) is True
        assert b.calls[-1][0] == "deepsleep"
        assert A.run(b, BLOCK, MARK) is False  # the next boot is a wake: the try waits for the end of one
        if k < A.TRIES - 1:
            assert _exists(BLOCK) and _mark() == "0 0 %d" % (k + 1)
    assert len(inst.runs) == A.TRIES
    assert not _exists(BLOCK) and not _exists(MARK)
    assert U.load(A.ROOT)[:3] == [4, 0, 0]  # refused, reason and counter unknown
    assert A.plan("1060 30000", BLOCK, MARK) is False


def test_power_cuts_during_the_install_count_as_tries():
    b = _world()
    inst = Installer(*[PowerCut() for _ in range(A.TRIES)])
    for k in range(A.TRIES):
        assert A.plan("1060 30000", BLOCK, MARK) is True
        try:
            _boot(b, inst)
            raise AssertionError("the power cut did not stop the boot")
        except PowerCut:
            pass
        assert _mark() == "0 0 %d" % (k + 1)  # counted before the installer started
        assert _exists(BLOCK)
    A.plan("1060 30000", BLOCK, MARK)
    assert _boot(b, inst) is True  # given up without starting the installer again
    assert len(inst.runs) == A.TRIES and not _exists(BLOCK) and not _exists(MARK)
    assert U.load(A.ROOT)[0] == 4


def test_a_check_in_due_as_well_gets_its_boot_after_the_install():
    b = _world()
    with open(TMP + "/checkin.due", "w") as f:
        f.write("1060 30000")
    A.plan("1060 30000", BLOCK, MARK)
    assert _boot(b, Installer({"state": "failed", "reason": "BAD_SIGNATURE"}), TMP + "/checkin.due") is True
    assert b.calls[-1] == ("soft_reset",), b.calls


def test_the_block_the_app_looks_for_is_the_one_the_fragmentation_package_rebuilds():
    from bysans import app
    from bysans.fuota import frag

    assert frag.ROOT + "/" + frag.OUT == app.FUOTA_BLOCK
