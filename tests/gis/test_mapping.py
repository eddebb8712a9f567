"""Field mapping rules: names, units and codes as users write them."""

from __future__ import annotations

import pytest

from fieldline.gis.errors import InvalidField
from fieldline.gis.mapping import parse_mapping


def test_a_renamed_field_keeps_its_value() -> None:
    mapping = parse_mapping(["MATERIAL=material", "INSTALLED=install_year"])
    assert mapping.target("MATERIAL") == "material"
    assert mapping.target("OTHER") == "OTHER"
    assert mapping.convert("INSTALLED", 1962) == 1962


@pytest.mark.parametrize(
    ("rule", "value", "expected"),
    [
        ("DIAM_IN=diameter_mm:in", 6, 152.4),
        ("DIAM=diameter_mm:m", 0.15, 150.0),
        ("DIAM=diameter_mm:cm", 15, 150.0),
        ("DEPTH_FT=depth_m:ft", 10, 3.048),
        ("DEPTH=depth_m:mm", 1800, 1.8),
        ("ELEV=elevation_m:km", 0.012, 12.0),
    ],
)
def test_lengths_are_converted_to_the_unit_of_the_attribute(
    rule: str, value: float, expected: float
) -> None:
    source = rule.split("=")[0]
    assert parse_mapping([rule]).convert(source, value) == pytest.approx(expected)


def test_only_numbers_are_converted() -> None:
    mapping = parse_mapping(["DIAM_IN=diameter_mm:in"])
    assert mapping.convert("DIAM_IN", None) is None
    assert mapping.convert("DIAM_IN", "six") == "six"  # left for validation to refuse


def test_foreign_codes_become_fieldline_values() -> None:
    mapping = parse_mapping(
        ["MAT=material", "OPER=operable", "KIND=kind"],
        ["material=CI:cast_iron,DI:ductile_iron", "operable=Y:true,N:false", "kind=1:gate"],
    )
    assert mapping.convert("MAT", "CI") == "cast_iron"
    assert mapping.convert("MAT", " DI ") == "ductile_iron"
    assert mapping.convert("MAT", "PVC") == "PVC"  # no code: passed on unchanged
    assert mapping.convert("OPER", "N") is False
    assert mapping.convert("KIND", 1.0) == "gate"  # numeric codes compare as text


@pytest.mark.parametrize(
    ("maps", "value_maps", "field", "message"),
    [
        (["DIAMETER"], [], "map", "FIELD=attribute"),
        (["DIAMETER=diameter"], [], "map", "not an attribute"),
        (["NAME=name:ft"], [], "map", "no length unit"),
        (["DIAM=diameter_mm:yards"], [], "map", "unknown unit"),
        (["A=material", "A=district"], [], "map", "mapped twice"),
        ([], ["material=CI"], "map_values", "CODE:value"),
        ([], ["material=CI:iron"], "map_values", "not a value of material"),
        ([], ["operable=Y:yes"], "map_values", "not a boolean"),
        ([], ["colour=R:red"], "map_values", "not an attribute"),
    ],
)
def test_bad_rules_name_the_option(
    maps: list[str], value_maps: list[str], field: str, message: str
) -> None:
    with pytest.raises(InvalidField, match=message) as caught:
        parse_mapping(maps, value_maps)
    assert caught.value.field == field


def test_kind_values_may_come_from_any_layer_that_has_a_kind() -> None:
    mapping = parse_mapping([], ["kind=T:tank,PRV:prv"])
    assert mapping.convert("kind", "T") == "tank"
    assert mapping.convert("kind", "PRV") == "prv"
