"""CQL2 text filters (OGC API - Features Part 3) as SQLAlchemy conditions on a layer.

pygeofilter reads the text: its CQL2 grammar for predicates, WKT and timestamps, under boolean
rules written here, because in pygeofilter 0.4 AND and OR share one precedence (`a OR b AND c`
would read as `(a OR b) AND c`), NOT takes a single predicate only (`NOT (a AND b)` fails), and
a string cannot hold a quote (CQL2 writes it twice: `'O''Brien'`).

The syntax tree is translated here rather than by pygeofilter's SQLAlchemy backend: that
backend checks no types (`diameter_mm = 'wide'` fails in the database), compares an unknown
property name as a string constant (`colour = 'red'` is silently false), and raises bare
exceptions (a BBOX literal is a KeyError); its values are bound parameters too. Here every
value from the text is a typed bound parameter, every name must be a queryable of the layer,
and every mistake is an InvalidField("filter") whose detail says what and, where known, where.

Reference attributes (`pipe`, `from_node`) compare the referenced asset's public id through
the `ref_<name>` joins that `queries.select_features` and `select_documents` make, so the
condition belongs in those statements (`FeatureQuery.where`).
"""

from __future__ import annotations

import math
import operator
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime
from functools import cache, lru_cache
from pathlib import Path
from typing import Any

import shapely
import sqlalchemy as sa
from geoalchemy2 import Geometry
from lark import Lark, Token, Transformer, v_args
from lark.exceptions import UnexpectedCharacters, UnexpectedInput
from lark.lexer import PatternStr
from lark.visitors import merge_transformers
from pygeofilter import ast, values
from shapely.geometry import LineString, Point, box, shape
from shapely.geometry.base import BaseGeometry

from fieldline.gis.errors import InvalidField
from fieldline.gis.layers import COMMON_PROPERTIES, Layer
from fieldline.gis.models import SRID
from fieldline.gis.queries import filter_column

FIELD = "filter"
MAX_FILTER_CHARS = 10_000
# Nesting of AND/OR/NOT groups and CASEI calls; a run of ANDs (or ORs) is one level. This
# bounds the recursion here and in SQLAlchemy's compiler whatever the text.
MAX_DEPTH = 20
GEOMETRY_NAMES = ("geometry", "geom")
FUNCTIONS = ("CASEI",)

_GRAMMAR = r"""
?start: or_expression
?or_expression: and_expression | or_expression "OR"i and_expression -> or_
?and_expression: factor | and_expression "AND"i factor -> and_
?factor: primary | "NOT"i primary -> not_
?primary: predicate | "(" or_expression ")"

%import cql2_text.grammar (predicate, SINGLE_QUOTED)
%override SINGLE_QUOTED: /'(?:[^']|'')*'/
%import common.WS
%ignore WS
"""
# pygeofilter's grammar files are imported from here (cql2_text/grammar.lark, wkt.lark).
_NAMESPACE = "cql2_text__grammar"


@dataclass(frozen=True)
class _Operand:
    kind: str  # text | number | boolean | datetime | date | geometry | list
    sql: Any
    label: str  # as the filter wrote it, for messages
    where: str = ""  # " (line L, column C)" when known
    text: str | None = None  # the value of a text literal (or CASEI of one)


_KIND_OF_ATTRIBUTE = {
    "text": "text",
    "ref": "text",
    "number": "number",
    "integer": "number",
    "boolean": "boolean",
    "datetime": "datetime",
    "text_list": "list",
}
_ARTICLE = {
    "text": "text",
    "number": "a number",
    "boolean": "a boolean",
    "datetime": "a timestamp",
    "date": "a date",
    "geometry": "a geometry",
    "list": "a list",
}
_COMPARISONS: dict[type, Callable[[Any, Any], Any]] = {
    ast.Equal: operator.eq,
    ast.NotEqual: operator.ne,
    ast.LessThan: operator.lt,
    ast.LessEqual: operator.le,
    ast.GreaterThan: operator.gt,
    ast.GreaterEqual: operator.ge,
}
_SPATIAL = {
    "INTERSECTS": sa.func.ST_Intersects,
    "DISJOINT": sa.func.ST_Disjoint,
    "CONTAINS": sa.func.ST_Contains,
    "WITHIN": sa.func.ST_Within,
    "TOUCHES": sa.func.ST_Touches,
    "CROSSES": sa.func.ST_Crosses,
    "OVERLAPS": sa.func.ST_Overlaps,
    "EQUALS": sa.func.ST_Equals,
}


