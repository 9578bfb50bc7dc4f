# The OTA client (docs/ota.md, docs/formats/update-repository.md): check in, learn which release to take,
# verify it (bysans.ota.verify), fetch only the files the running release lacks (content-addressed zlib
# objects, inflated by deflate.DeflateIO straight from the socket into flash, length and SHA-256 checked
# as they stream: never a whole file in RAM), write them to the inactive slot, switch with one pointer
# write (bysans.ota.slots) and reset. The first boot of the new slot self-tests and confirms, or the board
# returns by itself to the last confirmed slot.
#
#   from bysans.ota import client
#   c = client.Client(board)        # reads ota/config.json and the enrolled root ota/root.json
#   c.poll()                         # one check-in (and update, if the server names a new release)
#   c.service()                      # for the app's loop: polls when due (back-off after failures)
#
# ota/config.json: {"server": "http://host:port", "repo": "<default: server + /repo>", "device": "<DevEUI>",
#                   "kommune": "0751", "poll_s": 3600, "retry_s": 60, "timeout_s": 10}
import binascii
import gc
import json
import os

from bysans.device_spec import OTA_CONFIG, OTA_DIR, OTA_ROOT

from . import slots, stream
from .neterror import NetError
from .reasons import BAD_HASH, MALFORMED, NAMES, TOO_LONG, TOO_SHORT, Refused

try:
    from micropython import const
except ImportError:
    def const(x):
        return x

MAX_ROOT_BYTES = const(8192)
MAX_MANIFEST_BYTES = const(65536)
MAX_ANSWER_BYTES = const(2048)
MAX_SIGS_BYTES = const(2048)
RESERVE = const(3072)  # heap kept free for the inflater's window
MAX_ROOT_STEPS = const(8)
CHUNK = const(512)
MAX_BACKOFF_S = const(86400)
ENOSPC = const(28)  # errno: littlefs has no free block
STATES = ("idle", "confirmed", "downloading", "installed", "failed", "rolled_back", "error")


def _hex(b):
    return binascii.hexlify(b).decode()


def _read_file(path):
    with open(path, "rb") as f:
        return f.read()



def _remove(path):
    try:
        os.remove(path)
    except OSError:
        pass


def _wipe(path):
    # a whole directory tree, as far as it goes (what an update that ran out of flash had written)
    try:
        ents = list(os.ilistdir(path))
    except OSError:
        return
    for ent in ents:
        p = path + "/" + ent[0]
        if ent[1] == 0x4000:
            _wipe(p)
        else:
            _remove(p)
    try:
        os.rmdir(path)
    except OSError:
        pass


class _Again(Exception):
    pass


def _net_fail(done, length, err):
    if err is None:
        return NetError("TRUNCATED", "%d of %d bytes" % (done, length))
    code = err.args[0] if err.args else 0
    return NetError("TIMEOUT" if code in (11, 110, 116) else "TRUNCATED", str(err))


def _diag(board, planned=False):
    """The node's diagnostics for a check-in (bysans.diag), or None where the board keeps none."""
    try:
        from bysans import diag

        if planned:
            return diag.planned(board)
        return diag.fields(board)
    except (ImportError, AttributeError, OSError, ValueError):
        return None


class _Drop:
    # a sink for a manifest's "files" that keeps none of them (signed.read's hooks)
    def start(self):
        pass

    def add(self, e):
        pass


def installed(slot_dir, buf=None, files=True):
    """(manifest body dict, SHA-256 hex of the signed body) of the release in `slot_dir`, or (None, None).
    A slot holds its manifest as manifest.json (the signed body, line 1) and manifest.sig (line 2). The
    body is parsed and hashed in one pass through `buf`; its "files" is a manifest.Files (packed), or None
    when not `files` (a check-in names what runs; only an install needs its files)."""
    from .signed import body

    if files:
        from .manifest import Files

        sink = Files()
    else:
        sink = _Drop()
    try:
        with open(slot_dir.rstrip("/") + "/manifest.json", "rb") as f:
            doc, digest = body(f, {"files": sink}, buf)
    except (OSError, Refused):
        return None, None
    if not files:
        doc["files"] = None
    return doc, _hex(digest)


