"""What the route modules share on top of Starlette: JSON answers, errors as answers, a bounded body.

A FleetError raised by an endpoint becomes a JSON error with its hint and a matching status; an unknown
path is 404 and a known path with another method 405, both as JSON. Endpoints that touch the registry are
plain functions: `threaded(fn)` runs fn(request, body) in Starlette's thread pool with the body read first.
"""

import json
import logging

from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response

from ..errors import Conflict, FleetError, NotFound, UsageError

log = logging.getLogger("fleet.serve")
MAX_BODY = 8 * 1024 * 1024


class HTTPError(FleetError):
    def __init__(self, status: int, message: str, *, hint: str | None = None):
        super().__init__(message, hint=hint)
        self.status = status


def json_response(obj, status: int = 200, headers: dict | None = None) -> Response:
    return Response(json.dumps(obj, default=str).encode(), status, headers, media_type="application/json")


def bearer_token(request: Request) -> str | None:
    auth = request.headers.get("authorization", "")
    return auth[7:].strip() if auth.lower().startswith("bearer ") else None


def query(request: Request) -> dict:
    """The query parameters, the last value of each."""
    return dict(request.query_params)


async def read_body(request: Request) -> bytes:
    """The request body; HTTPError 413 past MAX_BODY (checked before reading when it says its length)."""
    try:
        declared = int(request.headers.get("content-length") or 0)
    except ValueError:
        raise HTTPError(400, "Content-Length is not a number") from None
    if declared > MAX_BODY:
        raise HTTPError(413, "request body too large")
    chunks, n = [], 0
    async for chunk in request.stream():
        n += len(chunk)
        if n > MAX_BODY:
            raise HTTPError(413, "request body too large")
        chunks.append(chunk)
    return b"".join(chunks)


def parse_json(body: bytes):
    try:
        return json.loads(body or b"null")
    except ValueError as e:
        raise HTTPError(400, f"the request body is not JSON: {e}") from None


def threaded(fn):
    """An endpoint from fn(request, body) -> Response, run in the thread pool (it may wait on the registry)."""

    async def endpoint(request: Request):
        body = await read_body(request) if request.method in ("POST", "PUT", "PATCH") else b""
        return await run_in_threadpool(fn, request, body)

    endpoint.__name__ = fn.__name__
    return endpoint


_STATUS = {UsageError: 400, NotFound: 404, Conflict: 409}


async def fleet_error(request: Request, e: FleetError) -> Response:
    if isinstance(e, HTTPError):
        status = e.status
    else:
        status = next((s for t, s in _STATUS.items() if isinstance(e, t)), getattr(e, "http_status", 400))
    body = {"error": e.message}
    if e.hint:
        body["hint"] = e.hint
    if isinstance(getattr(e, "reason", None), str):  # a refused check-in's reason (wrong_kommune, bad_mac, ...)
        body["reason"] = e.reason
    return json_response(body, status)


async def http_error(request: Request, e: HTTPException) -> Response:
    if e.status_code == 404:
        return json_response({"error": f"nothing at {request.url.path}"}, 404)
    if e.status_code == 405:
        allowed = [m.strip() for m in (e.headers or {}).get("Allow", "").split(",") if m.strip()]
        return json_response({"error": f"{request.method} is not allowed here", "allowed": allowed}, 405,
                             {"Allow": ", ".join(allowed)})
    return json_response({"error": e.detail}, e.status_code)


async def internal_error(request: Request, e: Exception) -> Response:
    log.error("%s %s failed", request.method, request.url.path, exc_info=e)
    return json_response({"error": "internal error"}, 500)


EXCEPTION_HANDLERS = {FleetError: fleet_error, HTTPException: http_error, Exception: internal_error}
