"""CQL2 text filters against PostGIS with the fixture city, checked against the same question
asked of the fixture files in Python (Shapely for geometry)."""

from __future__ import annotations

import contextlib
import json
import re
from collections.abc import Callable
from datetime import UTC, date, datetime
from functools import cache
from typing import Any

import pytest
import sqlalchemy as sa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from shapely.geometry import LineString, Point, box, shape
from shapely.geometry.base import BaseGeometry
from sqlalchemy.orm import Session

from fieldline.gis.cql2 import MAX_DEPTH, MAX_FILTER_CHARS, queryables, to_condition
from fieldline.gis.errors import InvalidField
from fieldline.gis.layers import LAYERS
from fieldline.gis.queries import FeatureQuery, select_documents, select_features
from tests.conftest import load_fixture

Props = dict[str, Any]
Predicate = Callable[[Props, BaseGeometry], bool]

CITY = (24.935, 60.164, 24.954, 60.180)  # lon/lat bounds of the fixture network
WEST_HALF = "POLYGON((24.935 60.164, 24.944 60.164, 24.944 60.180, 24.935 60.180, 24.935 60.164))"
SOUTH_BOX = "BBOX(24.935, 60.164, 24.954, 60.170)"


def _statement(layer: str, text: str) -> tuple[Any, dict[str, Any]]:
    where = to_condition(LAYERS[layer], text)
    return select_features(LAYERS[layer], FeatureQuery(where=where, limit=100_000))


def sql_ids(session: Session, layer: str, text: str) -> set[str]:
    statement, values = _statement(layer, text)
    return {row._public_id for row in session.execute(statement, values)}


@cache
def fixture(layer: str) -> list[tuple[str, Props, BaseGeometry]]:
    """Each feature of the fixture file as (id, properties with `id`, Shapely geometry)."""
    return [
        (f["id"], {**f["properties"], "id": f["id"]}, shape(f["geometry"]))
        for f in load_fixture(layer)
    ]


def everything(layer: str) -> set[str]:
    return {i for i, _, _ in fixture(layer)}


def python_ids(layer: str, predicate: Callable[[Props, BaseGeometry], bool | None]) -> set[str]:
    return {i for i, props, geometry in fixture(layer) if predicate(props, geometry) is True}


def moment(text: str | None) -> datetime | None:
    return None if text is None else datetime.fromisoformat(text)


def before(text: str | None, limit: datetime) -> bool:
    value = moment(text)
    return value is not None and value < limit


def utc_day(text: str | None) -> date | None:
    value = moment(text)
    return None if value is None else value.astimezone(UTC).date()


# Pick real values from the fixtures so that every case selects some features but not all.
HYDRANTS = load_fixture("hydrants")
INSPECTED = sorted(utc_day(f["properties"]["last_inspected_at"]) or date.min for f in HYDRANTS)
SOME_DAY = next(d for d in INSPECTED if d != date.min)
A_HYDRANT = HYDRANTS[7]
HYDRANT_LON, HYDRANT_LAT = A_HYDRANT["geometry"]["coordinates"]
CUTOFF = datetime(2023, 1, 1, tzinfo=UTC)
CROSSING = [[24.935, 60.172], [24.954, 60.172]]
VALVE_PIPE = load_fixture("valves")[11]["properties"]["pipe"]

