"""`/api/v1/live`: crew positions, telemetry and dead letters as Server-Sent Events, relayed
from the Redis channel the gateway publishes on. Served as WSGI (the test client, gunicorn's
threads) each open stream holds a thread; `fieldline serve` serves it on its event loop
instead (server/asgi.py), after this view has checked the caller and the parameters."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from flask import Blueprint, Response, current_app, request, stream_with_context

from fieldline.server.auth import requires
from fieldline.server.errors import BadRequest
from fieldline.server.live.services import Live
from fieldline.server.resources import resources
from fieldline.server.telemetry.params import parse_limit

blueprint = Blueprint("live", __name__)
HEARTBEAT_S = 15.0
# Where the stream's parameters are left for the event loop's fan-out (server/asgi.py), which
# serves the stream under `fieldline serve` and never starts this view's body.
STREAM_PARAMS = "fieldline.live.params"


def live() -> Live:
    """The app's Redis connection pool for live data, made on first use."""
    found: Live | None = current_app.extensions.get("fieldline_live")
    if found is None:
        settings = resources().settings
        found = Live.from_url(settings.redis_url, settings.redis_prefix)
        current_app.extensions["fieldline_live"] = found
    return found


def sse(events: Iterator[str | None], limit: int | None) -> Iterator[str]:
    yield ": connected\n\n"  # lets clients and proxies see the stream open at once
    sent = 0
    for event in events:
        if event is None:
            yield ": heartbeat\n\n"
            continue
        yield f"data: {event}\n\n"
        sent += 1
        if limit is not None and sent >= limit:
            return


@blueprint.get("/live")
@requires("live:read")
def stream() -> Any:
    heartbeat_s = HEARTBEAT_S
    if "heartbeat" in request.args:
        raw = request.args["heartbeat"]
        if not (raw.isascii() and raw.isdigit()) or not 1 <= int(raw) <= 60:
            raise BadRequest("must be a whole number of seconds from 1 to 60", field="heartbeat")
        heartbeat_s = float(raw)
    # `limit` ends the stream after that many events (clients that poll, and tests).
    limit = parse_limit(request.args, 0, 100_000) if "limit" in request.args else None
    request.environ[STREAM_PARAMS] = (heartbeat_s, limit)
    body = stream_with_context(sse(live().events(heartbeat_s), limit))
    return Response(
        body,
        mimetype="text/event-stream",
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )
