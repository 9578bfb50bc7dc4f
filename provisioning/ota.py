"""Provisioning a board for OTA updates over serial: a signed release in app slot /a, the trusted root the
device starts its chain from, its OTA settings (with its check-in key), and the tiny /boot.py and /main.py
(docs/ota.md).

    store = OtaStore.open(db_url)
    key = store.issue_checkin_key("70B3D57ED0000001")     # sealed in the registry
    with Session(port) as s:
        provision(s, "rel-1.0.0", root=keystore.root_path(1).read_bytes(), checkin_key=key,
                  config={"server": "http://10.0.0.2:8080", "device": "70B3D57ED0000001", "kommune": "0751"})
    with Session(port) as s:
        give_checkin_key(s, store)      # later, a new key for a provisioned board: only the key changes
"""

import hashlib
import json
from pathlib import Path

from fleet import device_spec
from fleet.errors import Conflict, UsageError, VerifyError, WrongBoard
from fleet.release.build import FILES, MANIFEST

from .deploy import DeployReport, deploy
from .session import BoardError

CONFIG = device_spec.OTA_CONFIG

# Boot state with slot a confirmed: firmware/bysans/ota/slots.py (encode), one JSON line and its CRC-32.
_STATE = {"confirmed": "a", "trial": None, "tries": 0, "target": None, "bad": [], "last": None}


def _encode_state(state: dict) -> bytes:
    import zlib

    body = json.dumps(state, separators=(", ", ": "))
    return (body + "\n" + "%08x" % (zlib.crc32(body.encode()) & 0xFFFFFFFF) + "\n").encode()


def slot_files(release_dir, slot: str = "a") -> dict[str, bytes]:
    """The files of a built and signed release at their board paths in `slot`, plus /boot.py and /main.py."""
    rel = Path(release_dir)
    manifest = (rel / MANIFEST).read_bytes()
    body = json.loads(manifest.split(b"\n", 1)[0])
    if not body.get("kommuner"):
        raise UsageError(f"{rel} is not signed", hint=f"fleet release sign {rel} --kommune K")
    files = {}
    for e in body["files"]:
        files[f"/{slot}/{e['path']}"] = (rel / FILES / e["path"]).read_bytes()
    for top in ("boot.py", "main.py"):
        if (rel / FILES / top).is_file():
            files["/" + top] = (rel / FILES / top).read_bytes()
    body, sigs = manifest.rstrip(b"\n").split(b"\n", 1)
    files[f"/{slot}/manifest.sig"] = sigs  # the slot keeps the signed manifest as two files (docs/ota.md)
    files[f"/{slot}/manifest.json"] = body
    return files


def _with_key(config: dict, checkin_key) -> dict:
    from fleet.rollout.auth import CheckinKey, key_bytes

    if isinstance(checkin_key, CheckinKey) and checkin_key.device != str(config["device"]).upper():
        raise UsageError(f"the check-in key is device {checkin_key.device}'s, the config is for "
                         f"{config['device']}",
                         hint="issue the key for the config's device (OtaStore.issue_checkin_key), or give a "
                              "board its own key with 'fleet rollout checkin-key --port PORT'")
    return dict(config, checkin_key=key_bytes(checkin_key).hex())