CASES: list[tuple[str, str, Predicate]] = [
    (
        "pipes",
        "material = 'cast_iron' AND diameter_mm >= 150",
        lambda p, g: p["material"] == "cast_iron" and p["diameter_mm"] >= 150,
    ),
    ("pipes", "diameter_mm < 200", lambda p, g: p["diameter_mm"] < 200),
    ("pipes", "diameter_mm <= 200", lambda p, g: p["diameter_mm"] <= 200),
    ("pipes", "diameter_mm > 250", lambda p, g: p["diameter_mm"] > 250),
    ("pipes", "diameter_mm <> 150", lambda p, g: p["diameter_mm"] != 150),
    ("pipes", "depth_m > 2.125", lambda p, g: p["depth_m"] > 2.125),
    ("pipes", "400 <= diameter_mm", lambda p, g: p["diameter_mm"] >= 400),
    (
        "pipes",
        "install_year BETWEEN 1950 AND 1970",
        lambda p, g: 1950 <= p["install_year"] <= 1970,
    ),
    (
        "pipes",
        "install_year NOT BETWEEN 1950 AND 1970",
        lambda p, g: not 1950 <= p["install_year"] <= 1970,
    ),
    ("pipes", "material IN ('PVC','PE')", lambda p, g: p["material"] in {"PVC", "PE"}),
    ("pipes", "material NOT IN ('PVC', 'PE')", lambda p, g: p["material"] not in {"PVC", "PE"}),
    ("pipes", "district LIKE 'K%'", lambda p, g: p["district"].startswith("K")),
    ("pipes", "district NOT LIKE 'K%'", lambda p, g: not p["district"].startswith("K")),
    ("pipes", "district LIKE 'K_mppi'", lambda p, g: p["district"] == "Kamppi"),
    ("pipes", "district like '%ö%'", lambda p, g: "ö" in p["district"]),
    ("pipes", "NOT (status = 'in_service')", lambda p, g: p["status"] != "in_service"),
    ("pipes", "status <> 'in_service'", lambda p, g: p["status"] != "in_service"),
    ("pipes", "CASEI(material) = casei('pvc')", lambda p, g: p["material"] == "PVC"),
    (
        "pipes",
        # AND binds tighter than OR.
        "material = 'PVC' OR material = 'PE' AND diameter_mm > 200",
        lambda p, g: p["material"] == "PVC" or (p["material"] == "PE" and p["diameter_mm"] > 200),
    ),
    (
        "pipes",
        "(material = 'PVC' OR material = 'PE') AND diameter_mm > 200",
        lambda p, g: p["material"] in {"PVC", "PE"} and p["diameter_mm"] > 200,
    ),
    (
        "pipes",
        "NOT (material = 'PVC' OR diameter_mm > 300) AND NOT district = 'Kamppi'",
        lambda p, g: (
            not (p["material"] == "PVC" or p["diameter_mm"] > 300) and p["district"] != "Kamppi"
        ),
    ),
    ("pipes", "id IN ('P-000001', 'P-000002')", lambda p, g: p["id"] in {"P-000001", "P-000002"}),
    ("pipes", "from_node = 'N-000005'", lambda p, g: p["from_node"] == "N-000005"),
    (
        "hydrants",
        "last_inspected_at < TIMESTAMP('2023-01-01T00:00:00Z')",
        lambda p, g: before(p["last_inspected_at"], CUTOFF),
    ),
    (
        "hydrants",
        # A NULL is neither before nor after: NOT leaves it out too.
        "NOT (last_inspected_at < TIMESTAMP('2023-01-01T02:00:00+02:00'))",
        lambda p, g: (
            p["last_inspected_at"] is not None and not before(p["last_inspected_at"], CUTOFF)
        ),
    ),
    (
        "hydrants",
        f"last_inspected_at <= DATE('{SOME_DAY}')",
        lambda p, g: (utc_day(p["last_inspected_at"]) or date.max) <= SOME_DAY,
    ),
    (
        "hydrants",
        f"last_inspected_at = DATE('{SOME_DAY}')",
        lambda p, g: utc_day(p["last_inspected_at"]) == SOME_DAY,
    ),
    ("hydrants", "last_inspected_at IS NULL", lambda p, g: p["last_inspected_at"] is None),
    (
        "hydrants",
        "last_inspected_at IS NOT NULL AND condition = 'poor'",
        lambda p, g: p["last_inspected_at"] is not None and p["condition"] == "poor",
    ),
    ("hydrants", "pipe = 'P-000001'", lambda p, g: p["pipe"] == "P-000001"),
    ("valves", "operable = false", lambda p, g: p["operable"] is False),
    (
        "valves",
        "operable = TRUE AND kind = 'gate'",
        lambda p, g: p["operable"] is True and p["kind"] == "gate",
    ),
    ("valves", f"pipe = '{VALVE_PIPE}'", lambda p, g: p["pipe"] == VALVE_PIPE),
    ("valves", "node IS NULL", lambda p, g: p["node"] is None),
    ("valves", "node LIKE 'N-0001%'", lambda p, g: (p["node"] or "").startswith("N-0001")),
    (
        "pipes",
        f"S_INTERSECTS(geometry, {SOUTH_BOX})",
        lambda p, g: g.intersects(box(24.935, 60.164, 24.954, 60.170)),
    ),
    (
        "pipes",
        f"S_INTERSECTS(geometry, {WEST_HALF})",
        lambda p, g: g.intersects(box(24.935, 60.164, 24.944, 60.180)),
    ),
    (
        "pipes",
        f"S_WITHIN(geom, {WEST_HALF}) AND material = 'PE'",
        lambda p, g: g.within(box(24.935, 60.164, 24.944, 60.180)) and p["material"] == "PE",
    ),
    (
        "pipes",
        "S_INTERSECTS(geometry, LINESTRING(24.935 60.172, 24.954 60.172))",
        lambda p, g: g.intersects(shape({"type": "LineString", "coordinates": CROSSING})),
    ),
    (
        "valves",
        f"S_DISJOINT(geometry, {SOUTH_BOX})",
        lambda p, g: g.disjoint(box(24.935, 60.164, 24.954, 60.170)),
    ),
    (
        "hydrants",
        f"S_INTERSECTS(geometry, POINT({HYDRANT_LON!r} {HYDRANT_LAT!r}))",
        lambda p, g: g.intersects(Point(HYDRANT_LON, HYDRANT_LAT)),
    ),
    (
        "hydrants",
        f"S_CONTAINS({WEST_HALF}, geometry) OR condition = 'out_of_service'",
        lambda p, g: (
            box(24.935, 60.164, 24.944, 60.180).contains(g) or p["condition"] == "out_of_service"
        ),
    ),
]


