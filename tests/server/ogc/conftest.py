"""A real HTTP server for the OGC API, for clients that run in another process (GDAL) or
speak HTTP themselves (owslib). It reads the committed fixture city through its own engine,
not the rolled-back test connection, so it serves reads only: tests that write use `client`."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import pytest
import sqlalchemy as sa
from werkzeug.serving import make_server

from fieldline.server import create_app
from fieldline.settings import Settings


@pytest.fixture(scope="session")
def ogc_url(settings: Settings, engine: sa.Engine) -> Iterator[str]:
    app = create_app(settings)
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}/ogc"
    finally:
        server.shutdown()
        thread.join(timeout=10)
        server.server_close()
        app.extensions["fieldline"].bind.dispose()