def to_condition(layer: Layer, text: str) -> sa.ColumnElement[bool]:
    """The CQL2 text filter `text` as a condition on `layer`'s features.

    Raises InvalidField("filter", detail) for anything that is not a valid filter on this
    layer; nothing else escapes, whatever the text.
    """
    return _translate(_Translator(layer), _parse(text))


def queryables(layer: Layer) -> dict[str, str]:
    """The names a filter on `layer` can use, with the kind each compares as (text, number,
    boolean, datetime, geometry); lists are left out, as they hold no one value to compare."""
    return {n: operand.kind for n, operand in _properties(layer).items() if operand.kind != "list"}


# --- parsing ---------------------------------------------------------------------------------


def _parse(text: str) -> Any:
    if not isinstance(text, str):
        raise InvalidField(FIELD, "must be text")
    if len(text) > MAX_FILTER_CHARS:
        raise InvalidField(FIELD, f"longer than {MAX_FILTER_CHARS} characters")
    if not text.strip():
        raise InvalidField(FIELD, "is empty")
    parser = _parser()
    try:
        return parser.parse(text)
    except InvalidField:
        raise
    except UnexpectedInput as exc:
        raise InvalidField(FIELD, _syntax_error(parser, text, exc)) from None
    except Exception:  # the grammar's callbacks may raise on odd input; never a 500
        raise InvalidField(FIELD, "is not valid CQL2 text") from None


@cache
def _parser() -> Lark:
    import pygeofilter.parsers
    from pygeofilter.parsers.cql2_text.parser import CQLTransformer

    @v_args(inline=True)
    class Predicates(CQLTransformer):
        """pygeofilter's callbacks, with positions kept and without its debug prints."""

        def attribute(self, name: Token) -> ast.Attribute:
            return ast.Attribute(name)  # the Token keeps its line and column

        def DOUBLE_QUOTED(self, token: Token) -> Token:
            return token.update(value=token[1:-1])

        def function(self, name: ast.Attribute, *arguments: Any) -> ast.Function:
            return ast.Function(name.name, list(arguments))  # CASEI stays CASEI

        def neg(self, value: Any) -> Any:
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise InvalidField(FIELD, "a minus sign applies to numbers only")
            return -value

        def DATETIME(self, token: Token) -> datetime:
            try:
                moment = datetime.fromisoformat(token)
            except ValueError:
                raise InvalidField(
                    FIELD, f"{token!s} is not a valid timestamp{_at(token)}"
                ) from None
            if moment.tzinfo is None:
                raise InvalidField(
                    FIELD, f"timestamp {token!s} needs a time zone, e.g. Z for UTC{_at(token)}"
                )
            return moment.astimezone(UTC)

        def DATE(self, token: Token) -> date:
            try:
                return date.fromisoformat(token)
            except ValueError:
                raise InvalidField(FIELD, f"{token!s} is not a valid date{_at(token)}") from None

        def wkt__geometry_with_srid(self, srid: Any, geometry: Any) -> Any:
            raise InvalidField(
                FIELD, "geometries are WGS 84 longitude/latitude (CRS84); SRID=... is not taken"
            )

        def wkt__multipoint_2(self, *coordinates: Any) -> dict[str, Any]:
            return {"type": "MultiPoint", "coordinates": coordinates}

    @v_args(inline=True)
    class Logic(Transformer):
        def and_(self, lhs: Any, rhs: Any) -> ast.And:
            return ast.And(lhs, rhs)

        def or_(self, lhs: Any, rhs: Any) -> ast.Or:
            return ast.Or(lhs, rhs)

        def not_(self, node: Any) -> ast.Not:
            return ast.Not(node)

        def SINGLE_QUOTED(self, token: Token) -> Token:
            return token.update(value=token[1:-1].replace("''", "'"))

    return Lark(
        _GRAMMAR,
        parser="lalr",
        maybe_placeholders=False,
        import_paths=[str(Path(pygeofilter.parsers.__file__).parent)],
        transformer=merge_transformers(Logic(), **{_NAMESPACE: Predicates()}),
    )