@pytest.mark.parametrize(("layer", "text", "predicate"), CASES, ids=[c[1][:60] for c in CASES])
def test_filter_matches_python(
    session: Session, layer: str, text: str, predicate: Predicate
) -> None:
    expected = python_ids(layer, predicate)
    assert expected and expected != everything(layer), "the case must tell features apart"
    assert sql_ids(session, layer, text) == expected


def test_condition_in_geojson_documents(session: Session) -> None:
    """The OGC items path runs the condition inside `select_documents`, refs joined there too."""
    layer = LAYERS["hydrants"]
    text = "pipe = 'P-000001' OR condition = 'out_of_service'"
    query = FeatureQuery(where=to_condition(layer, text), limit=100_000)
    statement, values = select_documents(layer, query)
    found = {json.loads(row._feature)["id"] for row in session.execute(statement, values)}
    expected = python_ids(
        "hydrants", lambda p, g: p["pipe"] == "P-000001" or p["condition"] == "out_of_service"
    )
    assert expected and found == expected


def test_computed_length(session: Session) -> None:
    """`length_m` is read-only and computed by the database; the geodesic length in Python
    agrees to well under a centimetre, so only pipes within 1 cm of 100 m may differ."""
    from pyproj import Geod

    geod = Geod(ellps="WGS84")
    lengths = {i: geod.geometry_length(geometry) for i, _, geometry in fixture("pipes")}
    found = sql_ids(session, "pipes", "length_m > 100")
    assert {i for i, m in lengths.items() if m > 100.01} <= found
    assert found <= {i for i, m in lengths.items() if m > 99.99}
    assert 0 < len(found) < len(lengths)


def test_times_of_the_record(session: Session) -> None:
    text = "created_at > TIMESTAMP('2000-01-01T00:00:00Z') AND updated_at >= created_at"
    assert sql_ids(session, "valves", text) == everything("valves")
    assert sql_ids(session, "valves", "updated_at < DATE('2000-01-01')") == set()


def test_quote_inside_a_string(session: Session) -> None:
    # Two quotes are one quote inside the string, as CQL2 writes it.
    session.execute(sa.text("UPDATE pipes SET district = 'O''Brien' WHERE public_id = 'P-000003'"))
    assert sql_ids(session, "pipes", "district = 'O''Brien'") == {"P-000003"}
    assert sql_ids(session, "pipes", "district LIKE '%''%'") == {"P-000003"}


def test_long_chains_are_flat(session: Session) -> None:
    """Hundreds of ANDs or IN items are one level each, not hundreds."""
    ids = [f"P-{n:06d}" for n in range(1, 400)]
    text = " OR ".join(f"id = '{i}'" for i in ids[:300])
    assert len(text) < MAX_FILTER_CHARS
    assert sql_ids(session, "pipes", text) == set(ids[:300])
    listed = f"id IN ({', '.join(repr(i) for i in ids)})"
    assert sql_ids(session, "pipes", listed) == set(ids)
    years = " AND ".join(["install_year > 1800"] * 400)
    assert sql_ids(session, "pipes", years) == everything("pipes")


# --- errors ----------------------------------------------------------------------------------


def error(layer: str, text: str) -> str:
    with pytest.raises(InvalidField) as caught:
        to_condition(LAYERS[layer], text)
    assert caught.value.field == "filter"
    return caught.value.detail


