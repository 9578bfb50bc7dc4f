"""Provisioning a board for OTA updates over serial: a signed release in app slot /a, the trusted root the
device starts its chain from, its OTA settings, and the tiny /boot.py and /main.py (docs/ota.md).

    with Session(port) as s:
        provision(s, "rel-1.0.0", root=keystore.root_path(1).read_bytes(),
                  config={"server": "http://10.0.0.2:8080", "device": "70B3D57ED0000001", "kommune": "0751"})
"""

import json
from pathlib import Path

from fleet.errors import UsageError
from fleet.release.build import FILES, MANIFEST

from .deploy import DeployReport, deploy

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


def provision(session, release_dir, *, root: bytes, config: dict, progress=None) -> DeployReport:
    """Writes the release into slot /a and the OTA set-up; the board then boots slot a as confirmed."""
    for k in ("device", "kommune"):
        if not config.get(k):
            raise UsageError(f"the OTA config needs '{k}'")
    files = slot_files(release_dir, "a")
    files["/ota/root.json"] = root
    files["/ota/config.json"] = json.dumps(config).encode()
    files["/ota/boot.json"] = _encode_state(dict(_STATE))
    files["/ota/confirmed"] = b"a"
    return deploy(session, files, progress=progress)