def _at(token: Any) -> str:
    line, column = getattr(token, "line", None), getattr(token, "column", None)
    return f" (line {line}, column {column})" if line and column else ""


def _syntax_error(parser: Lark, text: str, exc: UnexpectedInput) -> str:
    token = getattr(exc, "token", None)
    if token is not None and token.type == "$END":
        lines = text.rstrip().split("\n")
        where, found = f"line {len(lines)}, column {len(lines[-1]) + 1}", "the filter ends early"
    else:
        where = f"line {exc.line}, column {exc.column}"
        if isinstance(exc, UnexpectedCharacters):
            found = f"unexpected character {exc.char!r}"
        else:
            found = f"unexpected {_clip(str(token))!r}"
    # Lark's sets of what could come next are each partial; together they are whole.
    names = {
        *(getattr(exc, "expected", None) or ()),
        *(getattr(exc, "accepts", None) or ()),
        *(getattr(exc, "allowed", None) or ()),
    }
    expected = sorted({_describe(parser, name) for name in names} - {""})
    hint = ""
    if expected:
        more = ", ..." if len(expected) > 12 else ""
        hint = f"; expected {', '.join(expected[:12])}{more}"
    return f"syntax error at {where}: {found}{hint}"


# Words of pygeofilter's grammar that are not CQL2 or not taken here: not suggested.
_NOT_SUGGESTED = {"BBOX", "ENVELOPE", "EXCLUDE", "INCLUDE", "INTERVAL", "RELATE", "SRID"}
_NOT_SUGGESTED |= {"EQ", "NE", "LT", "LTE", "GT", "GTE"}
_WKT = {"POINT", "LINESTRING", "POLYGON", "MULTIPOINT", "MULTILINESTRING", "MULTIPOLYGON"}
_WKT.add("GEOMETRYCOLLECTION")
_DESCRIPTIONS = {
    "SINGLE_QUOTED": "a 'string'",
    "DOUBLE_QUOTED": 'a "property"',
    "INT": "a number",
    "FLOAT": "a number",
    "SIGNED_NUMBER": "a number",
    "NUMBER": "a number",
    "BOOLEAN": "TRUE or FALSE",
    "DATETIME": "a timestamp",
    "DATE": "a date",
}


def _describe(parser: Lark, terminal: str) -> str:
    """A terminal as a user would write it: `"AND"`, `")"`, `a number`; "" to leave it out."""
    if terminal == "$END":
        return "the end"
    try:
        pattern = parser.get_terminal(terminal).pattern
    except KeyError:
        return ""
    if isinstance(pattern, PatternStr):
        word = pattern.value.upper()
        if word in _NOT_SUGGESTED or word.startswith("T_"):
            return ""
        if word in _WKT:
            return "a WKT geometry"
        if word.startswith("S_"):
            return "S_INTERSECTS(...) or another spatial function"
        return f'"{word}"'
    name = terminal.rsplit("__", 1)[-1]
    return _DESCRIPTIONS.get(name, "a property name" if "ANON" in name else "")


def _clip(text: str, size: int = 40) -> str:
    return text if len(text) <= size else text[: size - 3] + "..."


# --- translation -----------------------------------------------------------------------------


@lru_cache(maxsize=32)
def _properties(layer: Layer) -> dict[str, _Operand]:
    table = layer.table
    found = {"id": _Operand("text", table.c.public_id, "id")}
    for attribute in layer.attributes:
        kind = _KIND_OF_ATTRIBUTE[attribute.kind]
        found[attribute.name] = _Operand(kind, filter_column(layer, attribute), attribute.name)
    for name in COMMON_PROPERTIES:
        column = table.c[name]
        kind = "datetime" if isinstance(column.type, sa.DateTime) else "text"
        found[name] = _Operand(kind, column, name)
    for name in GEOMETRY_NAMES:
        found[name] = _Operand("geometry", table.c.geom, name)
    return found