@pytest.mark.parametrize(
    ("text", "where", "says"),
    [
        ("material = 'x' AND", "line 1, column 19", "ends early"),
        ("material == 'x'", "line 1, column 11", "unexpected '='"),
        ("material = 'x' # comment", "line 1, column 16", "unexpected character '#'"),
        ("material = 'PVC'\n  AND diameter_mm >", "line 2, column 20", "ends early"),
        ("material = 'PVC'\nOR (diameter_mm > 3", "line 2, column 20", 'expected ")"'),
        ("material = 'unterminated", "line 1, column 12", "unexpected"),
        ("material IN 'PVC'", "line 1, column 13", 'expected "("'),
        ("NOT NOT material = 'PVC'", "line 1, column 9", "unexpected 'material'"),
        ("(material = 'PVC'))", "line 1, column 19", "unexpected ')'"),
    ],
)
def test_syntax_errors_say_where(text: str, where: str, says: str) -> None:
    detail = error("pipes", text)
    assert detail.startswith("syntax error at " + where), detail
    assert says in detail


def test_unknown_property_is_named_with_the_queryables() -> None:
    detail = error("pipes", "diameter_mm > 100 AND colour = 'red'")
    assert "unknown property 'colour' (line 1, column 23)" in detail
    for name in ("id", "material", "diameter_mm", "from_node", "length_m", "geometry"):
        assert name in detail
    assert "unknown property 'Material'" in error("pipes", "Material = 'PVC'")
    # A layer's queryables are its own.
    assert "unknown property 'operable'" in error("pipes", "operable = true")


@pytest.mark.parametrize(
    ("layer", "text", "says"),
    [
        ("pipes", "diameter_mm = 'wide'", "diameter_mm is a number but 'wide' is text"),
        ("pipes", "material > 5", "material is text but 5 is a number (line 1, column 1)"),
        ("pipes", "install_year = TRUE", "install_year is a number but True is a boolean"),
        ("pipes", "material IN ('PVC', 7)", "material is text but 7 is a number"),
        ("pipes", "install_year BETWEEN 1950 AND '1970'", "is a number but '1970' is text"),
        ("valves", "operable = 'yes'", "operable is a boolean but 'yes' is text"),
        ("valves", "pipe = 12", "pipe is text but 12 is a number"),
        ("hydrants", "last_inspected_at < 2023", "is a timestamp but 2023 is a number"),
        ("hydrants", "condition = DATE('2023-01-01')", "condition is text but DATE"),
        ("pipes", "diameter_mm LIKE '1%'", "LIKE needs text; diameter_mm is a number"),
        ("pipes", "material LIKE district", "the pattern of LIKE must be a 'string'"),
        ("pipes", "CASEI(diameter_mm) = 'x'", "CASEI takes text; diameter_mm is a number"),
        ("pipes", "geometry = 'x'", "geometry is a geometry: compare it with S_INTERSECTS"),
        ("pipes", "S_INTERSECTS(material, geometry)", "S_INTERSECTS compares geometries"),
        ("stations", "metrics = 'pressure_kpa'", "metrics is a list and cannot be filtered"),
    ],
)
def test_wrong_types(layer: str, text: str, says: str) -> None:
    assert says in error(layer, text)


@pytest.mark.parametrize(
    ("text", "says"),
    [
        (
            "ACCENTI(material) = 'pvc'",
            "unknown function ACCENTI (line 1, column 1); supported: CASEI",
        ),
        ("material = UPPER('pvc')", "unknown function UPPER (line 1, column 12)"),
        ("CASEI(material, district) = 'x'", "CASEI takes one argument"),
        ("diameter_mm + 50 > 200", "arithmetic (+ - * /) is not supported"),
        ("material = -district", "a minus sign applies to numbers only"),
        (
            "created_at T_BEFORE TIMESTAMP('2023-01-01T00:00:00Z')",
            "temporal predicates (BEFORE) are not supported",
        ),
        ("BBOX(geometry, 24.9, 60.1, 25.0, 60.2)", "BBOX is not supported; use S_INTERSECTS"),
        ("S_INTERSECTS(geometry, ENVELOPE(24.9 25.0 60.2 60.1))", "ENVELOPE is not CQL2"),
        ("INCLUDE", "INCLUDE and EXCLUDE are not CQL2"),
        ("S_INTERSECTS(geometry, BBOX(24.9, 60.1, 25.0))", "BBOX takes 4 or 6 numbers"),
        ("S_INTERSECTS(geometry, BBOX(25.0, 60.1, 24.9, 60.2))", "min <= max"),
        ("S_INTERSECTS(geometry, BBOX(24, 60, 25, 'x'))", "BBOX takes 4 or 6 numbers"),
        ("S_INTERSECTS(geometry, POINT(60.17 240.9))", "outside longitude -180..180"),
        ("S_INTERSECTS(geometry, SRID=3067;POINT(385000 6672000))", "SRID=... is not taken"),
        (
            "S_INTERSECTS(geometry, POLYGON((24.9 60.1, 25 60.2, 25 60.1, 24.9 60.2, 24.9 60.1)))",
            "Polygon is not a valid geometry: Self-intersection",
        ),
        ("S_INTERSECTS(geometry, LINESTRING(24.9 60.1))", "malformed LineString"),
        ("created_at > TIMESTAMP('2023-01-01T00:00:00')", "needs a time zone"),
        ("created_at > TIMESTAMP('2023-02-30T00:00:00Z')", "not a valid timestamp (line 1"),
        ("created_at > DATE('2023-13-01')", "not a valid date"),
        ("diameter_mm > 1e999", "too large a number"),
        ("material = 'a\x00b'", "NUL"),
        ("material LIKE 'abc\\'", "ends with a lone \\"),
        ("   ", "is empty"),
    ],
)
def test_unsupported_and_invalid(text: str, says: str) -> None:
    assert says in error("pipes", text)


