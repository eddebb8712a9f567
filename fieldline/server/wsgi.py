"""`fieldline serve`: the app behind gunicorn, a production WSGI server.

Each worker builds its own app (and database pool) after the fork, so no connection is shared
between processes.
"""

from __future__ import annotations

from typing import Any

from gunicorn.app.base import BaseApplication

from fieldline.settings import Settings


class FieldlineServer(BaseApplication):
    def __init__(self, settings: Settings, options: dict[str, Any]) -> None:
        self.settings = settings
        self.options = options
        super().__init__()

    def load_config(self) -> None:
        for key, value in self.options.items():
            self.cfg.set(key, value)

    def load(self) -> Any:
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
        "limit_request_line": 8190,
        # Several servers may run on one machine (demo, tests, benchmarks); a shared default
        # control socket path would make them trip over each other.
        "control_socket_disable": True,
    }
    FieldlineServer(settings, options).run()
