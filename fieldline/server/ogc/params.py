"""Query parameters of OGC API - Features requests; a bad one is a 400 naming it.

Bounding boxes, whole numbers and attribute values are read as the asset API reads them
(assets/params.py). What differs is the standard's own rules: coordinate systems are named
by URI and take the axis order their definition gives (latitude first for EPSG:4326), a
`limit` above the maximum is lowered rather than refused, and an unknown parameter is refused.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from functools import lru_cache
from typing import Any

import sqlalchemy as sa

from fieldline.gis.cql2 import to_condition
from fieldline.gis.crs import CRS84, Crs, crs_from_srid, parse_crs
from fieldline.gis.errors import InvalidField
from fieldline.gis.layers import Layer
from fieldline.gis.queries import FeatureQuery, parse_attribute_filters
from fieldline.gis.validation import BIGINT_MAX
from fieldline.server.assets.params import parse_bbox, parse_integer, query_errors
from fieldline.settings import Settings

DEFAULT_LIMIT = 10
FILTER_LANG = "cql2-text"
ITEMS_PARAMS = (
    "f",
    "bbox",
    "bbox-crs",
    "crs",
    "limit",
    "datetime",
    "cursor",
    "before",
    "filter",
    "filter-lang",
    "filter-crs",
)
WEB_MERCATOR = 3857
OPEN_END = frozenset({"", ".."})


@lru_cache(maxsize=8)
def offered_crs(local_crs: str) -> dict[str, Crs]:
    """The coordinate systems of every collection by URI: CRS84 (the default, longitude
    first), WGS 84 with latitude first, Web Mercator and the utility's own."""
    systems = (
        CRS84,
        crs_from_srid(CRS84.srid, authority_axes=True),
        crs_from_srid(WEB_MERCATOR, authority_axes=True),
        parse_crs(local_crs, "FIELDLINE_LOCAL_CRS", authority_axes=True),
    )
    return {crs.uri: crs for crs in systems}


def crs_named(value: str, field: str, offered: Mapping[str, Crs]) -> Crs:
    crs = offered.get(value.strip().strip("<>"))
    if crs is None:
        raise InvalidField(field, f"{value!r} is not offered; use one of: {', '.join(offered)}")
    return crs


def crs_param(params: Mapping[str, str], name: str, offered: Mapping[str, Crs]) -> Crs:
    return crs_named(params[name], name, offered) if name in params else CRS84


def check_params(params: Mapping[str, str], allowed: Collection[str]) -> None:
    """The standard asks for a 400 on any parameter the API does not define."""
    with query_errors():
        for name in params:
            if name not in allowed:
                raise InvalidField(name, "unknown parameter; known: " + ", ".join(allowed))


def output_crs(params: Mapping[str, str], settings: Settings) -> Crs:
    with query_errors():
        return crs_param(params, "crs", offered_crs(settings.local_crs))


@dataclass
class ItemsRequest:
    query: FeatureQuery
    before: int | None = None  # a page read backwards: the features just before this id


def parse_items(layer: Layer, params: Mapping[str, str], settings: Settings) -> ItemsRequest:
    attributes = [name for name in params if name not in ITEMS_PARAMS]
    check_params(params, (*ITEMS_PARAMS, *(a.name for a in layer.attributes)))
    offered = offered_crs(settings.local_crs)
    with query_errors():
        query = FeatureQuery(
            limit=_limit(params, settings.max_page_size),
            cursor=(
                parse_integer(params, "cursor", 0, 0, BIGINT_MAX) if "cursor" in params else None
            ),
            out_crs=crs_param(params, "crs", offered),
            filters=parse_attribute_filters(layer, {name: params[name] for name in attributes}),
        )
        if "bbox" in params:
            query.bbox = parse_bbox(params, crs_param(params, "bbox-crs", offered))
        before = parse_integer(params, "before", 0, 1, BIGINT_MAX) if "before" in params else None
        if before is not None and query.cursor is not None:
            raise InvalidField("before", "cannot be combined with cursor")
        conditions = [
            condition
            for condition in (datetime_condition(layer, params), filter_condition(layer, params))
            if condition is not None
        ]
        if before is not None:
            conditions.append(layer.table.c.id < before)
        if conditions:
            query.where = sa.and_(*conditions)
    return ItemsRequest(query, before)


def _limit(params: Mapping[str, str], maximum: int) -> int:
    if "limit" not in params:
        return min(DEFAULT_LIMIT, maximum)
    try:
        value = int(params["limit"])
    except ValueError:
        raise InvalidField("limit", "must be a whole number") from None
    if value < 1:
        raise InvalidField("limit", "must be at least 1")
    return min(value, maximum)  # the standard: a larger limit is lowered, not refused


def filter_condition(layer: Layer, params: Mapping[str, str]) -> Any | None:
    """`filter` in CQL2 text; its geometries are in CRS84."""
    lang = params.get("filter-lang", FILTER_LANG)
    if lang != FILTER_LANG:
        raise InvalidField("filter-lang", f"only {FILTER_LANG} is supported")
    if "filter-crs" in params and params["filter-crs"].strip("<>") != CRS84.uri:
        raise InvalidField("filter-crs", f"only {CRS84.uri} is supported")
    return to_condition(layer, params["filter"]) if "filter" in params else None


def datetime_condition(layer: Layer, params: Mapping[str, str]) -> Any | None:
    """`datetime` selects features by when they last changed (`updated_at`): an instant, a
    date (that whole day, UTC), or an interval `start/end` where `..` or nothing is open."""
    if "datetime" not in params:
        return None
    column = layer.table.c.updated_at
    text = params["datetime"].strip()
    if not text:
        raise InvalidField("datetime", "must be a date-time, a date or an interval start/end")
    first, _, last = text.partition("/") if "/" in text else (text, "", text)
    conditions = []
    start = None
    if first not in OPEN_END:
        start = _moment(first)[0]
        conditions.append(column >= start)
    if last not in OPEN_END:
        _, end, whole_day = _moment(last)
        conditions.append(column < end if whole_day else column <= end)
        if start is not None and (start >= end if whole_day else start > end):
            raise InvalidField("datetime", "the interval ends before it starts")
    return sa.and_(sa.true(), *conditions)


def _moment(text: str) -> tuple[datetime, datetime, bool]:
    """(start, end, whole_day): a date spans its day, a date-time is one instant."""
    try:
        if len(text) == len("2024-01-01"):
            day = datetime.combine(date.fromisoformat(text), datetime.min.time(), UTC)
            return day, day + timedelta(days=1), True
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise InvalidField("datetime", f"{text!r} is not an RFC 3339 date or date-time") from None
    if moment.tzinfo is None:
        raise InvalidField("datetime", f"{text!r} needs a time zone (e.g. Z)")
    return moment, moment, False
