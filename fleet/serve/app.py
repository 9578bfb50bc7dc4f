"""Builds the server's ASGI app (Starlette) from the route modules in fleet/serve/routes/.

Each module there defines `routes(ctx) -> list[starlette.routing.Route]`; `ctx` is a ServeContext with what
the routes share. Add a feature by adding a module: nothing here changes. Run the app with
fleet/serve/server.py (Hypercorn); at its shutdown the context closes (the check-in writer records what is
queued).
"""

import contextlib
import importlib
import pkgutil
import threading
from dataclasses import dataclass, field
from pathlib import Path

from starlette.applications import Starlette

from . import routes as routes_pkg
from .web import EXCEPTION_HANDLERS


@dataclass
class ServeContext:
    repo_dir: Path | None = None  # the static update repository (fleet release publish DIR)
    db_url: str | None = None  # the registry
    options: dict = field(default_factory=dict)  # per-feature settings (tokens file, webhook URL, ...)
    _cache: dict = field(default_factory=dict)
    _lock: threading.RLock = field(default_factory=threading.RLock)  # shared() makers may call shared()

    def shared(self, name: str, make):
        """The object cached under `name`, made once by make() (the first requests arrive together)."""
        with self._lock:
            obj = self._cache.get(name)
            if obj is None:
                obj = self._cache[name] = make()
            return obj

    def database(self):
        """The one fleet.store.Database at db_url, opened (and migrated) on first use: every route's
        registry and store share it, one engine for the whole server."""
        from ..store import Database

        return self.shared("database", lambda: Database.open(self.db_url))

    def cached(self, name: str):
        """The object cached under `name`, or None (without waiting for one being made)."""
        return self._cache.get(name)

    def close(self):
        """Closes what the routes opened that has a close() (the check-in writer first: it flushes)."""
        with self._lock:
            objs, self._cache = list(self._cache.items()), {}
        order = {True: 0, False: 1}  # the writer first (it flushes), the database last (the rest use it)
        for name, obj in sorted(objs, key=lambda kv: 2 if kv[0] == "database" else order[kv[0].endswith("writer")]):
            close = getattr(obj, "close", None)
            if callable(close):
                close()


def build_app(ctx: ServeContext) -> Starlette:
    routes = []
    for mod in sorted(pkgutil.iter_modules(routes_pkg.__path__), key=lambda m: m.name):
        module = importlib.import_module(f"{routes_pkg.__name__}.{mod.name}")
        make = getattr(module, "routes", None)
        if make is not None:
            routes += make(ctx)

    @contextlib.asynccontextmanager
    async def lifespan(app):
        yield
        ctx.close()

    return Starlette(routes=routes, exception_handlers=EXCEPTION_HANDLERS, lifespan=lifespan)
