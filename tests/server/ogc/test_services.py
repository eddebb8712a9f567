from __future__ import annotations

import sqlalchemy as sa

from fieldline.gis.queries import layer_extents
from fieldline.server.ogc.services import ExtentCache


def test_extents_are_kept_for_a_while(connection: sa.Connection) -> None:
    now = [0.0]
    cache = ExtentCache(ttl_s=60, clock=lambda: now[0])
    first = cache.get(connection)
    assert first == layer_extents(connection)
    connection.execute(sa.text("DELETE FROM markers"))
    assert cache.get(connection) is first
    now[0] = 61.0
    assert cache.get(connection)["markers"] is None  # an empty layer has no extent
    connection.execute(sa.text("DELETE FROM stations"))
    cache.forget()
    assert cache.get(connection)["stations"] is None
