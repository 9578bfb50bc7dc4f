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
from fleet.errors import UsageError, VerifyError, WrongBoard
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
