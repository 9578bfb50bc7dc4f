# App slots and the boot state (docs/ota.md): which slot directory runs, a trial slot's boot counter,
# confirm and roll back. Used by main.py on every real boot (never in a REPL session: boot.py only puts the
# confirmed slot on sys.path) and by the OTA client to switch.
#
# Flash layout (paths relative to `root`, "/" on a board; the files the host writes too are named in
# bysans/device_spec.py):
#   a/ , b/           the two app slots: a release's files, then a/manifest.json (the signed manifest) LAST,
#                     so a slot without manifest.json is never complete. "" is a board deployed over serial
#                     without slots (the files at the top): it counts as the first confirmed slot.
#   ota/boot.json     the boot state, two lines: canonical-enough JSON, then its CRC-32 in hex. Written to
#                     ota/boot.tmp and renamed over: littlefs renames atomically, so a power cut leaves the
#                     old state or the new one. The switch to a new slot is this one write.
#   ota/confirmed     the confirmed slot's name (1 byte): where main.py imports this module from, so the
#                     boot logic always comes from code that has passed its self-test.
#
# State: {"confirmed": "a", "trial": "b" | null, "tries": n, "target": "<manifest sha256 hex>",
#         "bad": ["<sha256 hex>", ...], "last": {"state": "confirmed" | "rolled_back", "slot": ..,
#         "version": .., "reason": ..}}
# A trial slot boots at most MAX_TRIES times without confirming; the next boot returns to `confirmed`.
import binascii
import json
import os
import sys

from bysans.device_spec import OTA_BOOT, OTA_CONFIRMED, OTA_DIR

try:
    from micropython import const
except ImportError:
    def const(x):
        return x

MAX_TRIES = const(3)
BAD_KEEP = const(4)  # rolled-back releases remembered (never installed again)
SLOTS = ("a", "b")


def _p(root, rel):
    return root.rstrip("/") + "/" + rel if rel else root


def _at(root, path):
    # a board path (bysans.device_spec, absolute) under `root` ("/" on a board, a directory in tests)
    return root.rstrip("/") + path


def slot_dir(slot, root="/"):
    """The directory of `slot` ("" = the top of the filesystem)."""
    return _p(root, slot) if slot else root.rstrip("/") or "/"


def exists(path):
    try:
        os.stat(path)
        return True
    except OSError:
        return False


def _default():
    return {"confirmed": "", "trial": None, "tries": 0, "target": None, "bad": [], "last": None}


def encode(state):
    body = json.dumps(state)
    return body + "\n" + "%08x" % (binascii.crc32(body.encode()) & 0xFFFFFFFF) + "\n"


def decode(text):
    """The state dict, or None when the text is not a whole state (bad checksum, garbage)."""
    lines = text.split("\n")
    if len(lines) < 2:
        return None
    body = lines[0]
    if "%08x" % (binascii.crc32(body.encode()) & 0xFFFFFFFF) != lines[1].strip():
        return None
    try:
        st = json.loads(body)
    except ValueError:
        return None
    if type(st) is not dict or st.get("confirmed") not in ("", "a", "b"):
        return None
    d = _default()
    d.update(st)
    return d


def load(root="/"):
    try:
        with open(_at(root, OTA_BOOT)) as f:
            st = decode(f.read())
    except OSError:
        st = None
    if st is None:
        # No state (a board deployed over serial), or unreadable: the confirmed slot's marker decides.
        st = _default()
        st["confirmed"] = confirmed_hint(root)
    return st


def confirmed_hint(root="/"):
    try:
        with open(_at(root, OTA_CONFIRMED)) as f:
            s = f.read().strip()
        return s if s in SLOTS else ""
    except OSError:
        return ""


def write_atomic(path, data):
    """Writes `data` (str or bytes) to `path` through a temporary file and one rename: a power cut leaves
    the old file or the new one, never half of one."""
    tmp = path + ".tmp"
    with open(tmp, "wb" if isinstance(data, (bytes, bytearray)) else "w") as f:
        f.write(data)
    os.rename(tmp, path)  # the commit point


