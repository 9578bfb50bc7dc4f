"""POST /api/ingest/os2iot: an OS2iot "HTTP push" data target (also takes ChirpStack v4 or TTS v3 events).

Configure the data target in OS2iot with this URL, the header `Authorization: Bearer TOKEN` (a kommune's
token, fleet tokens create --kommune K), and no payload decoder on the connection, so OS2iot passes the
ChirpStack event on (devEui, fCnt, fPort, base64 data, rxInfo). The body may be one event or a JSON list.

The token's kommune scopes the write: another kommune's device is rejected as unknown. The answer says
what happened: {"stored", "duplicates", "rejected": [{"reason", "message"}], "alerts"}; 200 when something
was stored or was a duplicate, 422 when every event was rejected (OS2iot does not retry either way).
"""

from starlette.routing import Route

from ...errors import MalformedUplink
from ...telemetry import parse_event
from ..web import json_response, parse_json, query, threaded
from . import _telemetry as T

MAX_EVENTS = 1000


def routes(ctx):
    def ingest(req, body):
        op = T.operator(ctx, req)
        body = parse_json(body)
        events = body if isinstance(body, list) else [body]
        if len(events) > MAX_EVENTS:
            return json_response({"error": f"at most {MAX_EVENTS} events per request"}, 413)
        fmt = query(req).get("format", "os2iot")
        uplinks, rejected = [], []
        for e in events:
            try:
                uplinks.append(parse_event(e, "os2iot" if fmt not in ("chirpstack", "tts") else fmt))
            except MalformedUplink as err:
                rejected.append((err.reason, err.message, None))
        result = T.store(ctx).ingest(uplinks, operator=op)
        rejected += result.rejected
        out = {"stored": result.stored, "readings": result.readings, "duplicates": result.duplicates,
               "rejected": [{"reason": r, "message": m} for r, m, _ in rejected],
               "alerts": [{"id": a["id"], "kind": a["kind"], "dev_eui": a["dev_eui"]} for a in result.alerts]}
        ok = result.stored or result.duplicates or not events
        return json_response(out, 200 if ok else 422)

    return [Route("/api/ingest/os2iot", threaded(ingest), methods=["POST"])]