def provision(session, release_dir, *, root: bytes, config: dict, checkin_key=None, wifi=None,
              progress=None) -> DeployReport:
    """Writes the release into slot /a and the OTA set-up; the board then boots slot a as confirmed.
    `checkin_key` (a CheckinKey from OtaStore.issue_checkin_key, or its 32 bytes) goes into the OTA config
    as "checkin_key": without one, fleet serve refuses the board's check-ins (docs/ota.md). `wifi`: the
    networks a board whose updates go over WiFi joins ([{"ssid", "password"}], provisioning.wifi)."""
    for k in ("device", "kommune"):
        if not config.get(k):
            raise UsageError(f"the OTA config needs '{k}'",
                             hint="give the device id and kommune, e.g. {\"device\": \"70B3D57ED0000001\", "
                                  "\"kommune\": \"0751\"} (docs/ota.md)")
    if checkin_key is not None:
        config = _with_key(config, checkin_key)
    # A board whose slots are ROMFS images (docs/ota.md, "ROM slots") has them mounted at /a and /b by boot.py,
    # which MicroPython runs after every reset, the raw REPL's soft reset too: the files go to the filesystem
    # under them (the next boot makes slot a's image from them). Elsewhere /a is no mount point: nothing to do.
    session.exec("import vfs\nfor _m in ('/a', '/b'):\n    try:\n        vfs.umount(_m)\n    except OSError:\n"
                 "        pass\n")
    files = slot_files(release_dir, "a")
    files[device_spec.OTA_ROOT] = root
    files[CONFIG] = json.dumps(config).encode()
    files[device_spec.OTA_BOOT] = _encode_state(dict(_STATE))
    files[device_spec.OTA_CONFIRMED] = b"a"
    if wifi:
        from .wifi import wifi_file

        files[device_spec.WIFI_CONFIG] = wifi_file(wifi)
    return deploy(session, files, progress=progress)


def read_config(session) -> dict:
    """The board's OTA config (/ota/config.json). Holds its check-in key: never print it whole."""
    try:
        text = session.eval(f"open({CONFIG!r}).read()")
    except BoardError:
        raise UsageError(f"the board on {session.port} has no readable {CONFIG}",
                         hint="provision it for OTA first (docs/ota.md)") from None
    try:
        cfg = json.loads(text)
    except ValueError:
        cfg = None
    if not isinstance(cfg, dict) or not cfg.get("device"):
        raise UsageError(f"{CONFIG} on the board on {session.port} is damaged (no 'device')",
                         hint="provision the board for OTA again (docs/ota.md)")
    return cfg


def _check_device(session, config: dict, device: str | None):
    """WrongBoard unless `device` (if given) is the device the board's OTA config names."""
    dev = str(config["device"]).upper()
    if device is not None and device.upper() != dev:
        raise WrongBoard(f"the board on {session.port} is device {dev}, not {device}",
                         hint="check --device against the board on the port; nothing was written")


def write_checkin_key(session, checkin_key, *, device: str | None = None, config: dict | None = None) -> str:
    """Puts `checkin_key` into the board's OTA config, leaving every other setting as it is (written to a
    temporary file, checked, then renamed: a power cut leaves the old config or the new one). `device`, if
    given, must be the board's. `config`: the board's config when the caller has just read it
    (read_config), so it is not read over the serial line twice. Returns the board's device id."""
    cfg = read_config(session) if config is None else config
    dev = str(cfg["device"])
    _check_device(session, cfg, device)
    data = json.dumps(_with_key(cfg, checkin_key)).encode()
    tmp = CONFIG + ".tmp"
    session.write_file(tmp, data)
    if session.sha256(tmp) != hashlib.sha256(data).digest():
        raise VerifyError(f"{tmp} on the board on {session.port} does not match what was sent; the old "
                          f"config was kept")
    session.exec(f"import os\nos.rename({tmp!r}, {CONFIG!r})\n")
    return dev


def give_checkin_key(session, store, *, device: str | None = None) -> str:
    """Gives the board on `session` a new check-in key: written into its OTA config (write_checkin_key),
    then sealed into the registry by `store` (an OtaStore). The board first: should the registry then fail,
    doing it again fixes both; the other way round a board with no key would be locked out even in
    migration mode, and its old key stops working either way. `device`: refuse (WrongBoard, nothing
    written) unless the board is this device. Returns the board's device id, upper case; the key is in no
    return value or message."""
    from fleet.rollout.auth import CheckinKey

    cfg = read_config(session)
    _check_device(session, cfg, device)
    key = CheckinKey.new(str(cfg["device"]).upper())
    write_checkin_key(session, key, config=cfg)
    store.save_checkin_key(key)
    return key.device


