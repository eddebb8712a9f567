"""`<int:...>` in a route is a row's id, a PostgreSQL bigint: a larger number names nothing
(404 from the routing) rather than failing in the database."""

from __future__ import annotations

from typing import Any

from werkzeug.routing import IntegerConverter, Map

from fieldline.gis.validation import BIGINT_MAX


class IdConverter(IntegerConverter):
    def __init__(self, map: Map, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("max", BIGINT_MAX)
        super().__init__(map, *args, **kwargs)
