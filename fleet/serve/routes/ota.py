"""The update server: the static update repository under /repo/ and device check-ins.

    GET  /repo/<path>      files of ctx.repo_dir (fleet release publish DIR), as a static server would
    POST /api/checkin?mac=<hex>   a device's state (docs/formats/update-repository.md, "Check-in"),
                           authenticated by its check-in key (fleet/rollout/auth.py); the answer names the
                           repository file it should take ("take"), or null to stay as it is. A bad or
                           missing MAC: 401, counted, and nothing recorded.
    GET  /api/ota/devices/<device>   the last check-in of a device (JSON; never a key)
    GET  /api/ota/checkins  what check-in authentication decided since the server started (counts)

Options (ctx.options, or the environment): accept_keyless (FLEET_ACCEPT_KEYLESS=1): accept check-ins
without a MAC from known devices that have no key yet, while migrating (docs/ota.md, "Check-in keys").

Authenticity of releases never depends on this server: devices check every signature themselves.
"""

import logging
import os
import threading
from pathlib import Path

from ...errors import CheckinRejected, NotFound, SecretKeyError
from ..http import HTTPError, Response

log = logging.getLogger("fleet.serve")

_TYPES = {".json": "application/json", ".z": "application/zlib"}


_LOCK = threading.Lock()


def _store(ctx):
    with _LOCK:  # the first check-ins arrive together: one store
        store = ctx._cache.get("ota_store")
        if store is None:
            from ...rollout import OtaStore

            # options["sealer"]: opens check-in keys (default: the registry's key, FLEET_SECRET_KEY / key file)
            store = ctx._cache["ota_store"] = OtaStore(ctx.database(), sealer=ctx.options.get("sealer"))
        return store


def register(router, ctx):
    def repo_file(req):
        if ctx.repo_dir is None:
            raise NotFound("this server has no update repository", hint="start it with fleet serve --repo DIR")
        rel = req.params["path"]
        parts = rel.split("/")
        if any(p in ("", ".", "..") or p.startswith(".") for p in parts) or "\\" in rel:
            raise HTTPError(400, "not a repository path")
        base = Path(ctx.repo_dir).resolve()
        path = base.joinpath(*parts)
        if not path.is_file():
            raise NotFound(f"nothing at /repo/{rel}")
        data = path.read_bytes()
        return Response(200, data, _TYPES.get(path.suffix, "application/octet-stream"),
                        {"Cache-Control": "no-cache" if parts[0] in ("channels", "repository.json") else
                         "public, max-age=86400, immutable"})

    def checkin(req):
        store = _store(ctx)
        try:
            report = store.authenticate(req.body, req.query.get("mac"), accept_keyless=accept_keyless(ctx))
        except CheckinRejected as e:
            log.warning("check-in rejected (%s) for device %s from %s", e.reason, e.device, req.client)
            raise
        except SecretKeyError as e:  # the server's own set-up: not the device's fault
            log.error("check-in keys cannot be opened: %s", e.message)
            raise HTTPError(503, "the server cannot open check-in keys", hint=e.hint) from None
        answer = store.checkin(report, ctx.repo_dir,
                               poll_s=int(ctx.options.get("poll_s", os.environ.get("FLEET_POLL_S", 3600))))
        return Response.json(answer)

    def checkin_stats(req):
        return Response.json(dict(_store(ctx).checkin_stats(), accept_keyless=accept_keyless(ctx)))

    def device(req):
        d = _store(ctx).device(req.params["device"])
        if d is None:
            raise NotFound(f"device {req.params['device']} has not checked in")
        return Response.json(d)

    router.add("GET", "/repo/{path:path}", repo_file)
    router.add("POST", "/api/checkin", checkin)
    router.add("GET", "/api/ota/devices/{device}", device)
    router.add("GET", "/api/ota/checkins", checkin_stats)


def accept_keyless(ctx) -> bool:
    v = ctx.options.get("accept_keyless")
    if v is None:
        v = os.environ.get("FLEET_ACCEPT_KEYLESS", "").lower() in ("1", "true", "yes")
    return bool(v)
