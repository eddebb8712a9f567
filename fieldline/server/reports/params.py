"""Query strings and bodies of the report endpoints; a bad one is a 400/422 naming it."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from fieldline.server.assets.params import parse_integer, query_errors
from fieldline.server.fields import known_fields
from fieldline.server.reports.models import REPORT_KINDS, REVIEW_STATUSES
from fieldline.server.reports.services import ReportQuery
from fieldline.server.tasks.params import choices
from fieldline.settings import Settings


def parse_report_query(params: Mapping[str, str], settings: Settings) -> ReportQuery:
    """`crew_id`, `kind` and `status` (each comma-separated or repeated), `limit`."""
    query = ReportQuery(
        crew_id=params.get("crew_id") or None,
        kinds=choices(params, "kind", REPORT_KINDS) if "kind" in params else (),
        statuses=choices(params, "status", REVIEW_STATUSES) if "status" in params else (),
    )
    with query_errors():
        query.limit = parse_integer(params, "limit", settings.page_size, 1, settings.max_page_size)
    return query


def rejection_reason(body: Any) -> Any:
    """The `reason` of a rejection body (checked by the service: required, not empty)."""
    return known_fields(body, ("reason",)).get("reason")