def test_limits() -> None:
    long = "material = 'PVC' OR " * 600 + "material = 'PE'"
    assert len(long) > MAX_FILTER_CHARS
    assert f"longer than {MAX_FILTER_CHARS} characters" in error("pipes", long)
    deep = "NOT (" * (MAX_DEPTH + 1) + "material = 'PVC'" + ")" * (MAX_DEPTH + 1)
    assert f"nested more than {MAX_DEPTH} levels" in error("pipes", deep)
    nested_casei = "CASEI(" * (MAX_DEPTH + 1) + "material" + ")" * (MAX_DEPTH + 1) + " = 'x'"
    assert f"nested more than {MAX_DEPTH} levels" in error("pipes", nested_casei)
    fine = "NOT (" * (MAX_DEPTH - 1) + "material = 'PVC'" + ")" * (MAX_DEPTH - 1)
    to_condition(LAYERS["pipes"], fine)


@pytest.mark.parametrize(
    "text",
    [
        "(" * 4000 + "material = 'PVC'" + ")" * 4000,
        "(((" * 3000 + "1",
        "material = '" + "'" * 9980 + "'",
        "material = '" + "a''" * 3300,
        "material IN (" + "'a'," * 2400 + "'b')",
        "diameter_mm = " + "-" * 9000 + "1",
        "S_INTERSECTS(geometry, LINESTRING(" + "24.9 60.1, " * 900 + "25 60.2))",
    ],
    ids=["parentheses", "open-parentheses", "quotes", "unterminated", "in-list", "minus", "wkt"],
)
def test_hostile_sizes_answer_quickly(text: str) -> None:
    """Large inputs within the length limit are read in one pass; none stalls or recurses."""
    assert len(text) <= MAX_FILTER_CHARS
    with contextlib.suppress(InvalidField):
        to_condition(LAYERS["pipes"], text)


# --- injection -------------------------------------------------------------------------------

INJECTIONS = [
    "material = 'x''; DROP TABLE pipes; --'",
    "material = 'x'; DROP TABLE pipes; --",
    "material = 'a' OR 1=1",
    "material = 'a' OR 'x'='x'",
    "material LIKE '%'' OR ''1''=''1'",
    "material = 'PVC' -- AND diameter_mm > 9999",
    "material = 'PVC' /* comment */",
    "\"material; DROP TABLE pipes\" = 'x'",
    "\"material'\" = 'x'",
    '"pipes"."material" = \'x\'',
    "pipes.material = 'x'",
    "material = $$x$$",
    "material = E'\\x27'",
    "material = 'x' UNION SELECT * FROM pipes",
    "district = (SELECT district FROM pipes LIMIT 1)",
    "S_INTERSECTS(geometry, POINT(24.9 60.1)); DELETE FROM pipes",
]


