"""The update server: the static update repository under /repo/ and device check-ins.

    GET  /repo/<path>      files of ctx.repo_dir (fleet release publish DIR), as a static server would
    POST /api/checkin?mac=<hex>   a device's state (docs/formats/update-repository.md, "Check-in"),
                           authenticated by its check-in key (fleet/rollout/auth.py); the answer names the
                           repository file it should take ("take"), or null to stay as it is. A bad or
                           missing MAC: 401, counted, and nothing recorded. Check-ins are recorded
                           by one writer thread, in batches (fleet/serve/checkins.py).
    GET  /api/ota/devices/<device>   the last check-in of a device (JSON; never a key); a kommune's token
                           (fleet tokens create) sees its own devices only: another's is 404
    GET  /api/ota/checkins  what check-in authentication decided since the server started (counts; any token)

A board that checks in for another kommune than the registry's is refused with 403 (wrong_kommune).

Options (ctx.options, or the environment): accept_keyless (FLEET_ACCEPT_KEYLESS=1): accept check-ins
without a MAC from known devices that have no key yet, while migrating (docs/ota.md, "Check-in keys").

Authenticity of releases never depends on this server: devices check every signature themselves.
"""

import asyncio
import logging
import os
from pathlib import Path

from starlette.responses import Response
from starlette.routing import Route

from ...errors import CheckinRejected, NotFound, SecretKeyError
from . import _telemetry as T
from ..checkins import CheckinWriter
from ..web import HTTPError, json_response, read_body, threaded

log = logging.getLogger("fleet.serve")

_TYPES = {".json": "application/json", ".z": "application/zlib"}


def _store(ctx):
    def make():  # the first check-ins arrive together: one store, on the server's one database
        from ...rollout import OtaStore

        # options["sealer"]: opens check-in keys (default: the registry's key, FLEET_SECRET_KEY / key file)
        return OtaStore(ctx.database(), sealer=ctx.options.get("sealer"))

    return ctx.shared("ota_store", make)


def _writer(ctx) -> CheckinWriter:
    store = _store(ctx)
    poll_s = int(ctx.options.get("poll_s", os.environ.get("FLEET_POLL_S", 3600)))
    return ctx.shared("ota_checkin_writer", lambda: CheckinWriter(
        store, repo_dir=ctx.repo_dir, poll_s=poll_s, accept_keyless=accept_keyless(ctx)))


def routes(ctx):
    def repo_file(req, body):
        if ctx.repo_dir is None:
            raise NotFound("this server has no update repository", hint="start it with fleet serve --repo DIR")
        rel = req.path_params["path"]
        parts = rel.split("/")
        if any(p in ("", ".", "..") or p.startswith(".") for p in parts) or "\\" in rel:
            raise HTTPError(400, "not a repository path")
        base = Path(ctx.repo_dir).resolve()
        path = base.joinpath(*parts)
        if not path.is_file():
            raise NotFound(f"nothing at /repo/{rel}")
        data = path.read_bytes()
        return Response(data, 200, {"Cache-Control": "no-cache" if parts[0] in ("channels", "repository.json")
                                    else "public, max-age=86400, immutable"},
                        media_type=_TYPES.get(path.suffix, "application/octet-stream"))

    async def checkin(req):
        body = await read_body(req)
        writer = ctx.cached("ota_checkin_writer") or await asyncio.to_thread(_writer, ctx)  # opens it once
        try:
            answer = await asyncio.wrap_future(writer.submit(body, req.query_params.get("mac")))
        except CheckinRejected as e:
            log.warning("check-in rejected (%s) for device %s from %s", e.reason, e.device,
                        req.client.host if req.client else "?")
            raise
        except SecretKeyError as e:  # the server's own set-up: not the device's fault
            log.error("check-in keys cannot be opened: %s", e.message)
            raise HTTPError(503, "the server cannot open check-in keys", hint=e.hint) from None
        return json_response(answer)

    def checkin_stats(req, body):
        T.operator(ctx, req)  # counts over every kommune: any valid token
        return json_response(dict(_store(ctx).checkin_stats(), accept_keyless=accept_keyless(ctx)))

    def device(req, body):
        op = T.operator(ctx, req)
        d = _store(ctx).device(req.path_params["device"])
        # another kommune's device is 404, exactly like one that has not checked in (as /api/devices/...)
        if d is None or not op.may_act_for(d["kommune_kode"]):
            raise NotFound(f"device {req.path_params['device']} has not checked in"
                           + ("" if op.cross_kommune else f" in kommune {op.kommune}"))
        return json_response(d)

    return [Route("/repo/{path:path}", threaded(repo_file), methods=["GET"]),
            Route("/api/checkin", checkin, methods=["POST"]),
            Route("/api/ota/devices/{device}", threaded(device), methods=["GET"]),
            Route("/api/ota/checkins", threaded(checkin_stats), methods=["GET"])]


def accept_keyless(ctx) -> bool:
    v = ctx.options.get("accept_keyless")
    if v is None:
        v = os.environ.get("FLEET_ACCEPT_KEYLESS", "").lower() in ("1", "true", "yes")
    return bool(v)
