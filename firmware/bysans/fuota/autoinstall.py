# The node installs a FUOTA session's rebuilt block by itself (bysans.app), in a boot of its own so that the
# installer finds the heap whole, as the OTA check-in does:
#   plan(text, block, mark)   at the end of a wake that finds the rebuilt block (`block`, bysans.app's
#               FUOTA_BLOCK): writes `mark` (FUOTA_INSTALL) with the wake's plan "<epoch s of the next reading>
#               <watchdog ms>" and the tries so far; True: soft-reset now
#   run(board, block, mark, checkin_path)   first thing in a boot where `mark` holds a plan: counts the try
#               (`mark` "0 0 <tries>", before
#               the installer starts, so a power cut counts too), runs bysans.fuota.install (the OTA client's
#               verification, slot and switch), then resets into the new slot (its first boot self-tests and
#               confirms or rolls back; the update report goes out on the next wakes) or sleeps until the
#               planned reading (through the check-in's boot when one is due as well). False: not this boot.
# A block the installer is done with (refused: the report says so; its release already runs here; it failed
# here before) is removed with its session. One whose install fails otherwise (flash, heap, a power cut) is
# tried again at the end of a later wake, TRIES boots in all, then removed too and reported as refused with
# reason and counter unknown. The OTA client's slots keep the board bootable whatever stops an install.
import gc
import sys

from bysans.version import VERSION

ROOT = "/"            # the OTA state's and the update report's root (a test moves it)
TRIES = 3             # boots that start an install of one block, power cuts included
WATCHDOG_MS = 120000  # as otapoll.WATCHDOG_MS: the install writes a whole slot


def _read(mark):
    # (wake_s, wdt_ms, tries) from `mark`, or None
    try:
        with open(mark) as f:
            t = [int(x) for x in f.read().split()]
        return t[0], t[1], t[2]
    except (OSError, ValueError, IndexError):
        return None


def _write(mark, text):
    with open(mark, "w") as f:
        f.write(text)


def _remove(path):
    import os

    try:
        os.remove(path)
    except OSError:
        pass


def plan(text, block, mark):
    """The end of a wake: when the rebuilt block exists, writes `mark` with `text` (the wake's plan) and the
    tries so far; True then (the caller soft-resets). Without a block, `mark` goes (a later block counts anew)."""
    import os

    try:
        os.stat(block)
    except OSError:
        _remove(mark)
        return False
    m = _read(mark)
    try:
        _write(mark, "%s %d" % (text, m[2] if m else 0))
        return True
    except OSError as e:  # flash full: tried at a later wake
        sys.print_exception(e)
        return False


def _report(state, r, counter):
    # The installer notes each outcome as an update report, best effort; where its heap had no room left for
    # that (seen on the 32-bit port at the TTGO's 112K, a refusal), it is noted here, its modules gone.
    try:
        from bysans import update_report

        rec = update_report.load(ROOT)
        if rec is None or rec[2] != counter:
            update_report.note(state, r.get("reason"), counter, r.get("target"), ROOT)
    except (ImportError, MemoryError, OSError):
        pass


def _done(state, block, mark):
    # the installer is done with the block (or gave up on it): the block and its session go, and the mark
    if state == "error":  # given up: reported as refused, reason and counter unknown
        try:
            from bysans import update_report

            update_report.note("failed", None, 0, None, ROOT)
        except (ImportError, MemoryError, OSError):
            pass
    # the block first (then nothing is installed again), then the rest of its session: bysans.fuota.frag's
    # files in that folder all start with "frag." (not imported for this: the heap after a refusal is tight)
    _remove(block)
    import os

    d = block[:block.rindex("/")]
    try:
        names = os.listdir(d)
    except OSError:
        names = ()
    for n in names:
        if n.startswith("frag."):
            _remove(d + "/" + n)
    _remove(mark)


def run(board, block, mark, checkin_path=None):
    """The install's own boot (see above); False when `mark` holds no plan (not this boot)."""
    m = _read(mark)
    if m is None or not m[0]:
        return False  # none, or counted and waiting for the end of a wake
    wake_s, wdt_ms, tries = m
    try:
        _write(mark, "0 0 %d" % (tries + 1))
    except OSError:
        return False  # flash full: not counted, so not tried (the cycle runs)
    from bysans import diag
    from bysans.modules import drop

    wdt = board.watchdog(max(wdt_ms, WATCHDOG_MS))
    r = None  # (nothing kept in the heap before the installer: its verifier wants the heap in one piece)
    counter = 0
    if tries < TRIES:
        gc.collect()
        try:
            from bysans.fuota import install

            c = install.BlockClient(block, board, ROOT)  # install.install(), keeping the client's counter
            r = c.poll(False)
            counter = c._counter
            c = None
        except Exception as e:  # noqa: BLE001 - a bug or the heap costs this try, never the board
            sys.print_exception(e)
            r = {"state": "error", "reason": type(e).__name__, "detail": str(e)}
        install = None
        drop("bysans.fuota.install")
        drop("bysans.ota.")
        gc.collect()
    if r is None:
        r = {"state": "error", "reason": "TRIES", "detail": "%d tries" % tries}
    state = r.get("state")
    if state in ("installed", "confirmed", "failed", "rolled_back"):
        _report(state, r, counter)
    print("bysans", VERSION, "fuota install:", " ".join(str(x) for x in (state, r.get("reason"), r.get("detail"))
                                                    if x))
    if state != "error" or tries + 1 >= TRIES:
        _done(state, block, mark)
    diag.heap(gc.mem_free())
    if state == "installed":  # switched: the new slot's first boot self-tests (bysans.ota.slots)
        diag.planned(board)
        wdt.feed()
        board.reset()
        return True  # (a board that returns from reset: a test's)
    diag.save(board)
    wdt.feed()
    if checkin_path is not None:
        try:
            import os

            os.stat(checkin_path)
            diag.planned(board)
            board.soft_reset()  # the check-in's boot sleeps until the next reading
            return True
        except OSError:
            pass
    board.deepsleep(max(wake_s - board.epoch_s(), 1) * 1000)
    return True