def enable(session, release_dir, *, root: bytes, config: dict, store, progress=None) -> tuple[str, DeployReport]:
    """Puts the board on OTA: provision() with a new check-in key of its own, then that key sealed into the
    registry by `store` (an OtaStore). The board first, as give_checkin_key does. Returns (device id upper
    case, the deploy report); the key is in no return value or message."""
    from fleet.rollout.auth import CheckinKey

    for k in ("device", "kommune", "server"):
        if not config.get(k):
            raise UsageError(f"the OTA config needs '{k}'",
                             hint="fleet ota enable --help shows where each setting comes from")
    owner = store.owner_kommune(str(config["device"]))
    if owner is not None and owner != config["kommune"]:
        raise Conflict(f"device {str(config['device']).upper()} belongs to kommune {owner} in the registry, not "
                       f"{config['kommune']}: the board was not written (the server would refuse its check-ins)",
                       hint=f"give --kommune {owner}, or check --device: 'fleet devices show "
                            f"{str(config['device']).upper()}' shows it")
    key = CheckinKey.new(str(config["device"]).upper())
    report = provision(session, release_dir, root=root, config=dict(config, device=key.device),
                       checkin_key=key, progress=progress)
    store.save_checkin_key(key)
    return key.device, report


def enrolled_identity(session) -> dict:
    """The DevEUI and kommune `fleet enroll --port` wrote to the board ({} for what it lacks): the defaults
    of an OTA config. Only those two values cross the line (lorawan.json also holds the AppKey)."""
    code = ("import json\nd = {}\n"
            f"try:\n d['device'] = json.load(open({device_spec.LORAWAN_CONFIG!r}))['dev_eui']\n"
            "except Exception:\n pass\n"
            f"try:\n d['kommune'] = json.load(open({device_spec.DEVICE_CONFIG!r}))['kommune']\n"
            "except Exception:\n pass\n"
            "print(json.dumps(d))\n")
    out = session.exec(code).strip().splitlines()
    return json.loads(out[-1]) if out else {}


# One check-in now, on the board (bysans.ota.client): what it runs, what the server answered (the first
# check-in's answer, caught on its way back), the outcome. poll(reboot=False): the board does not reset
# itself in the middle of the exec -- a reset ends the raw REPL's program without its end marker, which is
# what left `mpremote exec "client.Client().poll()"` waiting for ever after an update.
_SLOT_PATH = f"""import sys
try:
    _p = '/' + open({device_spec.OTA_CONFIRMED!r}).read().strip()
    if sys.path[0] != _p:
        sys.path.insert(0, _p)
except OSError:
    pass
"""
_CHECK_IN = _SLOT_PATH + """import json
from bysans.ota import client
c = client.Client()
slot, doc, dig = c.running()
if doc is None:
    from bysans.version import VERSION as v
else:
    v = doc['version']
print('@@' + json.dumps({'version': v, 'slot': slot, 'release': dig}))
doc = None
_ans = []
_orig = c._checkin
def _spy(quiet=False):
    t = _orig(quiet)
    if not _ans:
        _ans.append(t)
    return t
c._checkin = _spy
r = c.poll(reboot=False)
print('@@' + json.dumps({'take': _ans[0] if _ans else None, 'answered': bool(_ans), 'outcome': r}))
"""
_AFTER = _SLOT_PATH + """import json
from bysans.ota import slots, client
st = slots.load('/')
doc, dig = client.installed(slots.slot_dir(st['confirmed']))
v = doc['version'] if doc else None
doc = None
c = client.Client()
try:
    c.report()
    rep = None
except Exception as e:
    rep = '%s: %s' % (type(e).__name__, e)
print('@@' + json.dumps({'version': v, 'release': dig, 'slot': st['confirmed'], 'last': st['last'], 'report': rep}))
"""
_RESET = "from bysans.hal import board\nboard().reset()\n"


