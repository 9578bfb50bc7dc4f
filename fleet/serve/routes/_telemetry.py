"""What the telemetry route modules share (no routes here): the registry, the store, who a request acts as.

Every /api/ route but /healthz needs `Authorization: Bearer TOKEN` (fleet tokens create --kommune K); the
token's kommune scopes what the request sees and changes. Settings come from ctx.options or the
environment: FLEET_ALERT_WEBHOOK (new alerts from HTTP ingest are POSTed there).
"""

import os

from ...registry import Registry
from ...registry.sealing import Sealer, load_key
from ...registry.tokens import operator_for_token
from ...telemetry import TelemetryStore, WebhookNotifier
from ..web import bearer_token


def registry(ctx) -> Registry:
    # the server's one database, shared with the OTA routes
    return ctx.shared("telemetry.registry", lambda: Registry(ctx.database(), Sealer(load_key())))


def store(ctx) -> TelemetryStore:
    reg = registry(ctx)

    def make():
        hook = ctx.options.get("alert_webhook") or os.environ.get("FLEET_ALERT_WEBHOOK")
        return TelemetryStore(reg, notifier=WebhookNotifier(hook) if hook else None)

    return ctx.shared("telemetry.store", make)


def operator(ctx, request):
    """The Operator the request's bearer token acts as; TokenInvalid (401) without a valid one."""
    return operator_for_token(registry(ctx), bearer_token(request))
