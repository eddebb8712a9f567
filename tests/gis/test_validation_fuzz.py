"""Whatever JSON arrives, validation answers with InvalidField or a clean value, never a crash."""

from __future__ import annotations

from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from fieldline.gis.crs import CRS84
from fieldline.gis.errors import InvalidField
from fieldline.gis.layers import LAYERS
from fieldline.gis.validation import parse_geometry, parse_properties

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=12,
)
layers = st.sampled_from(sorted(LAYERS))
names = st.sampled_from(sorted({a.name for layer in LAYERS.values() for a in layer.attributes}))


@settings(max_examples=300, deadline=None)
@given(layers, st.dictionaries(names | st.text(max_size=8), json_values, max_size=6), st.booleans())
def test_properties(layer: str, properties: dict[str, Any], partial: bool) -> None:
    try:
        clean = parse_properties(LAYERS[layer], properties, partial=partial)
    except InvalidField as exc:
        assert exc.field.startswith("properties")
    else:
        assert set(clean) <= set(properties)


coordinates = st.recursive(
    st.floats() | st.integers(min_value=-1000, max_value=1000) | st.text(max_size=3),
    lambda children: st.lists(children, max_size=5),
    max_leaves=16,
)


@settings(max_examples=300, deadline=None)
@given(layers, st.sampled_from(["Point", "LineString", "Polygon", "Nope", None]), coordinates)
def test_geometry(layer: str, kind: str | None, coords: Any) -> None:
    try:
        geometry = parse_geometry(LAYERS[layer], {"type": kind, "coordinates": coords}, CRS84)
    except InvalidField as exc:
        assert exc.field.startswith("geometry")
    else:
        assert geometry.geom_type == LAYERS[layer].geometry_type
        assert geometry.is_valid
