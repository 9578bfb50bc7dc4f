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

from ...errors import UsageError
from ...telemetry import fleet_status
from ..http import Response
from . import _telemetry as T

_PATCHABLE = ("name", "site", "latitude", "longitude", "state")


def register(router, ctx):
    def status(req):
        op = T.operator(ctx, req)
        return Response.json(fleet_status(T.registry(ctx), op, kommune=req.query.get("kommune") or None,
                                          rules=T.store(ctx).rules))

    def devices(req):
        op = T.operator(ctx, req)
        st = fleet_status(T.registry(ctx), op, kommune=req.query.get("kommune") or None, with_devices=True,
                          list_limit=0, rules=T.store(ctx).rules)
        return Response.json({"devices": st["devices"]})

    def device(req):
        op = T.operator(ctx, req)
        st = T.store(ctx)
        d = T.registry(ctx).get_device(op, req.params["dev_eui"])
        try:
            n = min(int(req.query.get("readings", 20)), 1000)
        except ValueError:
            raise UsageError("readings=N takes a number") from None
        return Response.json({"device": d.to_dict(), "health": st.health(op, d.dev_eui),
                              "readings": st.readings(op, d.dev_eui, limit=n)})

    def patch_device(req):
        op = T.operator(ctx, req)
        body = req.json()
        if not isinstance(body, dict) or not body:
            raise UsageError("send a JSON object with the fields to change", hint=f"fields: {', '.join(_PATCHABLE)}")
        bad = sorted(set(body) - set(_PATCHABLE))
        if bad:
            raise UsageError(f"cannot change {', '.join(bad)} here", hint=f"fields: {', '.join(_PATCHABLE)}")
        d = T.registry(ctx).update_device(op, req.params["dev_eui"], note="api", **body)
        return Response.json({"device": d.to_dict()})

    def alerts(req):
        op = T.operator(ctx, req)
        return Response.json({"alerts": T.store(ctx).alerts(op, kommune=req.query.get("kommune") or None,
                                                           include_resolved=req.query.get("all") in ("1", "true"))})

    def ack(req):
        op = T.operator(ctx, req)
        try:
            alert_id = int(req.params["id"])
        except ValueError:
            raise UsageError("an alert id is a number") from None
        return Response.json({"alert": T.store(ctx).ack_alert(op, alert_id)})

    router.add("GET", "/api/status", status)
    router.add("GET", "/api/devices", devices)
    router.add("GET", "/api/devices/{dev_eui}", device)
    router.add("PATCH", "/api/devices/{dev_eui}", patch_device)
    router.add("GET", "/api/alerts", alerts)
    router.add("POST", "/api/alerts/{id}/ack", ack)
