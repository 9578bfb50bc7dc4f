"""The update server: the static update repository under /repo/ and device check-ins.

    GET  /repo/<path>      files of ctx.repo_dir (fleet release publish DIR), as a static server would
    POST /api/checkin      a device's state (docs/formats/update-repository.md, "Check-in"); the answer
                           names the repository file it should take ("take"), or null to stay as it is
    GET  /api/ota/devices/<device>   the last check-in of a device (JSON)

Authenticity never depends on this server: devices check every signature themselves.
"""

import os
import threading
from pathlib import Path

from ...errors import NotFound
from ..http import HTTPError, Response

_TYPES = {".json": "application/json", ".z": "application/zlib"}


_LOCK = threading.Lock()


def _store(ctx):
    with _LOCK:  # the first check-ins arrive together: open (and migrate) the registry once
        store = ctx._cache.get("ota_store")
        if store is None:
            from ...rollout import OtaStore

            store = ctx._cache["ota_store"] = OtaStore.open(ctx.db_url)
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
        answer = _store(ctx).checkin(req.json(), ctx.repo_dir,
                                     poll_s=int(ctx.options.get("poll_s", os.environ.get("FLEET_POLL_S", 3600))))
        return Response.json(answer)

    def device(req):
        d = _store(ctx).device(req.params["device"])
        if d is None:
            raise NotFound(f"device {req.params['device']} has not checked in")
        return Response.json(d)

    router.add("GET", "/repo/{path:path}", repo_file)
    router.add("POST", "/api/checkin", checkin)
    router.add("GET", "/api/ota/devices/{device}", device)
