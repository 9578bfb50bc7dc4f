"""POST /api/ingest/os2iot: an OS2iot "HTTP push" data target (also takes ChirpStack v4 or TTS v3 events).

Configure the data target in OS2iot with this URL, the header `Authorization: Bearer TOKEN` (a kommune's
token, fleet tokens create --kommune K), and no payload decoder on the connection, so OS2iot passes the
ChirpStack event on (devEui, fCnt, fPort, base64 data, rxInfo). The body may be one event or a JSON list.

The token's kommune scopes the write: another kommune's device is rejected as unknown. The answer says
what happened: {"stored", "readings", "duplicates", "ignored": {why: n}, "rejected": [{"reason",
"message"}], "alerts"}.

Status codes, so that OS2iot's data-target log shows only what its operator must fix (OS2iot never
retries a push either way):
- 200 for every body that is events, whatever became of them: stored, duplicates, ignored (MAC-only
  uplinks, other FPorts, TTS's simulated uplinks) and rejected at the data level (an unknown or retired
  device, an undecodable payload, an event without a DevEUI): those are the counts in the answer and in
  the log here, not the sender's fault.
- 400 when the body is not JSON, or not an event (a JSON object) or a list of them: a malformed request.
- 401 without a valid token, 413 past MAX_EVENTS events or the body size limit; 503 when the registry
  itself cannot be used (damaged, read-only, its database down).
"""

import logging

from starlette.routing import Route

from ...errors import MalformedUplink
from ...telemetry import parse_event
from ..web import HTTPError, json_response, parse_json, query, threaded
from . import _telemetry as T

MAX_EVENTS = 1000
log = logging.getLogger("fleet.serve.ingest")


def routes(ctx):
    def ingest(req, body):
        op = T.operator(ctx, req)
        body = parse_json(body)
        events = body if isinstance(body, list) else [body]
        if not all(isinstance(e, dict) for e in events):
            raise HTTPError(400, "the body is not an event (a JSON object) or a list of events",
                            hint="send the network server's uplink event as it is, one or a list")
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
        for reason, message, _ in rejected:
            log.warning("os2iot push from %s: %s (%s)", op.name, message, reason)
        out = {"stored": result.stored, "readings": result.readings, "duplicates": result.duplicates,
               "ignored": dict(result.ignored), "fuota": dict(result.fuota),
               "rejected": [{"reason": r, "message": m} for r, m, _ in rejected],
               "alerts": [{"id": a["id"], "kind": a["kind"], "dev_eui": a["dev_eui"]} for a in result.alerts]}
        return json_response(out, 200)

    return [Route("/api/ingest/os2iot", threaded(ingest), methods=["POST"])]
