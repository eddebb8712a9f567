"""Foreign field names, units and codes mapped onto the attributes of a layer.

Utilities name their fields after their own GIS (`DIAMETER`, `MATERIAL`, `INST_YEAR`) and code
their values (`CI`, `DI`). One small syntax says how they map, the same on the command line
(`--map`, `--map-values`, `--id-field`) and in the upload form (`map`, `map_values`, `id_field`):

- `DIAMETER=diameter_mm` renames a field; `DIAM_IN=diameter_mm:in` also converts its numbers from
  inches to the unit the attribute's name ends with (`_mm` or `_m`); length units are
  mm, cm, m, km, in and ft.
- `material=CI:cast_iron,DI:ductile_iron` replaces foreign codes of an attribute (named as in
  Fieldline, after renaming) with Fieldline values; values without a code pass unchanged and are
  validated as usual, so an unknown code is reported with its feature.
- The id field names the field that identifies a feature in its own system.

Fields named like an attribute need no rule. Fields that match no attribute are ignored, and the
import names them once per file.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from fieldline.gis.errors import InvalidField
from fieldline.gis.layers import LAYERS, Attribute

# Length units in metres; an attribute's unit is the suffix of its name.
LENGTH_UNITS_M = {"mm": 0.001, "cm": 0.01, "m": 1.0, "km": 1000.0, "in": 0.0254, "ft": 0.3048}


@dataclass(frozen=True)
class FieldRule:
    source: str  # the field's name in the file
    target: str  # the attribute's name
    factor: float = 1.0  # numbers are multiplied by it (unit conversion)


@dataclass(frozen=True)
class FieldMapping:
    rules: tuple[FieldRule, ...] = ()
    # attribute -> (foreign code, Fieldline value) pairs
    values: tuple[tuple[str, tuple[tuple[str, Any], ...]], ...] = ()
    id_field: str | None = None
    _rule_index: dict[str, FieldRule] = field(init=False, repr=False, compare=False)
    _value_index: dict[str, dict[str, Any]] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_rule_index", {r.source: r for r in self.rules})
        object.__setattr__(self, "_value_index", {a: dict(pairs) for a, pairs in self.values})

    @property
    def empty(self) -> bool:
        return not (self.rules or self.values or self.id_field)

    def target(self, source_field: str) -> str:
        """The attribute name a file's field stands for (its own name without a rule)."""
        rule = self._rule_index.get(source_field)
        return rule.target if rule else source_field

    def convert(self, source_field: str, value: Any) -> Any:
        """The value in Fieldline's unit and vocabulary."""
        rule = self._rule_index.get(source_field)
        target = rule.target if rule else source_field
        if rule and rule.factor != 1.0 and _is_number(value):
            value = value * rule.factor
        codes = self._value_index.get(target)
        if codes and value is not None:
            value = codes.get(_code(value), value)
        return value


NO_MAPPING = FieldMapping()


def parse_mapping(
    maps: Iterable[str] = (), value_maps: Iterable[str] = (), id_field: str | None = None
) -> FieldMapping:
    """Read the rules as users write them; a bad rule is an InvalidField naming `map`,
    `map_values` or `id_field`."""
    rules: dict[str, FieldRule] = {}
    for text in maps:
        rule = parse_field_rule(text)
        if rule.source in rules:
            raise InvalidField("map", f"{rule.source!r} is mapped twice")
        rules[rule.source] = rule
    values: dict[str, tuple[tuple[str, Any], ...]] = {}
    for text in value_maps:
        name, pairs = parse_value_rule(text)
        if name in values:
            raise InvalidField("map_values", f"values of {name!r} are mapped twice")
        values[name] = pairs
    if id_field is not None and not id_field.strip():
        raise InvalidField("id_field", "must name a field")
    return FieldMapping(
        tuple(rules.values()), tuple(values.items()), id_field.strip() if id_field else None
    )


def parse_field_rule(text: str) -> FieldRule:
    source, sep, rest = text.partition("=")
    target, _, unit = rest.partition(":")
    source, target, unit = source.strip(), target.strip(), unit.strip()
    if not sep or not source or not target:
        raise InvalidField("map", f"{text!r} is not FIELD=attribute or FIELD=attribute:unit")
    _attributes(target, "map")
    if not unit:
        return FieldRule(source, target)
    target_unit = target.rsplit("_", 1)[-1]
    if target_unit not in LENGTH_UNITS_M or "_" not in target:
        raise InvalidField("map", f"{target} has no length unit to convert {unit!r} to")
    if unit not in LENGTH_UNITS_M:
        raise InvalidField("map", f"unknown unit {unit!r}; use one of: {', '.join(LENGTH_UNITS_M)}")
    return FieldRule(source, target, LENGTH_UNITS_M[unit] / LENGTH_UNITS_M[target_unit])


def parse_value_rule(text: str) -> tuple[str, tuple[tuple[str, Any], ...]]:
    name, sep, rest = text.partition("=")
    name = name.strip()
    if not sep or not name or not rest.strip():
        raise InvalidField("map_values", f"{text!r} is not attribute=CODE:value,CODE:value")
    attributes = _attributes(name, "map_values")
    pairs = []
    for item in rest.split(","):
        code, colon, value = item.partition(":")
        if not colon or not code.strip():
            raise InvalidField("map_values", f"{item.strip()!r} is not CODE:value")
        pairs.append((code.strip(), _typed(attributes, value.strip())))
    return name, tuple(pairs)


def _attributes(name: str, field: str) -> list[Attribute]:
    """Every layer's attribute of that name (`kind` exists in several layers)."""
    found = [
        a
        for layer in LAYERS.values()
        for a in layer.attributes
        if a.name == name and not a.read_only
    ]
    if not found:
        raise InvalidField(field, f"{name!r} is not an attribute of any layer")
    return found


def _typed(attributes: list[Attribute], text: str) -> Any:
    """A mapped value in the attribute's type, checked against its allowed values."""
    kind = attributes[0].kind
    value: Any = text
    try:
        if kind == "boolean":
            value = {"true": True, "false": False}[text.lower()]
        elif kind == "integer":
            value = int(text)
        elif kind == "number":
            value = float(text)
    except (KeyError, ValueError):
        raise InvalidField("map_values", f"{text!r} is not a {kind}") from None
    choices = {c for a in attributes for c in a.choices}
    if choices and value not in choices:
        raise InvalidField(
            "map_values",
            f"{text!r} is not a value of {attributes[0].name}: {', '.join(sorted(choices))}",
        )
    return value


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _code(value: Any) -> str:
    """Codes compare as text: a numeric code 3 or 3.0 matches `3`, padding is ignored."""
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    return str(value).strip()