def _bounded(session, code: str, timeout: float) -> list[dict]:
    """Runs `code` on the board and returns the JSON objects it printed on lines starting '@@'. Never
    waits longer than `timeout` seconds: a board that resets or hangs is a BoardNotAnswering."""
    import serial
    from mpremote.transport import TransportError

    from fleet.errors import BoardNotAnswering, SerialPortError

    t = session.transport
    try:
        t.exec_raw_no_follow(code)
        out = t.read_until(1, b"\x04", timeout=None, timeout_overall=timeout)
        if not out.endswith(b"\x04"):
            reset = b"rst:" in out
            raise BoardNotAnswering(
                f"the board on {session.port} " + ("reset itself during the check-in" if reset else
                                                  f"did not finish the check-in within {timeout:g} s"),
                hint="run the same command again once it has booted; 'fleet sim status' or a serial monitor "
                     "shows what it does" + ("" if reset else " (a slow link: --timeout)"))
        err = t.read_until(1, b"\x04", timeout=None, timeout_overall=10)
    except (serial.SerialException, OSError) as e:
        raise SerialPortError(f"lost the serial port {session.port}: {e}") from None
    except TransportError as e:
        raise BoardNotAnswering(f"the board on {session.port} stopped answering: {e}") from None
    err = err[:-1].decode(errors="replace").strip()
    if err:
        raise BoardError(f"the board on {session.port} raised: {err.splitlines()[-1]}",
                         hint="is the board on OTA? fleet ota enable --port PORT (docs/ota.md)")
    return [json.loads(ln[2:]) for ln in out[:-1].decode(errors="replace").splitlines() if ln.startswith("@@")]


def _wait_booted(session, timeout: float) -> bytes:
    """After a reset: reads the board's output until its app has started (main.py's slot logic, a trial's
    self-test with it, is done once the app prints its first 'bysans' line) or it is at its REPL. Returns
    what it printed."""
    import time

    ser = session.transport.serial
    seen = b""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        seen += ser.read(ser.in_waiting or 1)
        tail = seen[seen.rfind(b"rst:"):] if b"rst:" in seen else b""
        if tail and (b"\nbysans " in tail or b">>> " in tail):
            time.sleep(0.3)
            return seen
    from fleet.errors import BoardNotAnswering

    raise BoardNotAnswering(f"the board on {session.port} did not come back within {timeout:g} s after its "
                            f"reset into the new release", hint="'fleet sim status' or a serial monitor shows "
                                                                 "what it does; then run the command again")


class _deadline:
    """Closes the session's serial port after `timeout` seconds, whatever the session waits for then
    (mpremote's raw-paste and prompt waits have no overall limit of their own): the wait ends with an
    error instead of going on for ever. Leaving the with-block in time cancels it."""

    def __init__(self, session, timeout: float):
        import threading

        self.session = session
        self.timeout = timeout
        self.fired = False
        self.timer = threading.Timer(timeout + 15, self._fire)

    def _fire(self):
        self.fired = True
        try:
            self.session.transport.serial.close()
        except Exception:  # noqa: BLE001 - closing is all that is wanted
            pass

    def __enter__(self):
        self.timer.start()
        return self

    def __exit__(self, *exc):
        self.timer.cancel()
        if self.fired and exc[0] is not None:
            from fleet.errors import BoardNotAnswering

            raise BoardNotAnswering(f"the board on {self.session.port} did not finish the check-in within "
                                    f"{self.timeout:g} s", hint="reset the board and run the same command "
                                    "again; 'fleet sim status' or a serial monitor shows what it does") from None
        return False


def check_in(open_session, *, timeout: float = 120.0) -> dict:
    """Makes the board check in now and returns what happened:
    {"before": {version, slot, release}, "answered": bool, "take": repository path or None,
     "outcome": the client's record (state, reason, detail, target, ...), "took": bool,
     "after": {version, slot, last, report} when it took a release}.
    `open_session`: a function returning a new Session on the board's port (the board is reset between the
    install and the confirmation, so a second session is needed). Every wait is bounded by `timeout`."""
    with open_session() as s, _deadline(s, timeout):
        before, answer = _bounded(s, _CHECK_IN, timeout)
        result = {"before": before, **answer, "took": answer["outcome"].get("state") == "installed"}
        if not result["took"]:
            return result
        # the release is in the other slot and switched to: reset into it, as the client would have
        s.transport.exec_raw_no_follow(_RESET)
        _wait_booted(s, timeout)
    with open_session() as s, _deadline(s, timeout):
        [after] = _bounded(s, _AFTER, timeout)
    result["after"] = after
    return result
