"""`fieldline serve`: the app behind gunicorn.

Each worker builds its own app (and database pool) after the fork, so no connection is shared
between processes. With FIELDLINE_WEB_SERVER=asgi (the default) each worker is uvicorn's
gunicorn worker running server/asgi.py, whose event loop serves the live streams; `gthread`
serves everything, live streams too, from gunicorn's threads.
"""

from __future__ import annotations

from typing import Any

from gunicorn.app.base import BaseApplication
from uvicorn_worker import UvicornWorker

from fieldline.settings import Settings

# Seconds open requests (live streams never end by themselves) get at shutdown before they are
# cut; below gunicorn's graceful_timeout, after which the worker is killed.
STREAMS_GRACE_S = 5


class FieldlineWorker(UvicornWorker):
    """uvicorn's gunicorn worker, cutting open streams at shutdown instead of waiting on them.

    h11 parses requests: unlike httptools it bounds a request head's size while it arrives
    (server/asgi.py then applies gunicorn's line and header limits)."""

    CONFIG_KWARGS = {
        "loop": "auto",
        "http": "h11",
        "h11_max_incomplete_event_size": 64 * 1024,
        "timeout_graceful_shutdown": STREAMS_GRACE_S,
    }


class FieldlineServer(BaseApplication):
    def __init__(self, settings: Settings, options: dict[str, Any]) -> None:
        self.settings = settings
        self.options = options
        super().__init__()

    def load_config(self) -> None:
        for key, value in self.options.items():
            self.cfg.set(key, value)

    def load(self) -> Any:
        if self.settings.web_server == "asgi":
            from fieldline.server.asgi import create_asgi_app

            return create_asgi_app(self.settings)
        from fieldline.server.app import create_app

        return create_app(self.settings)


def serve(settings: Settings, host: str, port: int) -> None:
    options = {
        "bind": f"{host}:{port}",
        "workers": settings.web_workers,
        "worker_class": "gthread",
        "threads": settings.web_threads,
        "timeout": 60,
        "graceful_timeout": 10,
        "accesslog": "-",
        "loglevel": settings.log_level.lower(),
        # A request line, header or header count beyond these is refused (400) before the app.
        "limit_request_line": 8190,
        "limit_request_fields": 100,
        "limit_request_field_size": 8190,
        # Several servers may run on one machine (demo, tests, benchmarks); a shared default
        # control socket path would make them trip over each other.
        "control_socket_disable": True,
    }
    if settings.web_server == "asgi":
        options["worker_class"] = f"{FieldlineWorker.__module__}.{FieldlineWorker.__qualname__}"
    FieldlineServer(settings, options).run()
