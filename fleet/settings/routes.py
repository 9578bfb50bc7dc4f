"""Where a settings command goes: the body of ChirpStack v4's device queue API, or the lab network server.

ChirpStack v4 (4.0 and later; the REST API of chirpstack-rest-api, from chirpstack/api/device.proto's
DeviceService.Enqueue):
    POST {url}/api/devices/{devEui}/queue
    {"queueItem": {"devEui": "...", "confirmed": false, "fPort": 3, "data": "<base64>"}}
with the API token in `Grpc-Metadata-Authorization: Bearer <token>` (fleet.exports.chirpstack).
The lab network server (lab/netserver.py) takes the same frame with ns.queue(dev_eui, fport=, payload=).
"""

import base64

from . import spec


def chirpstack_queue(command: dict) -> dict:
    """{"method", "path", "body"} of ChirpStack v4's enqueue call for one command of SettingsStore.queue()."""
    eui = command["dev_eui"].lower()
    data = base64.b64encode(bytes.fromhex(command["payload_hex"])).decode()
    return {"method": "POST", "path": f"/api/devices/{eui}/queue",
            "body": {"queueItem": {"devEui": eui, "confirmed": False, "fPort": spec.fport(), "data": data}}}


def lab_queue(ns, command: dict) -> None:
    """Queues one command on a lab.netserver.NetworkServer: it goes out after the device's next uplink."""
    ns.queue(bytes.fromhex(command["dev_eui"]), fport=spec.fport(), payload=bytes.fromhex(command["payload_hex"]))
