"""Query-string parsing for the crew list; a bad parameter is a 400 naming it."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from fieldline.server.assets.params import parse_integer, query_errors
from fieldline.server.errors import BadRequest
from fieldline.settings import Settings

MAX_CURSOR_LENGTH = 100


@dataclass(frozen=True)
class CrewPage:
    limit: int | None = None  # None: every crew, in one answer
    cursor: str | None = None  # the last crew id of the previous page (by crew id)


def parse_crew_page(params: Mapping[str, str], settings: Settings) -> CrewPage:
    with query_errors():
        limit = (
            parse_integer(params, "limit", settings.page_size, 1, settings.max_page_size)
            if "limit" in params
            else None
        )
    cursor = params.get("cursor")
    if cursor is not None and not 1 <= len(cursor) <= MAX_CURSOR_LENGTH:
        raise BadRequest(
            f"must be a crew id of 1 to {MAX_CURSOR_LENGTH} characters", field="cursor"
        )
    return CrewPage(limit, cursor)
