"""GET /healthz: the server answers (for load balancers and tests)."""

from starlette.routing import Route

from ... import __version__
from ..web import json_response


def routes(ctx):
    async def healthz(request):
        return json_response({"ok": True, "version": __version__})

    return [Route("/healthz", healthz, methods=["GET"])]
