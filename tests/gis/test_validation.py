from __future__ import annotations

from datetime import UTC, datetime

import pytest

from fieldline.gis.crs import CRS84
from fieldline.gis.errors import InvalidField
from fieldline.gis.layers import LAYERS
from fieldline.gis.validation import parse_geometry, parse_properties

PIPES = LAYERS["pipes"]
HYDRANTS = LAYERS["hydrants"]


def test_a_good_pipe_passes() -> None:
    geometry = parse_geometry(
        PIPES, {"type": "LineString", "coordinates": [[24.9, 60.1], [24.91, 60.1]]}, CRS84
    )
    assert geometry.geom_type == "LineString"
    assert parse_properties(PIPES, {"diameter_mm": 150, "material": "PVC"}, partial=False) == {
        "diameter_mm": 150.0,
        "material": "PVC",
    }


def test_z_coordinates_are_dropped() -> None:
    geometry = parse_geometry(HYDRANTS, {"type": "Point", "coordinates": [24.9, 60.1, 12.0]}, CRS84)
    assert not geometry.has_z


@pytest.mark.parametrize("value", [float("nan"), float("inf")])
def test_non_finite_numbers_are_refused(value: float) -> None:
    with pytest.raises(InvalidField, match="finite"):
        parse_properties(PIPES, {"diameter_mm": value}, partial=True)


def test_datetimes_need_a_time_zone() -> None:
    with pytest.raises(InvalidField, match="time zone"):
        parse_properties(HYDRANTS, {"last_inspected_at": "2024-05-01T08:00:00"}, partial=True)
    parsed = parse_properties(HYDRANTS, {"last_inspected_at": "2024-05-01T08:00:00Z"}, partial=True)
    assert parsed["last_inspected_at"] == datetime(2024, 5, 1, 8, tzinfo=UTC)


def test_required_attributes() -> None:
    with pytest.raises(InvalidField) as caught:
        parse_properties(LAYERS["meters"], {}, partial=False)
    assert caught.value.field == "properties.serial"
    assert parse_properties(LAYERS["meters"], {}, partial=True) == {}


def test_booleans_are_not_numbers() -> None:
    with pytest.raises(InvalidField):
        parse_properties(PIPES, {"diameter_mm": True}, partial=True)
    with pytest.raises(InvalidField):
        parse_properties(LAYERS["valves"], {"operable": 1}, partial=True)


def test_text_is_bounded_and_clean() -> None:
    with pytest.raises(InvalidField, match="longer"):
        parse_properties(LAYERS["markers"], {"label": "x" * 501}, partial=True)
    with pytest.raises(InvalidField, match="NUL"):
        parse_properties(LAYERS["markers"], {"label": "a\x00b"}, partial=True)
