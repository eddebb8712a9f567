"""No query parameter or path segment may hold a NUL: PostgreSQL text cannot store one, and no
id, name or filter has one, so such a request is refused before it reaches a query."""

from __future__ import annotations

from flask import request

from fieldline.server.errors import BadRequest


def refuse_nul() -> None:
    for name, values in request.args.lists():
        if "\x00" in name or any("\x00" in value for value in values):
            raise BadRequest("must not contain NUL characters", field=name.replace("\x00", ""))
    for name, value in (request.view_args or {}).items():
        if isinstance(value, str) and "\x00" in value:
            raise BadRequest("must not contain NUL characters", field=name)
