"""The app as `fieldline serve` runs it on an event loop (uvicorn's gunicorn worker): the live
stream is served by the loop's fan-out (live/fanout.py), everything else by the Flask app on a
pool of FIELDLINE_WEB_THREADS threads through a2wsgi.

Who may open the stream and what its parameters mean stay the Flask view's (live/views.py,
`@requires("live:read")`): each request to it is first handed to the Flask app in a thread.
An answer other than the stream (401, 403, 400 ...) goes to the client as the app made it;
the stream's own answer gives the headers and the parsed parameters, and its body, a
generator not yet started, is closed unread.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from typing import Any

import redis
from a2wsgi import WSGIMiddleware
from a2wsgi.wsgi import Body, build_environ
from flask import Flask, Response

from fieldline.server.errors import problem
from fieldline.server.live.fanout import SHUTTING_DOWN, Fanout, relay
from fieldline.server.live.services import LiveKeys
from fieldline.server.live.views import STREAM_PARAMS
from fieldline.settings import Settings

log = logging.getLogger(__name__)

LIVE_PATH = "/api/v1/live"
# The request head limits gunicorn enforces when it parses (server/wsgi.py: limit_request_line,
# and its defaults for the number and size of header fields), enforced here alike.
REQUEST_LINE_MAX = 8190
HEADER_FIELDS_MAX = 100
HEADER_FIELD_MAX = 8190
Scope = dict[str, Any]
Receive = Callable[[], Awaitable[dict[str, Any]]]
Send = Callable[[dict[str, Any]], Awaitable[None]]
Headers = list[tuple[bytes, bytes]]


@dataclass(frozen=True)
class FlaskAnswer:
    status: int
    headers: Headers
    body: bytes
    # (heartbeat_s, limit) when the view opened the stream: its body is for the fan-out to send.
    stream: tuple[float, int | None] | None


def ask_flask(app: Flask, environ: dict[str, Any]) -> FlaskAnswer:
    """Run the request through the Flask app (in a worker thread)."""
    started: list[tuple[str, list[tuple[str, str]]]] = []
    written: list[bytes] = []

    def start_response(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
        started.append((status, headers))
        return written.append

    result: Iterable[bytes] = app(environ, start_response)
    try:
        stream = environ.get(STREAM_PARAMS)
        opened = stream is not None and bool(started) and started[-1][0].startswith("200")
        body = b"" if opened else b"".join([*written, *result])
    finally:
        close = getattr(result, "close", None)
        if close is not None:
            close()
    status, headers = started[-1]
    encoded = [(name.lower().encode("latin-1"), value.encode("latin-1")) for name, value in headers]
    return FlaskAnswer(int(status.split(" ", 1)[0]), encoded, body, stream if opened else None)


def head_problem(scope: Scope) -> Response | None:
    """The refusal of a request line or headers over gunicorn's limits, else None."""
    target = len(scope.get("raw_path") or scope["path"].encode()) + len(scope["query_string"]) + 1
    if len(scope["method"]) + target + len(" HTTP/1.1") > REQUEST_LINE_MAX:
        return problem(414, "URI Too Long", f"the request line is over {REQUEST_LINE_MAX} bytes")
    headers = scope["headers"]
    if len(headers) > HEADER_FIELDS_MAX or any(
        len(name) + len(value) + 2 > HEADER_FIELD_MAX for name, value in headers
    ):
        return problem(
            431,
            "Request Header Fields Too Large",
            f"at most {HEADER_FIELDS_MAX} header fields of {HEADER_FIELD_MAX} bytes each",
        )
    return None


async def send_response(send: Send, response: Response) -> None:
    headers = [
        (name.lower().encode("latin-1"), value.encode("latin-1"))
        for name, value in response.headers.to_wsgi_list()
    ]
    await send({"type": "http.response.start", "status": response.status_code, "headers": headers})
    await send({"type": "http.response.body", "body": response.get_data()})


class FieldlineASGI:
    def __init__(self, app: Flask, settings: Settings) -> None:
        self.app = app
        self.wsgi = WSGIMiddleware(app, workers=settings.web_threads)  # type: ignore[arg-type]
        channel = LiveKeys(settings.redis_prefix).channel
        self.fanout = Fanout(settings.redis_url, channel, settings.live_client_queue)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await self.lifespan(receive, send)
        elif scope["type"] == "http" and (refused := head_problem(scope)) is not None:
            await send_response(send, refused)
        elif scope["type"] == "http" and scope["path"] == LIVE_PATH and scope["method"] == "GET":
            await self.live(scope, receive, send)
        else:
            await self.wsgi(scope, receive, send)  # type: ignore[arg-type]

    async def lifespan(self, receive: Receive, send: Send) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                self.end_streams_on_exit(asyncio.get_running_loop())
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await self.fanout.close()
                await send({"type": "lifespan.shutdown.complete"})
                return

    def end_streams_on_exit(self, loop: asyncio.AbstractEventLoop) -> None:
        """Asking the server to stop (SIGTERM from gunicorn, SIGINT) ends the open live
        streams at once; they would otherwise hold the shutdown until its grace runs out.
        Chained before uvicorn's own handlers, which are in place by the lifespan's start."""
        for number in (signal.SIGTERM, signal.SIGINT):
            previous = signal.getsignal(number)
            if callable(previous):
                with contextlib.suppress(ValueError):  # not the main thread: nothing to chain
                    signal.signal(number, self.chained(loop, previous))

    def chained(
        self, loop: asyncio.AbstractEventLoop, previous: Callable[[int, Any], Any]
    ) -> Callable[[int, Any], None]:
        def handler(signum: int, frame: Any) -> None:
            loop.call_soon_threadsafe(self.fanout.end_streams, SHUTTING_DOWN)
            previous(signum, frame)

        return handler

    async def live(self, scope: Scope, receive: Receive, send: Send) -> None:
        loop = asyncio.get_running_loop()
        environ: Any = build_environ(scope, Body(loop, receive))  # type: ignore[arg-type]
        answer = await loop.run_in_executor(self.wsgi.executor, ask_flask, self.app, environ)
        if answer.stream is None:
            await send(
                {"type": "http.response.start", "status": answer.status, "headers": answer.headers}
            )
            await send({"type": "http.response.body", "body": answer.body})
            return
        try:
            subscriber = await self.fanout.subscribe()
        except redis.RedisError as exc:
            log.error("live stream refused: Redis cannot be reached (%s)", exc)
            refused = problem(503, "Service Unavailable", "the live feed cannot reach Redis")
            await send_response(send, refused)
            return

        async def watch_disconnect() -> None:
            while (await receive())["type"] != "http.disconnect":
                pass
            subscriber.end("the client went away")

        watcher = loop.create_task(watch_disconnect())
        try:
            await send({"type": "http.response.start", "status": 200, "headers": answer.headers})
            heartbeat_s, limit = answer.stream
            await relay(subscriber, send, heartbeat_s, limit)
        finally:
            self.fanout.unsubscribe(subscriber)
            watcher.cancel()


def create_asgi_app(settings: Settings) -> FieldlineASGI:
    from fieldline.server.app import create_app

    return FieldlineASGI(create_app(settings), settings)