class Client:
    def __init__(self, board=None, root="/", config=None):
        gc.collect()  # a client made again in the same boot must find the last one's blocks free
        if board is None:
            from bysans.hal import board as _b

            board = _b()
        self.board = board
        self.root = root
        self.ota = root.rstrip("/") + OTA_DIR
        self.cfg = config if config is not None else json.loads(_read_file(root.rstrip("/") + OTA_CONFIG))
        self.server = self.cfg.get("server")
        self.repo = self.cfg.get("repo") or (self.server + "/repo")
        self.timeout_s = self.cfg.get("timeout_s", 10)
        self._buf = bytearray(CHUNK)
        self._mv = memoryview(self._buf)
        self.now = 0
        self.feed = None  # the watchdog's feed, for the waits of a WiFi join
        self.link = None
        self._wifi = getattr(self.board, "definition", {}).get("updates") == "wifi"
        # The verifier and its base-point table first, while the heap is still in one piece: what they
        # keep then sits together, and metadata later finds contiguous room.
        gc.collect()
        self._reserve = bytearray(RESERVE)
        self._rom = False  # writing a ROM slot's image (_install_rom)
        slots.ensure_dir(self.ota)

    def _warm_up(self):
        # The verifier and its base-point table first, while the heap is still in one piece: what they
        # keep then sits together, and later allocations find contiguous room.
        from . import ed25519, verify  # noqa: F401

        ed25519._base()
        gc.collect()

    # ---- what the board runs, and the last outcome ------------------------------------------------------

    def _last(self):
        try:
            d = json.loads(_read_file(self.ota + "/client.json"))
            if type(d) is dict:
                return d
        except (OSError, ValueError):
            pass
        return {"state": "idle", "reason": None, "detail": "", "target": None, "fails": 0, "next_s": 0}

    def _record(self, state, reason=None, detail="", target=None, fails=None, delay_s=None):
        last = self._last()
        last["state"] = state
        last["reason"] = reason
        last["detail"] = detail[:120] if detail else ""
        last["target"] = target
        if fails is not None:
            last["fails"] = fails
        if delay_s is not None:
            last["next_s"] = self.now + delay_s
        slots.ensure_dir(self.ota)
        slots.write_atomic(self.ota + "/client.json", json.dumps(last).encode())
        return last

    def running(self):
        """(slot, manifest dict or None, digest hex or None) of what runs now."""
        # The client never runs during a trial boot (the self-test does, in boot.py): what runs is the
        # confirmed slot, also right after a switch, before the reset.
        # Its files are left out: kept through the whole check-in, their packed chunks and the holes their
        # parse leaves between them cut up the heap the check-in's HTTP and verification need (_install
        # reads them when an update is actually installed).
        slot = slots.load(self.root)["confirmed"]
        doc, digest = installed(slots.slot_dir(slot, self.root), self._buf, files=False)
        return slot, doc, digest

    def status(self):
        """The check-in body: what runs, and the outcome of the last attempt."""
        slot, doc, digest = getattr(self, "_running", None) or self.running()
        last = self._last()
        if last["state"] == "installed":  # the reset since has confirmed the new slot, or rolled it back
            b = slots.load(self.root).get("last") or {}
            if b.get("target") == last["target"] and b.get("state"):
                last = self._record(b["state"], b.get("reason"), "", last["target"])
        if doc is not None:
            version, counter = doc["version"], doc["counter"]
        else:
            from bysans.version import VERSION as version

            counter = None
        return {"device": self.cfg["device"], "kommune": self.cfg["kommune"], "board": self.board.name,
                "version": version, "counter": counter, "release": digest, "slot": slot or "-",
                "state": last["state"], "reason": last["reason"], "detail": last["detail"],
                "target": last["target"], "wifi": None if self.link is None else
                {"ssid": self.link.ssid, "rssi": self.link.rssi, "join_ms": self.link.join_ms},
                "diag": _diag(self.board)}

    # ---- one poll --------------------------------------------------------------------------------------

    def due(self, now=None, scheduled=False):
        """Whether a poll is due: after poll_s (the server's hint) since the last check-in, or the back-off
        after a failed one. `scheduled`: the caller keeps a schedule of its own (the node's ota_every_s),
        so only a failure's back-off holds the poll back."""
        last = self._last()
        if scheduled and not last.get("fails"):
            return True
        return (self.board.epoch_s() if now is None else now) >= last.get("next_s", 0)

    def service(self, reboot=True, scheduled=False):
        """For the app's loop: polls when due (see due). Returns the outcome dict, or None when not due."""
        if not self.due(scheduled=scheduled):
            return None
        return self.poll(reboot=reboot)

    def _backoff(self, fails):
        retry = self.cfg.get("retry_s", 60)
        return min(retry * (1 << min(fails - 1, 16)), self.cfg.get("max_backoff_s", MAX_BACKOFF_S))

    def poll(self, reboot=True):
        """Checks in, and installs the release the server names when it is new. Never raises for what a
        server or a repository does: the outcome is recorded and reported in the next check-in."""
        self.now = self.board.epoch_s()
        fails = self._last().get("fails", 0)
        target = None
        self._running = None
        self._warm_up()
        try:
            slot, cur, cur_digest = self._running = self.running()  # read before the heap fragments
            self._net_up()
            take = self._checkin()
            if take is None:
                last = self._last()
                state = last["state"] if last["state"] in ("failed", "rolled_back") else "confirmed"
                return self._record(state, last["reason"] if state != "confirmed" else None, last["detail"]
                                    if state != "confirmed" else "", last["target"], 0, self.cfg.get("poll_s", 3600))
            root = self._update_root()
            doc, sigs, digest = self._fetch_release(take, slot, cur_digest)
            from .verify import check_release

            check_release(doc, sigs, digest, root, self.board.name, self.cfg["kommune"], self.now,
                          cur["counter"] if cur else None,
                          binascii.unhexlify(cur_digest) if cur_digest else None)
            sigs = root = None
            target = _hex(digest)
            if target == cur_digest:
                return self._record("confirmed", None, "", None, 0, self.cfg.get("poll_s", 3600))
            if target in slots.load(self.root)["bad"]:
                last = self._last()
                if last["state"] == "rolled_back" and last["target"] == target:  # why, as first said (SELFTEST)
                    why = last["reason"], last["detail"]
                else:
                    why = "ROLLED_BACK", "this release failed here before"
                return self._record("rolled_back", why[0], why[1], target, 0, self.cfg.get("poll_s", 3600))
            doc = None
            doc = self._files_of(digest)  # an install: the verified manifest again, its files kept this time
            self._record("downloading", None, doc["version"], target)
            self._checkin(quiet=True)
            new_slot = self._install(doc, cur, slot)
            doc = cur = self._running = None
            self._record("installed", None, "", target, 0, 0)
            slots.switch(new_slot, target, self.root)  # the one pointer write
            self._checkin(quiet=True)
            self._net_down()
            if reboot:
                _diag(self.board, planned=True)  # this reset is the update's, not the release's fault
                self.board.reset()
            return self._last()
        except Refused as e:
            fails += 1
            return self._record("failed", NAMES[e.reason], e.detail, target, fails, self._backoff(fails))
        except NetError as e:
            fails += 1
            return self._record("error", e.reason, e.detail, target, fails, self._backoff(fails))
        except MemoryError:
            fails += 1
            return self._record("error", "NO_MEMORY", "", target, fails, self._backoff(fails))
        except OSError as e:  # flash full, a file system error
            fails += 1
            return self._record("error", "FLASH", str(e), target, fails, self._backoff(fails))
        finally:
            self._net_down()

    def report(self):
        """A check-in only (what runs, the last outcome); returns the repository path the server named, or
        None. Raises NetError when the server cannot be reached or refuses the check-in (HTTP_ERROR, "401
        (not authenticated ...)" when the check-in key is not the one the server holds; BAD_KEY)."""
        self.now = self.board.epoch_s()
        try:
            self._net_up()
            return self._checkin()
        finally:
            self._net_down()

    # ---- the network ---------------------------------------------------------------------------------

    def _net_up(self):
        """WiFi up when this board's updates take it; NetError NO_NETWORK (detail: the join's outcome)."""
        if not self._wifi or self.link is not None:
            return
        from bysans import wifi

        self.link, outcome = wifi.up(self.board, self.feed, self.root.rstrip("/") + wifi.WIFI_PATH)
        if self.link is None:
            raise NetError("NO_NETWORK", "wifi " + outcome)

    def _net_down(self):
        if self.link is not None:
            from bysans import wifi

            wifi.down(self.link)
            self.link = None

    # ---- talking to the server ---------------------------------------------------------------------------

    def _checkin(self, quiet=False):
        """POSTs the status; returns the repository path to take, or None to hold. A server without the
        check-in endpoint (a plain static mirror: 404) means: take the channel. With a check-in key in the
        config the body carries "seq" and the URL its MAC (bysans.ota.checkin)."""
        channel = "channels/%s/%s.json" % (self.cfg["kommune"], self.board.name)
        if not self.server:
            return channel
        st = self.status()
        key = self.cfg.get("checkin_key")
        path = "/api/checkin"
        try:
            if key:
                from . import checkin

                st["seq"] = checkin.next_seq(self.ota + "/seq", self.now)
                body = json.dumps(st).encode()
                st = None
                path += "?mac=" + checkin.mac_hex(key, body)
            else:
                body = json.dumps(st).encode()
                st = None
            from .http import request

            r = request(self.server, "POST", path, body, self.timeout_s)
        except ValueError:
            if quiet:
                return None
            raise NetError("BAD_KEY", "checkin_key in ota/config.json is not 64 hex digits")
        except NetError:
            if quiet:
                return None
            raise
        try:
            if r.status == 404:
                return channel
            if r.status != 200:
                if quiet:
                    return None
                raise NetError("HTTP_ERROR", "check-in answered %d%s" % (
                    r.status, " (not authenticated: check ota/config.json's checkin_key)" if r.status == 401 else ""))
            raw = r.read_all(MAX_ANSWER_BYTES)
        finally:
            r.close()
        try:
            ans = json.loads(raw)
        except ValueError:
            raise NetError("GARBAGE", "check-in answer is not JSON")
        if type(ans) is not dict:
            raise NetError("GARBAGE", "check-in answer is not an object")
        t = ans.get("now")
        if type(t) is int and t > self.now:
            self.now = t  # a board without a clock learns the time here; it never goes back
        if "poll_s" in ans and type(ans["poll_s"]) is int and ans["poll_s"] > 0:
            self.cfg["poll_s"] = ans["poll_s"]
        if "take" not in ans:
            return channel
        take = ans["take"]
        if take is not None and (type(take) is not str or ".." in take or not take.endswith(".json")):
            raise NetError("GARBAGE", "check-in answer names no repository file")
        return take

    def _fetch_release(self, path, slot, cur_digest):
        """The manifest `path` names, as _fetch_signed gives it: rebuilt from a delta against the running
        release when the repository has one (bysans.ota.delta; a few hundred bytes instead of the whole list
        of files), else downloaded whole. Either way it is verified from flash the same way."""
        if cur_digest is not None:
            try:
                got = self._fetch_delta(path, slots.slot_dir(slot, self.root) + "/manifest.json", cur_digest)
            except Refused:
                got = False  # a delta that does not fit this board: the whole file instead
            if got:
                return self._read_new(False)
        return self._fetch_signed(path, MAX_MANIFEST_BYTES)

    def _fetch_delta(self, path, base_path, base_digest):
        """Rebuilds `path` into ota/new.json and ota/new.sig from <path less .json>.delta/<base_digest>.bin;
        False when the repository has no such delta (bysans.ota.delta is loaded only when it has one)."""
        from .http import request

        r = request(self.repo, "GET", "/%s.delta/%s.bin" % (path[:-5], base_digest), None, self.timeout_s)
        try:
            if r.status == 404:
                return False
            if r.status != 200:
                raise NetError("HTTP_ERROR", "delta of %s: %d" % (path, r.status))
            if r.length is None:
                raise NetError("GARBAGE", "no Content-Length")
            if r.length > MAX_MANIFEST_BYTES:
                raise Refused(TOO_LONG, "delta of %s: %d bytes" % (path, r.length))
            from .delta import apply

            base = self.ota + "/new"
            with open(base + ".json", "wb") as fb, open(base + ".sig", "wb") as fs:
                apply(r.sock, r.length, base_path, binascii.unhexlify(base_digest), fb, fs, self._buf,
                      MAX_MANIFEST_BYTES, _net_fail)
        finally:
            r.close()
        return True

    def _fetch_signed(self, path, limit, missing_ok=False):
        """A release manifest from the repository (_fetch_new), parsed from flash as _read_new(False)
        gives it; None for a missing file when `missing_ok`."""
        if not self._fetch_new(path, limit, missing_ok):
            return None
        return self._read_new(False)

    def _read_new(self, keep):
        """(body dict, signatures, SHA-256 of the body) of the release manifest in ota/new.*. Its "files":
        packed when `keep` (manifest.Files, for an install), else each entry checked and dropped
        (manifest.Entries): a check-in that finds the release it runs needs only the signature and what
        the manifest says, and the list of files kept through it cut the heap up (docs/boards.md, "Heap")."""
        from .verify import read_release

        sigs = self._new_sigs()
        with open(self.ota + "/new.json", "rb") as f:
            return read_release(f, self._buf, sigs, keep)

    def _files_of(self, digest):
        """The manifest in ota/new.* read again with its files kept (_read_new(True)); Refused unless its
        body is still the one whose signature was checked (`digest`)."""
        gc.collect()  # the verifier's garbage: the packed files find the heap in one piece
        doc, _, got = self._read_new(True)
        if got != digest:
            raise Refused(BAD_HASH, "ota/new.json changed after its signature was checked")
        return doc

    def _fetch_new(self, path, limit, missing_ok=False):
        """Streams a signed metadata file from the repository to ota/new.json (line 1) and ota/new.sig
        (line 2); False for a missing file when `missing_ok`."""
        from .http import request

        r = request(self.repo, "GET", "/" + path, None, self.timeout_s)
        try:
            if r.status == 404 and missing_ok:
                return False
            if r.status != 200:
                raise NetError("HTTP_ERROR", "%s: %d" % (path, r.status))
            if r.length is None:
                raise NetError("GARBAGE", "no Content-Length")
            if r.length > limit:
                raise Refused(TOO_LONG, "%s: %d bytes, metadata is at most %d" % (path, r.length, limit))
            self._split_signed(r.sock, r.length)
        finally:
            r.close()
        return True

    def _new_sigs(self):
        """Line 2 of ota/new.*: the signatures (bytes)."""
        path = self.ota + "/new.sig"
        if os.stat(path)[6] > MAX_SIGS_BYTES:
            raise Refused(MALFORMED, "signature line too long")
        with open(path, "rb") as f:
            return f.read().rstrip(b"\n")  # a root.json saved by an earlier client ends in two newlines

    def _new_root(self, trusted):
        """The Root of ota/new.* as the next step after `trusted` (verify.load_root), parsed from flash
        through the client's buffer."""
        from .verify import load_root

        sigs = self._new_sigs()
        with open(self.ota + "/new.json", "rb") as f:
            return load_root(f, trusted, None, self._buf, sigs)

    def _split_signed(self, src, length, net=True):
        mv = self._mv
        body_open = True
        left = length
        base = self.ota + "/new"
        with open(base + ".json", "wb") as fb, open(base + ".sig", "wb") as fs:
            while left > 0:
                try:
                    n = src.readinto(mv[:left if left < CHUNK else CHUNK])
                except OSError as e:
                    if not net:
                        raise
                    code = e.args[0] if e.args else 0
                    raise NetError("TIMEOUT" if code in (11, 110, 116) else "TRUNCATED", str(e))
                if not n:
                    raise NetError("TRUNCATED", "%d of %d bytes" % (length - left, length))
                left -= n
                chunk = mv[:n]
                if body_open:
                    i = self._buf.find(b"\n", 0, n)
                    if i < 0:
                        fb.write(chunk)
                        continue
                    fb.write(chunk[:i])
                    chunk = chunk[i + 1:]
                    body_open = False
                fs.write(chunk)
        if body_open:
            raise Refused(MALFORMED, "no signature line")

    def _save_signed(self, dst):
        """Writes ota/new.json and ota/new.sig back as one signed file (two lines) at `dst`, atomically."""
        tmp = dst + ".tmp"
        with open(tmp, "wb") as out:
            for name, nl in ((".json", True), (".sig", False)):  # new.sig holds line 2's own newline
                with open(self.ota + "/new" + name, "rb") as f:
                    while True:
                        n = f.readinto(self._buf)
                        if not n:
                            break
                        out.write(self._mv[:n])
                if nl:
                    out.write(b"\n")
        os.rename(tmp, dst)

    def _update_root(self):
        """The trusted root, walked forward through root/<N+1>.json, ... (each step signed by the old and
        the new root; saved as it is accepted); expiry is checked on the last one."""
        from .verify import EXPIRED

        path = self.root.rstrip("/") + OTA_ROOT
        with open(path, "rb") as f:
            self._split_signed(f, os.stat(path)[6], net=False)
        root = self._new_root(None)
        for _ in range(MAX_ROOT_STEPS):
            gc.collect()  # the last step's parse is garbage now: the next one finds the heap in one piece
            if not self._fetch_new("root/%d.json" % (root.version + 1), MAX_ROOT_BYTES, missing_ok=True):
                break
            root = self._new_root(root)  # only a Root is kept of each step
            self._save_signed(path)
        if self.now >= root.expires:
            raise Refused(EXPIRED, "root metadata expired")
        return root

    # ---- writing a slot --------------------------------------------------------------------------------

    def _install(self, doc, cur, cur_slot):
        st = slots.load(self.root)
        slot = slots.inactive(st)
        if self.root == "/":
            from . import romfs

            if romfs.partition() is not None:  # the slots are ROMFS images (docs/ota.md, "ROM slots")
                return self._install_rom(romfs, doc, cur, cur_slot, slot)
        d = slots.slot_dir(slot, self.root)
        try:
            return self._fill(doc, cur, cur_slot, slot, d)
        except OSError as err:
            if err.args and err.args[0] == ENOSPC:
                # the release does not fit beside the running one: give the blocks back, or the node could
                # not even save its state (fleet release build counts a slot as littlefs stores it)
                _remove(self.ota + "/new.sig")
                _remove(self.ota + "/new.json")
                _wipe(d)
            raise

    def _fill(self, doc, cur, cur_slot, slot, d):
        slots.ensure_dir(d)
        _remove(d + "/manifest.json")  # the slot is incomplete from here until its manifest is back
        _remove(d + "/manifest.sig")
        src_dir = slots.slot_dir(cur_slot, self.root)
        if cur is not None and cur["files"] is None:  # running() left them out
            cur = installed(src_dir, self._buf)[0]
        have = cur["files"] if cur is not None else None  # manifest.Files, both: packed, no dict of all files
        for e in doc["files"]:
            dst = d + "/" + e["path"]
            i = dst.rfind("/")
            slots.ensure_dir(dst[:i])
            if self._matches(dst, e):
                continue  # already here (an earlier attempt, or the release before last)
            i = have.find(e["sha256"]) if have is not None else -1
            if i >= 0:
                src = have[i]["path"]
                try:
                    with open(src_dir.rstrip("/") + "/" + src, "rb") as f:
                        self._stream(f, e, dst)
                    continue
                except OSError as err:
                    if err.args and err.args[0] == ENOSPC:
                        raise
                except Refused:
                    pass  # a damaged local copy: fetch it instead
            self._download(e, dst)
        self._prune(d, "", doc["files"])  # keeps a path that is `in` the new release's files
        os.rename(self.ota + "/new.sig", d + "/manifest.sig")
        os.rename(self.ota + "/new.json", d + "/manifest.json")  # complete: the slot may now be switched to
        return slot

    def _install_rom(self, rs, doc, cur, cur_slot, slot):
        # The release as a ROMFS image in slot's half of the romfs partition (bysans.ota.romfs): files
        # the running image holds are copied from it, the others downloaded; every one checked as it streams.
        self._rom = True  # the reserve is given up for the whole write: its room is the downloads' from here
        self._reserve = None
        gc.collect()
        # A file of the running image is taken when it has the same path, length and hash (read once to check,
        # once to copy: flash reads are cheap, the running release's list of files in the heap is not).
        src_dir = slots.slot_dir(cur_slot, self.root).rstrip("/") if cur is not None else None
        cur = None
        fetch = []  # SHA-256s whose copy in the running image failed its check while copied: downloaded
        meta = tuple((m, os.stat(self.ota + "/new" + m[8:])[6]) for m in ("manifest.json", "manifest.sig"))

        def put(path, e, out):
            if e is None:  # the signed manifest, verified already
                return rs.copy(self.ota + "/new" + path[8:], None, out, self._buf)
            if src_dir and e["sha256"] not in fetch and self._matches(src_dir + "/" + path, e):
                try:
                    return rs.copy(src_dir + "/" + path, e, out, self._buf)
                except (OSError, Refused):
                    fetch.append(e["sha256"])
                    raise _Again()
            gc.collect()  # what the last file left: the request and the inflater find room in one piece
            self._download(e, out)

        for _ in range(3):
            try:
                rs.write_slot(rs.partition(), slot, doc["files"], meta, put)
                break
            except _Again:
                continue  # the image again from its start, that file downloaded
        else:
            raise Refused(BAD_HASH, "the running image's files fail their checks")
        _remove(self.ota + "/new.sig")
        _remove(self.ota + "/new.json")
        if not rs.mount(slot):
            raise OSError(5, "the new image in slot %s does not mount" % slot)
        return slot

    def _matches(self, path, e):
        return stream.matches(path, e, self._buf)

    def _stream(self, src, e, dst):
        stream.copy_checked(src, e, dst, self._buf)

    def _download(self, e, dst):
        from .http import request

        r = request(self.repo, "GET", "/objects/%s.z" % e["sha256"], None, self.timeout_s)
        try:
            if r.status == 404:
                raise Refused(TOO_SHORT, "%s: object missing" % e["path"])
            if r.status != 200:
                raise NetError("HTTP_ERROR", "object for %s: %d" % (e["path"], r.status))
            try:
                self._stream(lambda: self._inflater(r.sock), e, dst)
            except OSError as err:
                code = err.args[0] if err.args else 0
                if code == ENOSPC:
                    raise  # the flash, not the network
                if code in (11, 110, 116) or "timed out" in str(err):
                    raise NetError("TIMEOUT", e["path"])
                if code in (22, 5, 84):  # EINVAL/EIO: not a zlib stream, or it fails its checksum
                    raise Refused(BAD_HASH, "%s: not a valid compressed object" % e["path"])
                raise NetError("TRUNCATED", "%s (%s)" % (e["path"], err))
        finally:
            r.close()
            self._take_reserve()

    def _take_reserve(self):
        # after a download: the reserve back for the next one; not while a ROM image is written
        # (_install_rom), whose records would have taken its room
        if self._reserve is None and not self._rom:
            gc.collect()
            self._reserve = bytearray(RESERVE)

    def _inflater(self, sock):
        # The inflater's window is allocated at its first read: the reserve kept since start-up is freed
        # right before, so a fragmented heap still has room for it (_download takes the reserve back).
        hdr_checked = stream.inflater  # checks the zlib header before DeflateIO allocates anything
        self._reserve = None
        gc.collect()
        return hdr_checked(sock)

    def _prune(self, d, rel, keep):
        """Removes what is not in the release (a stale foo.py would shadow foo.mpy)."""
        base = d.rstrip("/") + ("/" + rel if rel else "")
        for ent in list(os.ilistdir(base)):
            name, kind = ent[0], ent[1]
            p = (rel + "/" + name) if rel else name
            if kind == 0x4000:
                self._prune(d, p, keep)
            elif p not in keep and p not in ("manifest.json", "manifest.sig"):
                _remove(base + "/" + name)


def main():
    """One poll with the board's config (e.g. from the REPL or a scheduler)."""
    return Client().poll()
