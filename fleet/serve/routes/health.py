"""GET /healthz: the server answers (for load balancers and tests)."""

from ... import __version__
from ..http import Response


def register(router, ctx):
    router.add("GET", "/healthz", lambda req: Response.json({"ok": True, "version": __version__}))
