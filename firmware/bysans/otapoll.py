# The node's OTA check-in (docs/node.md "OTA"): after the cycle, at most every ota_every_s (bysans.node
# decides when), on a board with OTA set up (/ota/config.json, which provisioning.ota writes). It runs the
# OTA client's service() (bysans.ota.client: check in; download, verify and install a newer release into
# the inactive slot; reset into it). Whatever happens there, the node's cycle is already done and saved:
# run() never raises and returns one line for the log.
import os

from micropython import const

from bysans.device_spec import OTA_CONFIG
WATCHDOG_MS = const(120000)  # the watchdog while the client runs: a download takes longer than a cycle


def configured(path=OTA_CONFIG):
    try:
        os.stat(path)
        return True
    except OSError:
        return False


def run(board, client=None, feed=None):
    """One check-in (and update, if the server names a new release; the client then resets the board).
    `client`: the OTA client to use (default: bysans.ota.client.Client(board)); `feed`: the watchdog's,
    for the client's WiFi join. Returns one log line."""
    try:
        if client is None:
            from bysans.ota.client import Client

            client = Client(board)
        client.feed = feed
        r = client.service()
    except Exception as e:  # noqa: BLE001 - a failed check-in never costs the node its cycle
        return "ota: failed, %s: %s" % (type(e).__name__, e)
    if r is None:
        return "ota: not due (the client's own back-off)"
    s = "ota: " + str(r.get("state"))
    if r.get("reason"):
        s += " " + str(r["reason"])
    if r.get("reason") == "NO_NETWORK":
        s += " (" + str(r.get("detail")) + ")"  # which join outcome: no AP, a wrong password, ...
    return s