class _Translator:
    def __init__(self, layer: Layer) -> None:
        self.layer = layer
        self.properties = _properties(layer)

    def property(self, node: ast.Attribute) -> _Operand:
        name = node.name
        operand = self.properties.get(str(name))
        where = _at(name)
        if operand is None:
            names = ", ".join(n for n, o in self.properties.items() if o.kind != "list")
            raise InvalidField(
                FIELD,
                f"unknown property {_clip(str(name))!r}{where}; {self.layer.name} can be "
                f"filtered on: {names}",
            )
        if operand.kind == "list":
            raise InvalidField(FIELD, f"{name} is a list and cannot be filtered{where}")
        return _Operand(operand.kind, operand.sql, str(name), where)


def _translate(translator: _Translator, node: Any, depth: int = 0) -> Any:
    if depth > MAX_DEPTH:
        raise InvalidField(FIELD, f"nested more than {MAX_DEPTH} levels deep")
    if isinstance(node, ast.And | ast.Or):
        kind = type(node)
        parts = [_translate(translator, item, depth + 1) for item in _chain(node, kind)]
        return sa.and_(*parts) if kind is ast.And else sa.or_(*parts)
    if isinstance(node, ast.Not):
        return sa.not_(_translate(translator, node.sub_node, depth + 1))

    def value(item: Any) -> _Operand:
        return _operand(translator, item, depth + 1)

    if type(node) in _COMPARISONS:
        return _compare(value(node.lhs), _COMPARISONS[type(node)], value(node.rhs))
    if isinstance(node, ast.Between):
        lhs = value(node.lhs)
        inside = sa.and_(
            _compare(lhs, operator.ge, value(node.low)),
            _compare(lhs, operator.le, value(node.high)),
        )
        return sa.not_(inside) if node.not_ else inside
    if isinstance(node, ast.In):
        lhs = value(node.lhs)
        # `x IN (a, b)` is `x = a OR x = b` in SQL's three-valued logic too; spelled out so
        # that each item is checked and coerced (a DATE among timestamps) like a comparison.
        found = sa.or_(*(_compare(lhs, operator.eq, value(item)) for item in node.sub_nodes))
        return sa.not_(found) if node.not_ else found
    if isinstance(node, ast.Like):
        return _like(value(node.lhs), value(node.pattern), node.not_)
    if isinstance(node, ast.IsNull):
        lhs = value(node.lhs)
        return lhs.sql.is_not(None) if node.not_ else lhs.sql.is_(None)
    if isinstance(node, ast.SpatialComparisonPredicate):
        lhs, rhs = value(node.lhs), value(node.rhs)
        name = f"S_{node.op.name}"
        for side in (lhs, rhs):
            if side.kind != "geometry":
                raise InvalidField(
                    FIELD, f"{name} compares geometries; {side.label} is {_ARTICLE[side.kind]}"
                )
        result: sa.ColumnElement[bool] = _SPATIAL[node.op.name](lhs.sql, rhs.sql)
        return result
    raise InvalidField(FIELD, _unsupported(node))


def _chain(node: Any, kind: type[ast.Combination]) -> list[Any]:
    """The operands of a run of ANDs (or ORs), in order, without recursion: the parser builds
    `a AND b AND c` as ((a AND b) AND c), as deep as the run is long."""
    items: list[Any] = []
    stack: list[Any] = [node]
    while stack:
        current = stack.pop()
        if isinstance(current, kind):
            stack.extend((current.rhs, current.lhs))
        else:
            items.append(current)
    return items


def _unsupported(node: Any) -> str:
    if isinstance(node, ast.TemporalPredicate):
        return (
            f"temporal predicates ({node.op.name}) are not supported; compare with <, >, "
            "BETWEEN and TIMESTAMP('...') or DATE('...')"
        )
    if isinstance(node, ast.BBox | ast.Relate | ast.SpatialDistancePredicate):
        return (
            f"{type(node).__name__.upper()} is not supported; use S_INTERSECTS, S_DISJOINT, "
            "S_WITHIN, S_CONTAINS, S_TOUCHES, S_CROSSES, S_OVERLAPS or S_EQUALS"
        )
    if isinstance(node, ast.Include):
        return "INCLUDE and EXCLUDE are not CQL2"
    if isinstance(node, ast.Node):
        return f"{type(node).__name__} is not supported in a condition"
    return f"{_clip(repr(node))} is not a condition"


