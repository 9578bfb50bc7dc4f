"""A FUOTA deployment folder (docs/formats/fuota.md, "Deployment") as the lab sends it: the devices enrolled in
the lab's registry, `fleet rollout start --via lorawan` run against it, its folder read (unicast.txt's set-up
requests, frames.txt's multicast frames, bytes as written), and what the network server hears handed to
TelemetryStore.ingest as ChirpStack v4 events stamped with the network's time. Used by lab.fuota_air.

    enroll(db_url, key, devices)          the boards in the lab's registry (Aarhus, running `version`)
    start(db_url, key, args)              `fleet rollout start --via lorawan ... --json`: its summary
    Folder(path)                          the folder's payload, fragments, frames, each device's requests
    mc_group(setup_req, app_key)          the group a McGroupSetupReq sets up (as the network server knows it)
    ingest(db_url, ns, uplinks, ports)    the uplinks on `ports` through TelemetryStore.ingest: FUOTA counts
    status(db_url)                        `fleet rollout status --via lorawan --devices --json`
"""

from __future__ import annotations

import base64
import json
import struct
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

KOMMUNE = "0751"


def _env(key: bytes) -> dict:
    return {"FLEET_SECRET_KEY": base64.urlsafe_b64encode(key).decode()}


def enroll(db_url: str, key: bytes, devices, *, version: str = "1.0.0"):
    """`devices`: (dev_eui, join_eui, app_key) bytes each; enrolled active in Aarhus as virtual waste nodes."""
    from fleet.identifiers import Identity
    from fleet.registry import NewDevice, Operator, Registry

    reg = Registry.open(db_url, key=key)
    try:
        reg.add_devices(Operator("lab", kommune=KOMMUNE), [
            (NewDevice(kommune=KOMMUNE, site="lab", kind="waste", board="virtual", name=f"fuota-air-{k}",
                       firmware_version=version),
             Identity(dev_eui=bytes(d).hex().upper(), join_eui=bytes(j).hex().upper(), app_key=bytes(a)))
            for k, (d, j, a) in enumerate(devices)], state="active")
    finally:
        reg.close()


def _cli(args, key: bytes) -> str:
    # the installed `fleet` command beside this interpreter, as an admin runs it (the lab never imports the CLI)
    import os
    import subprocess
    import sys

    exe = Path(sys.executable).parent / "fleet"
    r = subprocess.run([str(exe), *args], env={**os.environ, **_env(key)}, capture_output=True, text=True,
                       timeout=120)
    if r.returncode != 0:
        raise AssertionError(f"fleet {' '.join(args[:2])}: {r.stdout}{r.stderr}")
    return r.stdout


def start(db_url: str, key: bytes, args) -> dict:
    return json.loads(_cli(["rollout", "start", "--via", "lorawan", *args, "--operator", "lab", "--json",
                            "--db", db_url], key))


def status(db_url: str) -> dict:
    return json.loads(_cli(["rollout", "status", "--via", "lorawan", "--kommune", "751", "--devices", "--json",
                            "--db", db_url], b"\0" * 32))


@dataclass
class Folder:
    path: Path
    payload: bytes = b""
    fragments: list = field(default_factory=list)
    frames: list = field(default_factory=list)       # (GPS s, multicast FCnt, PHYPayload)
    requests: dict = field(default_factory=dict)     # dev_eui hex -> [(FPort, payload)], in order

    def __post_init__(self):
        p = Path(self.path)
        self.payload = (p / "payload.bin").read_bytes()
        self.fragments = [bytes.fromhex(ln) for ln in (p / "fragments.txt").read_text().split()]
        for ln in (p / "frames.txt").read_text().splitlines():
            if ln and not ln.startswith("#"):
                at, fcnt, phy = ln.split()
                self.frames.append((float(at), int(fcnt), bytes.fromhex(phy)))
        for ln in (p / "unicast.txt").read_text().splitlines():
            if ln and not ln.startswith("#"):
                dev, port, payload = ln.split()
                self.requests.setdefault(dev.lower(), []).append((int(port), bytes.fromhex(payload)))


def mc_group(setup_req: bytes, app_key: bytes):
    """The multicast group (McKey recovered with the device's McKEKey) a McGroupSetupReq sets up: what the
    network server, which holds the device's keys, can frame more with (the lab's forged and noisy air)."""
    from fleet.fuota import multicast as mc
    from fleet.lorawan.crypto import aes_encrypt

    gid, addr = setup_req[1] & 0x03, struct.unpack("<I", setup_req[2:6])[0]
    kek = mc.mc_ke_key(mc.mc_root_key(app_key))
    return mc.Group(gid, addr, aes_encrypt(kek, bytes(setup_req[6:22])))


def network_time(ns, up) -> datetime:
    """When the network heard an uplink, in its own time (its gateway's GPS time mapped onto the network's)."""
    from fleet.fuota import clock as fclock

    gw = ns.devices[bytes.fromhex(up.dev_eui)].gateway
    gps = fclock.rxpk_gps_time(up.rxpk) + round(ns.gw_offset.get(gw, 0))
    return datetime.fromtimestamp(fclock.unix_time(gps), timezone.utc)


def chirpstack_event(up, at) -> dict:
    """A network server's uplink as ChirpStack v4 publishes it (application/.../event/up): what
    `fleet ingest mqtt` reads."""
    return {"deduplicationId": f"{up.dev_eui}-{up.fcnt}", "time": at.isoformat(),
            "deviceInfo": {"devEui": up.dev_eui, "tenantName": "lab"}, "fCnt": up.fcnt, "fPort": up.fport,
            "data": base64.b64encode(bytes(up.payload)).decode(), "rxInfo": [{"rssi": -80, "snr": 7.5}],
            "txInfo": {"frequency": 868100000}, "dr": 5}


def ingest(db_url: str, ns, uplinks, ports):
    """The uplinks on `ports` as ChirpStack events through TelemetryStore.ingest with Aarhus' writer (the path
    of `fleet ingest mqtt` and OS2iot's POST), stamped with the network's time. Returns ingest's FUOTA counts."""
    from fleet.registry import Operator, Registry
    from fleet.telemetry import TelemetryStore, parse_event

    ups = [parse_event(json.dumps(chirpstack_event(u, network_time(ns, u))), "chirpstack")
           for u in uplinks if u.fport in ports]
    reg = Registry.open(db_url, key=b"\0" * 32)
    try:
        return dict(TelemetryStore(reg).ingest(ups, operator=Operator("lab-ingest", kommune=KOMMUNE)).fuota)
    finally:
        reg.close()
