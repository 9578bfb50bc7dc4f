"""Builds the server's router from the route modules in fleet/serve/routes/.

Each module there defines `register(router, ctx)`; `ctx` is a ServeContext with what the routes share.
Add a feature by adding a module: nothing here changes.
"""

import importlib
import pkgutil
import threading
from dataclasses import dataclass, field
from pathlib import Path

from . import routes as routes_pkg
from .http import Router


@dataclass
class ServeContext:
    repo_dir: Path | None = None  # the static update repository (fleet release publish DIR)
    db_url: str | None = None  # the registry
    options: dict = field(default_factory=dict)  # per-feature settings (tokens file, webhook URL, ...)
    _cache: dict = field(default_factory=dict)
    _db_lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def database(self):
        """The one fleet.store.Database at db_url, opened (and migrated) on first use: every route's
        registry and store share it, one engine for the whole server."""
        with self._db_lock:
            db = self._cache.get("database")
            if db is None:
                from ..store import Database

                db = self._cache["database"] = Database.open(self.db_url)
            return db


def build_router(ctx: ServeContext) -> Router:
    router = Router()
    for mod in sorted(pkgutil.iter_modules(routes_pkg.__path__), key=lambda m: m.name):
        module = importlib.import_module(f"{routes_pkg.__name__}.{mod.name}")
        register = getattr(module, "register", None)
        if register is not None:
            register(router, ctx)
    return router