def _operand(translator: _Translator, node: Any, depth: int) -> _Operand:
    if depth > MAX_DEPTH:
        raise InvalidField(FIELD, f"nested more than {MAX_DEPTH} levels deep")
    if isinstance(node, ast.Attribute):
        return translator.property(node)
    if isinstance(node, ast.Function):
        return _function(translator, node, depth)
    if isinstance(node, ast.Arithmetic):
        raise InvalidField(FIELD, "arithmetic (+ - * /) is not supported")
    return _literal(node)


def _function(translator: _Translator, node: ast.Function, depth: int) -> _Operand:
    name, where = str(node.name).upper(), _at(node.name)
    if name == "BBOX":
        return _bbox(node.arguments, where)
    if name != "CASEI":
        raise InvalidField(
            FIELD,
            f"unknown function {_clip(str(node.name))}{where}; supported: {', '.join(FUNCTIONS)}"
            " and BBOX(...) as a geometry",
        )
    if len(node.arguments) != 1:
        raise InvalidField(FIELD, f"CASEI takes one argument{where}")
    argument = _operand(translator, node.arguments[0], depth + 1)
    if argument.kind != "text":
        raise InvalidField(
            FIELD, f"CASEI takes text; {argument.label} is {_ARTICLE[argument.kind]}{where}"
        )
    text = None if argument.text is None else argument.text.lower()
    return _Operand("text", sa.func.lower(argument.sql), f"CASEI({argument.label})", where, text)


def _literal(value: Any) -> _Operand:
    label = _clip(repr(str(value)) if isinstance(value, str) else str(value))
    if isinstance(value, bool):
        return _Operand("boolean", sa.bindparam(None, value, type_=sa.Boolean), label)
    if isinstance(value, int):
        if -(2**63) <= value < 2**63:
            return _Operand("number", sa.bindparam(None, value, type_=sa.BigInteger), label)
        value = float(value) if abs(value) < 2**1023 else math.inf
    if isinstance(value, float):
        if not math.isfinite(value):
            raise InvalidField(FIELD, f"{label} is too large a number")
        return _Operand("number", sa.bindparam(None, value, type_=sa.Float), label)
    if isinstance(value, str):
        if "\x00" in value:
            raise InvalidField(FIELD, f"text must not contain NUL characters{_at(value)}")
        text = str(value)
        return _Operand("text", sa.bindparam(None, text, type_=sa.Text), label, _at(value), text)
    if isinstance(value, datetime):
        moment: Any = sa.bindparam(None, value, type_=sa.DateTime(timezone=True))
        return _Operand("datetime", moment, f"TIMESTAMP('{value.isoformat()}')")
    if isinstance(value, date):
        return _Operand("date", sa.bindparam(None, value, type_=sa.Date), f"DATE('{value}')")
    if isinstance(value, values.Geometry):
        return _geometry(_shape(value.geometry), str(value.geometry.get("type", "geometry")))
    if isinstance(value, values.Envelope):
        raise InvalidField(FIELD, "ENVELOPE is not CQL2; use BBOX(minx, miny, maxx, maxy)")
    if isinstance(value, values.Interval):
        raise InvalidField(FIELD, "INTERVAL is not supported; use BETWEEN with TIMESTAMP('...')")
    raise InvalidField(FIELD, f"{label} is not supported here")


def _compare(lhs: _Operand, op: Callable[[Any, Any], Any], rhs: _Operand) -> Any:
    for side in (lhs, rhs):
        if side.kind == "geometry":
            raise InvalidField(
                FIELD, f"{side.label} is a geometry: compare it with S_INTERSECTS and the like"
            )
    # A date against a timestamp compares the timestamp's UTC calendar day, so that
    # `t <= DATE('2024-01-31')` takes all of that day.
    if {lhs.kind, rhs.kind} == {"date", "datetime"}:
        lhs, rhs = _as_date(lhs), _as_date(rhs)
    if lhs.kind != rhs.kind:
        where = lhs.where or rhs.where
        raise InvalidField(
            FIELD,
            f"{lhs.label} is {_ARTICLE[lhs.kind]} but {rhs.label} is {_ARTICLE[rhs.kind]}{where}",
        )
    return op(lhs.sql, rhs.sql)