def ensure_dir(path):
    if path in ("", "/"):
        return
    parts = path.strip("/").split("/")
    cur = ""
    for part in parts:
        cur += "/" + part
        if not exists(cur):
            os.mkdir(cur)


def save(state, root="/"):
    ensure_dir(_at(root, OTA_DIR))
    write_atomic(_at(root, OTA_BOOT), encode(state))


def inactive(state):
    """The slot to write a new release to: never the confirmed one, never the running trial."""
    return "b" if state["confirmed"] == "a" else "a"


def switch(slot, digest_hex, root="/"):
    """Makes `slot` (complete, its manifest.json written) the trial for the next boot: ONE pointer write."""
    st = load(root)
    st["trial"] = slot
    st["tries"] = 0
    st["target"] = digest_hex
    save(st, root)
    return st


def confirm(root="/", version=None):
    st = load(root)
    if not st["trial"]:
        return st
    slot = st["trial"]
    st["confirmed"] = slot
    st["trial"] = None
    st["tries"] = 0
    st["last"] = {"state": "confirmed", "slot": slot, "version": version, "target": st["target"],
                  "reason": None}
    save(st, root)  # the commit point: from here the new slot is the one to return to
    write_atomic(_at(root, OTA_CONFIRMED), slot)
    return st


def rollback(root="/", reason="BOOT_FAILED"):
    """Gives up the trial slot: the next boot runs the confirmed one; its release is never taken again."""
    st = load(root)
    if not st["trial"]:
        return st
    bad = [b for b in st["bad"] if b != st["target"]]
    if st["target"]:
        bad.append(st["target"])
    st["bad"] = bad[-BAD_KEEP:]
    st["last"] = {"state": "rolled_back", "slot": st["trial"], "version": None, "target": st["target"],
                  "reason": reason}
    st["trial"] = None
    st["tries"] = 0
    save(st, root)
    return st


def choose(root="/"):
    """Called once per boot: returns (slot to run, True if it is a trial boot) and counts a trial's boots."""
    st = load(root)
    trial = st["trial"]
    if trial:
        if st["tries"] >= MAX_TRIES or not exists(_p(root, trial + "/manifest.json")):
            st = rollback(root, "BOOT_FAILED" if st["tries"] >= MAX_TRIES else "SLOT_INCOMPLETE")
        else:
            st["tries"] += 1
            save(st, root)  # counted before the new code runs: a crash or power cut still counts
            return trial, True
    return st["confirmed"], False


def activate(slot, root="/"):
    """Puts `slot` first on sys.path (instead of the top of the filesystem) and forgets loaded bysans
    modules, so that everything imported from now on comes from that slot only — never a mix."""
    d = slot_dir(slot, root)  # on a ROM-slot board, boot.py mounted the slot's image there
    path = [p for p in sys.path if p not in ("", "/", "/a", "/b", d, _p(root, "a"), _p(root, "b"))]
    sys.path[:] = [d] + path
    for name in list(sys.modules):
        if name == "bysans" or name.startswith("bysans."):
            del sys.modules[name]


def boot(board=None, root="/"):
    """What main.py runs first: choose the slot, and on a trial boot run the new release's self-test, then
    confirm (or roll back and reset). Returns the slot that runs."""
    from bysans.ota.rundir import follow

    slot, trial = choose(root)
    follow(slot, root)
    activate(slot, root)
    if not trial:
        return slot
    ok, reason, version = _self_test(board, slot, root)
    activate(slot, root)  # drop what the self-test imported: the app imports afresh
    if ok:
        confirm(root, version)
        return slot
    rollback(root, reason)
    if board is not None:
        board.reset()  # does not return on a board
    st = load(root)
    follow(st["confirmed"], root)
    activate(st["confirmed"], root)
    return st["confirmed"]


def _self_test(board, slot, root):
    try:
        from bysans.ota import selftest  # the NEW release's self-test (sys.path is the trial slot)

        version = selftest.run(board, slot_dir(slot, root))
        return True, None, version
    except Exception as e:  # noqa: BLE001 - any failure of the new code is a failed self-test
        return False, "SELFTEST: " + (str(e) or type(e).__name__)[:80], None
