"""The fleet API for kommuner (JSON; every call needs a kommune's bearer token, see _telemetry.py):

    GET   /api/status                        the overview (fleet status --json), ?kommune=K narrows
    GET   /api/devices                       the token's devices, with their health
    GET   /api/devices/{dev_eui}             one device, its health and newest readings (?readings=N)
    PATCH /api/devices/{dev_eui}             change name, site, latitude/longitude, state (audited)
    GET   /api/alerts                        open alerts (?all=1 with resolved ones)
    POST  /api/alerts/{id}/ack               acknowledge an alert

A device of another kommune is 404, exactly like one that does not exist. Responses hold no secrets: no
AppKeys, no tokens, no token hashes.
"""

from starlette.routing import Route

from ...errors import UsageError
from ...telemetry import fleet_status
from ..web import json_response, parse_json, query, threaded
from . import _telemetry as T

_PATCHABLE = ("name", "site", "latitude", "longitude", "state")


def routes(ctx):
    def status(req, body):
        op, q = T.operator(ctx, req), query(req)
        return json_response(fleet_status(T.registry(ctx), op, kommune=q.get("kommune") or None,
                                          rules=T.store(ctx).rules))

    def devices(req, body):
        op, q = T.operator(ctx, req), query(req)
        st = fleet_status(T.registry(ctx), op, kommune=q.get("kommune") or None, with_devices=True,
                          list_limit=0, rules=T.store(ctx).rules)
        return json_response({"devices": st["devices"]})

    def device(req, body):
        op, q = T.operator(ctx, req), query(req)
        st = T.store(ctx)
        d = T.registry(ctx).get_device(op, req.path_params["dev_eui"])
        try:
            n = min(int(q.get("readings", 20)), 1000)
        except ValueError:
            raise UsageError("readings=N takes a number") from None
        return json_response({"device": d.to_dict(), "health": st.health(op, d.dev_eui),
                              "readings": st.readings(op, d.dev_eui, limit=n)})

    def patch_device(req, body):
        op = T.operator(ctx, req)
        body = parse_json(body)
        if not isinstance(body, dict) or not body:
            raise UsageError("send a JSON object with the fields to change", hint=f"fields: {', '.join(_PATCHABLE)}")
        bad = sorted(set(body) - set(_PATCHABLE))
        if bad:
            raise UsageError(f"cannot change {', '.join(bad)} here", hint=f"fields: {', '.join(_PATCHABLE)}")
        d = T.registry(ctx).update_device(op, req.path_params["dev_eui"], note="api", **body)
        return json_response({"device": d.to_dict()})

    def alerts(req, body):
        op, q = T.operator(ctx, req), query(req)
        return json_response({"alerts": T.store(ctx).alerts(op, kommune=q.get("kommune") or None,
                                                           include_resolved=q.get("all") in ("1", "true"))})

    def ack(req, body):
        op = T.operator(ctx, req)
        try:
            alert_id = int(req.path_params["id"])
        except ValueError:
            raise UsageError("an alert id is a number") from None
        return json_response({"alert": T.store(ctx).ack_alert(op, alert_id)})

    return [Route("/api/status", threaded(status), methods=["GET"]),
            Route("/api/devices", threaded(devices), methods=["GET"]),
            Route("/api/devices/{dev_eui}", threaded(device), methods=["GET"]),
            Route("/api/devices/{dev_eui}", threaded(patch_device), methods=["PATCH"]),
            Route("/api/alerts", threaded(alerts), methods=["GET"]),
            Route("/api/alerts/{id}/ack", threaded(ack), methods=["POST"])]