def _as_date(operand: _Operand) -> _Operand:
    if operand.kind != "datetime":
        return operand
    day = sa.cast(sa.func.timezone("UTC", operand.sql), sa.Date)
    return _Operand("date", day, operand.label, operand.where)


def _like(lhs: _Operand, pattern: _Operand, negate: bool) -> Any:
    if lhs.kind != "text":
        raise InvalidField(FIELD, f"LIKE needs text; {lhs.label} is {_ARTICLE[lhs.kind]}")
    if pattern.text is None:
        raise InvalidField(FIELD, f"the pattern of LIKE must be a 'string'{lhs.where}")
    # PostgreSQL refuses a pattern whose last character escapes nothing.
    if re.search(r"(?<!\\)(?:\\\\)*\\$", pattern.text):
        raise InvalidField(FIELD, f"the LIKE pattern {pattern.label} ends with a lone \\")
    found = lhs.sql.like(pattern.sql)
    return sa.not_(found) if negate else found


def _shape(geojson: Mapping[str, Any]) -> BaseGeometry:
    try:
        geometry = shape(geojson)
    except Exception as exc:  # shapely raises several types for malformed coordinates
        reason = str(exc).strip().removeprefix("IllegalArgumentException: ")
        raise InvalidField(
            FIELD, f"malformed {geojson.get('type', 'geometry')}: {_clip(reason, 80)}"
        ) from None
    return geometry


def _bbox(arguments: list[Any], where: str) -> _Operand:
    numbers = [a for a in arguments if isinstance(a, int | float) and not isinstance(a, bool)]
    if len(numbers) != len(arguments) or len(numbers) not in (4, 6):
        raise InvalidField(FIELD, f"BBOX takes 4 or 6 numbers{where}")
    corners = [float(n) if abs(n) < 2**1023 else math.inf for n in numbers]
    minx, miny, maxx, maxy = (
        (corners[0], corners[1], corners[3], corners[4]) if len(corners) == 6 else corners
    )
    if not all(math.isfinite(n) for n in corners):
        raise InvalidField(FIELD, f"BBOX takes finite numbers{where}")
    if minx > maxx or miny > maxy:
        raise InvalidField(FIELD, f"BBOX takes minx, miny, maxx, maxy with min <= max{where}")
    # A box without width or height is the segment (or point) it covers: as a polygon it would
    # be degenerate, and GEOS answers predicates on such polygons inconsistently.
    if minx == maxx or miny == maxy:
        area = LineString([(minx, miny), (maxx, maxy)]) if (minx, miny) != (maxx, maxy) else None
        return _geometry(area or Point(minx, miny), "BBOX")
    return _geometry(box(minx, miny, maxx, maxy), "BBOX")


def _geometry(geometry: BaseGeometry, label: str) -> _Operand:
    """A geometry literal: WGS 84 longitude/latitude, checked, bound as WKB."""
    if shapely.has_z(geometry):
        geometry = shapely.force_2d(geometry)
    coordinates = shapely.get_coordinates(geometry)
    if geometry.is_empty:
        raise InvalidField(FIELD, f"{label} is empty")
    for lon, lat in coordinates:
        if not (-180 <= lon <= 180 and -90 <= lat <= 90):
            raise InvalidField(
                FIELD,
                f"{label} has ({lon:g} {lat:g}) outside longitude -180..180 / latitude -90..90;"
                " geometries are CRS84 longitude/latitude",
            )
    if not geometry.is_valid:
        reason = shapely.is_valid_reason(geometry)
        raise InvalidField(FIELD, f"{label} is not a valid geometry: {_clip(reason, 80)}")
    wkb = sa.bindparam(None, shapely.to_wkb(geometry), type_=sa.LargeBinary)
    sql = sa.func.ST_GeomFromWKB(wkb, sa.literal(SRID, sa.Integer), type_=Geometry(srid=SRID))
    return _Operand("geometry", sql, label)