@pytest.mark.parametrize("text", INJECTIONS)
def test_injection_changes_nothing(session: Session, text: str) -> None:
    count = sa.text("SELECT count(*) FROM pipes")
    before = session.execute(count).scalar_one()
    try:
        statement, values = _statement("pipes", text)
    except InvalidField:
        found = None
    else:
        # Nothing of the filter text reaches the SQL: values travel as bound parameters.
        sql = str(statement.compile(session.get_bind()))
        assert "DROP" not in sql and "'" not in sql.replace("'{", "").replace("}'", "")
        found = {row._public_id for row in session.execute(statement, values)}
    assert session.execute(sa.text("SELECT to_regclass('pipes') IS NOT NULL")).scalar_one()
    assert session.execute(count).scalar_one() == before
    if text in {"material = 'a' OR 1=1", "material = 'a' OR 'x'='x'"}:
        assert found == everything("pipes")  # what the filter says, and no more
    elif found is not None:
        assert found == set()  # a string that matches no material


# --- property-based --------------------------------------------------------------------------

WORDS = [
    "AND", "OR", "NOT", "LIKE", "IN", "BETWEEN", "IS", "NULL", "TRUE", "false", "(", ")", ",",
    "=", "<>", "<", "<=", ">", ">=", "+", "-", "*", "/", "'", '"', ";", "--", "\\", "%", "_",
    "'PVC'", "'it''s'", "''", "1", "-2.5", "1e3", "1e999", "TIMESTAMP('2023-01-01T00:00:00Z')",
    "DATE('2023-01-01')", "DATE('2023-02-31')", "TIMESTAMP('2023-01-01T00:00:00')",
    "S_INTERSECTS", "S_WITHIN", "S_DISJOINT", "S_CONTAINS", "S_TOUCHES", "S_EQUALS", "BBOX",
    "POINT(24.94 60.17)", "POLYGON((0 0, 1 0, 1 1, 0 0))", "POLYGON((0 0, 1 1, 1 0, 0 1, 0 0))",
    "LINESTRING(0 0, 0 0)", "POINT(1e308 1e308)", "CASEI", "ACCENTI", "ENVELOPE", "INTERVAL",
    "T_BEFORE", "SRID=4326;", "INCLUDE", "id", "material", "diameter_mm", "install_year",
    "district", "status", "operable", "pipe", "node", "last_inspected_at", "geometry", "geom",
    "created_at", "length_m", "metrics", "\"material\"", "nope", "\x00", "\n", "é",
]  # fmt: skip
soups = st.lists(st.sampled_from(WORDS), max_size=25).map(" ".join)
all_layers = st.sampled_from(sorted(LAYERS))


def executes(session: Session, layer: str, text: str) -> set[str] | None:
    """None when the filter is refused; otherwise what it selects, run inside a savepoint so
    that a database error fails this example alone."""
    try:
        statement, values = _statement(layer, text)
    except InvalidField as exc:
        assert exc.field == "filter" and exc.detail
        return None
    with session.begin_nested():
        return {row._public_id for row in session.execute(statement, values)}


