"""Every query-string parser the views use, on any text: a value or the documented refusal
naming a field (InvalidField, or a 4xx AppError), never another exception (which would be a
500). Pure: no database, no app."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from werkzeug.datastructures import MultiDict

from fieldline.gis.errors import InvalidField
from fieldline.gis.layers import LAYERS
from fieldline.gis.validation import parse_datetime
from fieldline.server.alarms.params import parse_alarm_query
from fieldline.server.assets.params import parse_around, parse_feature_query, parse_output_crs
from fieldline.server.dispatch.params import parse_candidates_query, parse_route_query
from fieldline.server.errors import AppError
from fieldline.server.incidents.params import parse_incident_query
from fieldline.server.kpis.params import parse_kpi_query
from fieldline.server.map.params import parse_tile
from fieldline.server.meters.params import parse_anomaly_query
from fieldline.server.network.params import parse_isolation_query
from fieldline.server.ogc.params import ITEMS_PARAMS, parse_items
from fieldline.server.reports.params import parse_report_query
from fieldline.server.tasks.params import parse_task_query
from fieldline.server.telemetry.params import parse_interval, parse_limit
from fieldline.server.verification.params import parse_list_query, parse_run_query
from fieldline.settings import load_settings

SETTINGS = load_settings()
NOW = datetime(2026, 11, 20, 12, tzinfo=UTC)

PARSERS: dict[str, tuple[Callable[[Any], Any], tuple[str, ...]]] = {
    "assets": (
        lambda p: parse_feature_query(LAYERS["pipes"], p, SETTINGS),
        (
            "bbox",
            "bbox-crs",
            "near",
            "radius_m",
            "nearest",
            "k",
            "intersects",
            "crs",
            "limit",
            "cursor",
            "material",
            "diameter_mm_min",
            "install_year_max",
            "last_inspected_at_min",
        ),
    ),
    "around": (lambda p: parse_around(p, SETTINGS), ("lon", "lat", "radius_m", "limit")),
    "crs": (parse_output_crs, ("crs",)),
    "tasks": (
        lambda p: parse_task_query(p, SETTINGS),
        ("state", "kind", "priority", "crew", "bbox", "since", "until", "limit", "cursor"),
    ),
    "interval": (parse_interval, ("since", "until")),
    "limit": (lambda p: parse_limit(p, 100, 1000), ("limit",)),
    "alarms": (lambda p: parse_alarm_query(p, SETTINGS), ("state", "station", "severity", "limit")),
    "incidents": (lambda p: parse_incident_query(p, SETTINGS), ("state", "limit")),
    "kpis": (
        lambda p: parse_kpi_query(p, NOW, "Europe/Helsinki"),
        ("from", "to", "group_by", "period"),
    ),
    "meters": (
        lambda p: parse_anomaly_query(p, SETTINGS, NOW),
        ("since", "kind", "min_score", "limit"),
    ),
    "isolation": (parse_isolation_query, ("pipe_id", "lon", "lat", "radius_m")),
    "reports": (lambda p: parse_report_query(p, SETTINGS), ("crew_id", "kind", "status", "limit")),
    "candidates": (parse_candidates_query, ("limit", "include_busy")),
    "route": (parse_route_query, ("from", "mode")),
    "run": (parse_run_query, ("run", "layers")),
    "verifications": (parse_list_query, ("result", "limit")),
    "ogc_items": (
        lambda p: parse_items(LAYERS["pipes"], p, SETTINGS),
        (*ITEMS_PARAMS, "material", "diameter_mm"),
    ),
}

# Text that parsers meet in the wild: numbers of every shape, other scripts' digits, dates,
# separators, NUL, and anything at all.
FRAGMENTS = st.sampled_from(
    [
        "",
        ",",
        "-",
        ".",
        "e",
        "1e999",
        "nan",
        "inf",
        "-0",
        "²",
        "٣",
        "\uff11",  # a full-width one
        "\x00",
        "/",
        "..",
        "T",
        "Z",
        "+",
        ":",
        " ",
        "9" * 30,
        "2024-05-01",
        "T08:00:00",
        "+02:00",
        "EPSG:3067",
        "POLYGON((0 0,1 0,1 1,0 0))",
        "{",
        "}",
        "'",
        '"',
    ]
)
VALUES = st.one_of(
    st.text(max_size=40),
    st.lists(st.one_of(FRAGMENTS, st.integers().map(str), st.floats().map(str)), max_size=8).map(
        "".join
    ),
)


def survives(parse: Callable[[Any], Any], params: MultiDict[str, str]) -> None:
    try:
        parse(params)
    except InvalidField as exc:
        assert exc.field
    except AppError as exc:
        assert 400 <= exc.status < 500
        assert exc.field


@pytest.mark.parametrize("name", PARSERS)
@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_any_query_string_is_parsed_or_refused(name: str, data: st.DataObject) -> None:
    parse, names = PARSERS[name]
    chosen = data.draw(st.lists(st.sampled_from(names), max_size=len(names)), label="names")
    params = MultiDict([(key, data.draw(VALUES, label=key)) for key in chosen])
    survives(parse, params)


@settings(max_examples=300, deadline=None)
@given(
    layer=st.one_of(st.sampled_from(["pipes", "roads"]), st.text(max_size=8)),
    z=VALUES,
    x=VALUES,
    y=VALUES,
)
def test_any_tile_address_is_parsed_or_refused(layer: str, z: str, x: str, y: str) -> None:
    survives(lambda _: parse_tile(layer, z, x, y), MultiDict())


@settings(max_examples=500, deadline=None)
@given(raw=st.one_of(VALUES, st.integers(), st.none(), st.floats()))
def test_any_time_is_parsed_or_refused(raw: object) -> None:
    survives(lambda _: parse_datetime(raw, "at"), MultiDict())
