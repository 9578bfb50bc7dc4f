# The node's OTA check-in (docs/node.md "OTA"): after the cycle, at most every ota_every_s (bysans.node
# decides when), on a board with OTA set up (/ota/config.json, which provisioning.ota writes). It runs the
# OTA client's service() (bysans.ota.client: check in; download, verify and install a newer release into
# the inactive slot; reset into it) on the node's schedule: only a failure's back-off holds it back, never
# the server's poll_s hint (an hour: a node checking in more often would boot for "not due" in between).
# After an update's reset the node checks in at its first wake (report_due): the server learns the
# release was confirmed or rolled back then, not ota_every_s later. Whatever happens there, the node's
# cycle is already done and saved: run() never raises and returns one line for the log. When the WiFi join
# failed, its outcome goes to NET_STATUS, which the node's next uplinks report (bysans.node, payload_spec
# NET_FLAG); a later check-in that gets through the join removes it.
import json
import os

from micropython import const

from bysans.device_spec import OTA_CONFIG, OTA_DIR

NET_STATUS = "/net_status"  # the last failed WiFi join's outcome, as text; removed once a join gets through
CLIENT_STATE = OTA_DIR + "/client.json"  # the OTA client's last outcome (bysans.ota.client)
REPORTED = OTA_DIR + "/reported"  # the release whose outcome a check-in was brought forward for (report_due)
WATCHDOG_MS = const(120000)  # the watchdog while the client runs: a download takes longer than a cycle


def configured(path=OTA_CONFIG):
    try:
        os.stat(path)
        return True
    except OSError:
        return False


def report_due(path=None, done=None):
    """True when the OTA client installed a release and reset into it, and no check-in has reported since
    (its state in CLIENT_STATE is still "installed"): the update's outcome is for the server to learn at
    once. True once per release (kept in REPORTED): a check-in that resets the board before it reports
    (a brown-out as the radio comes on) is not brought forward again and again."""
    try:
        with open(path or CLIENT_STATE) as f:
            last = json.loads(f.read())
        if last.get("state") != "installed":
            return False
        target = str(last.get("target"))
        done = done or REPORTED
        try:
            with open(done) as f:
                if f.read() == target:
                    return False
        except OSError:
            pass
        with open(done, "w") as f:
            f.write(target)
        return True
    except (OSError, ValueError, AttributeError):
        return False  # no client state yet, or flash full: the check-in comes on its schedule


def note_network(r, path=NET_STATUS):
    """Keeps a failed join's outcome (NO_AP_FOUND, WRONG_PASSWORD, ...) in `path` for the node's uplinks;
    removes it once a check-in got through the join. `r`: the client's outcome dict."""
    try:
        if r.get("reason") == "NO_NETWORK":
            detail = str(r.get("detail") or "")
            with open(path, "w") as f:
                f.write(detail[5:] if detail.startswith("wifi ") else detail)
        else:
            os.remove(path)
    except OSError:
        pass  # no file to remove, or flash full: the status is a report, never a reason to fail


def run(board, client=None, feed=None, net_status=NET_STATUS):
    """One check-in (and update, if the server names a new release; the client then resets the board).
    `client`: the OTA client to use (default: bysans.ota.client.Client(board)); `feed`: the watchdog's,
    for the client's WiFi join; net_status: where a failed join's outcome is kept (note_network). Returns one
    log line."""
    try:
        if client is None:
            from bysans.ota.client import Client

            client = Client(board)
        client.feed = feed
        r = client.service(scheduled=True)  # the node's ota_every_s is the schedule, not the server's poll_s
    except Exception as e:  # noqa: BLE001 - a failed check-in never costs the node its cycle
        return "ota: failed, %s: %s" % (type(e).__name__, e)
    if r is None:
        return "ota: not due (the client's own back-off)"
    note_network(r, net_status)
    s = "ota: " + str(r.get("state"))
    if r.get("reason"):
        s += " " + str(r["reason"])
    if r.get("reason") == "NO_NETWORK":
        s += " (" + str(r.get("detail")) + ")"  # which join outcome: no AP, a wrong password, ...
    return s