@settings(
    max_examples=400, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(all_layers, st.text(max_size=120) | soups)
def test_any_text_is_a_condition_or_invalid_field(session: Session, layer: str, text: str) -> None:
    executes(session, layer, text)


# Well-formed filters with their meaning in Python (SQL's three-valued logic: None is unknown).
Node = tuple[str, Callable[[Props, BaseGeometry], bool | None]]


def quoted(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def kleene_and(values: list[bool | None]) -> bool | None:
    return False if False in values else None if None in values else True


def kleene_or(values: list[bool | None]) -> bool | None:
    return True if True in values else None if None in values else False


def like(pattern: str) -> re.Pattern[str]:
    parts = [".*" if c == "%" else "." if c == "_" else re.escape(c) for c in pattern]
    return re.compile("".join(parts), re.DOTALL)


OPERATORS: dict[str, Callable[[Any, Any], bool]] = {
    "=": lambda a, b: a == b,
    "<>": lambda a, b: a != b,
    "<": lambda a, b: a < b,
    "<=": lambda a, b: a <= b,
    ">": lambda a, b: a > b,
    ">=": lambda a, b: a >= b,
}
MIRRORED = {"=": "=", "<>": "<>", "<": ">", "<=": ">=", ">": "<", ">=": "<="}
KINDS = {"text": "text", "ref": "text", "number": "number", "integer": "number"}
KINDS |= {"boolean": "boolean", "datetime": "datetime"}


def compare(name: str, op: str, value: Any, convert: Callable[[Any], Any] = lambda v: v) -> Any:
    def check(props: Props, geometry: BaseGeometry) -> bool | None:
        own = props.get(name)
        return None if own is None else OPERATORS[op](convert(own), value)

    return check


def literal_of(kind: str, samples: list[Any]) -> st.SearchStrategy[tuple[str, Any, Any]]:
    """(text, value, how to read the property for comparing with it)."""
    if kind == "text":
        texts = st.sampled_from(samples) | st.text(alphabet="aPE_' %Kö", max_size=6)
        return texts.map(lambda t: (quoted(t), t, lambda v: v))
    if kind == "number":
        numbers = (
            st.sampled_from(samples)
            | st.integers(-10, 3000)
            | st.floats(-1e4, 1e4, allow_nan=False, allow_infinity=False)
        )
        return numbers.map(lambda n: (repr(n), n, lambda v: v))
    if kind == "boolean":
        return st.sampled_from([("TRUE", True), ("false", False)]).map(
            lambda b: (b[0], b[1], lambda v: v)
        )
    # Hypothesis takes naive bounds and attaches `timezones` to what it draws.
    start, end = datetime(2020, 1, 1), datetime(2027, 12, 31)  # noqa: DTZ001
    instants = st.datetimes(start, end, timezones=st.just(UTC))
    stamps = instants.map(
        lambda d: (f"TIMESTAMP('{d:%Y-%m-%dT%H:%M:%SZ}')", d.replace(microsecond=0), moment)
    )
    days = instants.map(lambda d: (f"DATE('{d:%Y-%m-%d}')", d.date(), utc_day))
    return stamps | days


@cache
def predicates(layer: str) -> st.SearchStrategy[Node]:
    features = load_fixture(layer)
    options = []
    for attribute in LAYERS[layer].attributes:
        if attribute.kind not in KINDS or attribute.name not in features[0]["properties"]:
            continue
        name, kind = attribute.name, KINDS[attribute.kind]
        samples = sorted(
            {f["properties"][name] for f in features if f["properties"][name] is not None}, key=str
        )[:50]
        literal = literal_of(kind, samples)
        ops = ["=", "<>"] if kind in {"text", "boolean"} else list(OPERATORS)
        options.append(
            st.builds(_comparison, st.just(name), st.sampled_from(ops), literal, st.booleans())
        )
        options.append(st.builds(_null, st.just(name), st.booleans()))
        options.append(
            st.builds(_in, st.just(name), st.lists(literal, min_size=1, max_size=4), st.booleans())
        )
        if kind in {"number", "datetime"}:
            options.append(st.builds(_between, st.just(name), literal, literal, st.booleans()))
        if kind == "text":
            patterns = st.sampled_from(samples).flatmap(
                lambda s: st.sampled_from([s[:2] + "%", "%" + s[-2:], "_" + s[1:], s])
            ) | st.text(alphabet="aeiKT%_'ö", max_size=5)
            options.append(st.builds(_like, st.just(name), patterns, st.booleans()))
    options.append(st.builds(_spatial, st.sampled_from(sorted(SPATIAL)), areas()))
    return st.one_of(options)  # fmt: skip


def _comparison(name: str, op: str, literal: tuple[str, Any, Any], flip: bool) -> Node:
    text, value, convert = literal
    check = compare(name, op, value, convert)
    if flip:
        return f"{text} {MIRRORED[op]} {name}", check
    return f"{name} {op} {text}", check


def _null(name: str, negate: bool) -> Node:
    return (
        f"{name} IS {'NOT ' if negate else ''}NULL",
        lambda p, g: (p.get(name) is None) != negate,
    )


def _in(name: str, literals: list[tuple[str, Any, Any]], negate: bool) -> Node:
    checks = [compare(name, "=", value, convert) for _, value, convert in literals]

    def check(props: Props, geometry: BaseGeometry) -> bool | None:
        found = kleene_or([c(props, geometry) for c in checks])
        return None if found is None else found != negate

    texts = ", ".join(text for text, _, _ in literals)
    return f"{name} {'NOT ' if negate else ''}IN ({texts})", check


def _between(
    name: str, low: tuple[str, Any, Any], high: tuple[str, Any, Any], negate: bool
) -> Node:
    checks = [compare(name, ">=", low[1], low[2]), compare(name, "<=", high[1], high[2])]

    def check(props: Props, geometry: BaseGeometry) -> bool | None:
        inside = kleene_and([c(props, geometry) for c in checks])
        return None if inside is None else inside != negate

    return f"{name} {'NOT ' if negate else ''}BETWEEN {low[0]} AND {high[0]}", check


def _like(name: str, pattern: str, negate: bool) -> Node:
    regex = like(pattern)

    def check(props: Props, geometry: BaseGeometry) -> bool | None:
        own = props.get(name)
        return None if own is None else bool(regex.fullmatch(own)) != negate

    return f"{name} {'NOT ' if negate else ''}LIKE {quoted(pattern)}", check


SPATIAL: dict[str, Callable[[BaseGeometry, BaseGeometry], bool]] = {
    "S_INTERSECTS": lambda g, a: g.intersects(a),
    "S_DISJOINT": lambda g, a: g.disjoint(a),
    "S_WITHIN": lambda g, a: g.within(a),
    "S_CONTAINS": lambda g, a: g.contains(a),
}
coordinates = st.tuples(
    st.floats(CITY[0] - 0.002, CITY[2] + 0.002), st.floats(CITY[1] - 0.002, CITY[3] + 0.002)
)


@st.composite
def areas(draw: st.DrawFn) -> tuple[str, BaseGeometry]:
    (x1, y1), (x2, y2) = draw(coordinates), draw(coordinates)
    minx, maxx, miny, maxy = min(x1, x2), max(x1, x2), min(y1, y2), max(y1, y2)
    form = draw(st.sampled_from(["bbox", "polygon", "point"]))
    if form == "bbox" or (form == "polygon" and (minx == maxx or miny == maxy)):
        text = f"BBOX({minx!r}, {miny!r}, {maxx!r}, {maxy!r})"
        if minx == maxx or miny == maxy:  # a box without width is the segment it covers
            same = (minx, miny) == (maxx, maxy)
            return text, Point(minx, miny) if same else LineString([(minx, miny), (maxx, maxy)])
        return text, box(minx, miny, maxx, maxy)
    if form == "point":
        return f"POINT({x1!r} {y1!r})", Point(x1, y1)
    ring = [(minx, miny), (maxx, miny), (maxx, maxy), (minx, maxy), (minx, miny)]
    wkt = ", ".join(f"{x!r} {y!r}" for x, y in ring)
    return f"POLYGON(({wkt}))", box(minx, miny, maxx, maxy)


def _spatial(name: str, area: tuple[str, BaseGeometry]) -> Node:
    text, geometry = area
    return f"{name}(geometry, {text})", lambda p, g: SPATIAL[name](g, geometry)


def combine(children: st.SearchStrategy[tuple[int, str, Any]]) -> st.SearchStrategy[Any]:
    return st.one_of(
        st.builds(_not, children, st.booleans()),
        st.builds(_junction, st.just("AND"), st.lists(children, min_size=2, max_size=3)),
        st.builds(_junction, st.just("OR"), st.lists(children, min_size=2, max_size=3)),
        st.builds(_parenthesised, children),
    )


# Nodes carry their precedence: 0 OR, 1 AND, 2 NOT, 3 a predicate or a parenthesised group.
Tree = tuple[int, str, Callable[[Props, BaseGeometry], bool | None]]


def _leaf(node: Node) -> Tree:
    return (3, *node)


def _parenthesised(child: Tree) -> Tree:
    return 3, f"({child[1]})", child[2]


def _not(child: Tree, lower: bool) -> Tree:
    text = child[1] if child[0] == 3 else f"({child[1]})"
    check = child[2]

    def negated(props: Props, geometry: BaseGeometry) -> bool | None:
        value = check(props, geometry)
        return None if value is None else not value

    return 2, f"{'not' if lower else 'NOT'} {text}", negated


def _junction(word: str, children: list[Tree]) -> Tree:
    level = 1 if word == "AND" else 0
    texts = [c[1] if c[0] >= level else f"({c[1]})" for c in children]
    checks = [c[2] for c in children]
    join = kleene_and if word == "AND" else kleene_or
    return level, f" {word} ".join(texts), lambda p, g: join([c(p, g) for c in checks])


@cache
def filters(layer: str) -> st.SearchStrategy[Tree]:
    return st.recursive(predicates(layer).map(_leaf), combine, max_leaves=8)


fixture_layers = st.sampled_from(["pipes", "valves", "hydrants"])


@settings(
    max_examples=500, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(fixture_layers.flatmap(lambda layer: st.tuples(st.just(layer), filters(layer))))
def test_well_formed_filters_select_what_python_selects(
    session: Session, case: tuple[str, Tree]
) -> None:
    layer, (_, text, check) = case
    found = executes(session, layer, text)
    assert found is not None, text
    assert found == python_ids(layer, check), text


def test_queryables_cover_every_attribute() -> None:
    for layer in LAYERS.values():
        names = queryables(layer)
        assert {a.name for a in layer.attributes if a.kind != "text_list"} <= set(names)
        assert {"id", "created_at", "updated_at", "geometry", "geom"} <= set(names)
        assert "list" not in names.values()
