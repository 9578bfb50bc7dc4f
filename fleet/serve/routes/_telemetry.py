"""What the telemetry route modules share (no routes here): the registry, the store, who a request acts as.

Every /api/ route but /healthz needs `Authorization: Bearer TOKEN` (fleet tokens create --kommune K); the
token's kommune scopes what the request sees and changes. Settings come from ctx.options or the
environment: FLEET_ALERT_WEBHOOK (new alerts from HTTP ingest are POSTed there).
"""

import os
import threading

from ...registry import Registry
from ...registry.sealing import Sealer, load_key
from ...registry.tokens import operator_for_token
from ...telemetry import TelemetryStore, WebhookNotifier

_lock = threading.Lock()


def registry(ctx) -> Registry:
    with _lock:
        reg = ctx._cache.get("telemetry.registry")
        if reg is None:
            db = ctx.database()  # the server's one database, shared with the OTA routes
            reg = ctx._cache["telemetry.registry"] = Registry(db, Sealer(load_key()))
        return reg


def store(ctx) -> TelemetryStore:
    with _lock:
        st = ctx._cache.get("telemetry.store")
    if st is None:
        reg = registry(ctx)
        hook = ctx.options.get("alert_webhook") or os.environ.get("FLEET_ALERT_WEBHOOK")
        with _lock:
            st = ctx._cache.get("telemetry.store")
            if st is None:
                st = ctx._cache["telemetry.store"] = TelemetryStore(
                    reg, notifier=WebhookNotifier(hook) if hook else None)
    return st


def operator(ctx, req):
    """The Operator the request's bearer token acts as; TokenInvalid (401) without a valid one."""
    return operator_for_token(registry(ctx), req.bearer_token)
