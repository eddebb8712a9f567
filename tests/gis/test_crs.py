from __future__ import annotations

import pytest
from pyproj import Transformer
from shapely import Point

from fieldline.gis.crs import CRS84, parse_crs, point_to_wgs84, to_wgs84
from fieldline.gis.errors import InvalidField


@pytest.mark.parametrize(
    ("text", "srid"),
    [
        ("EPSG:3067", 3067),
        ("epsg:3857", 3857),
        ("4326", 4326),
        ("http://www.opengis.net/def/crs/EPSG/0/3067", 3067),
        ("http://www.opengis.net/def/crs/OGC/1.3/CRS84", 4326),
        ("CRS84", 4326),
    ],
)
def test_parse_crs(text: str, srid: int) -> None:
    assert parse_crs(text).srid == srid


@pytest.mark.parametrize(
    "text", ["EPSG:1", "banana", "http://www.opengis.net/def/crs/OGC/1.3/CRS27", ""]
)
def test_unknown_crs_names_the_field(text: str) -> None:
    with pytest.raises(InvalidField) as caught:
        parse_crs(text, "bbox-crs")
    assert caught.value.field == "bbox-crs"


def test_transform_agrees_with_pyproj_and_round_trips() -> None:
    local = parse_crs("EPSG:3067")
    expected = Transformer.from_crs(3067, 4326, always_xy=True).transform(385000.0, 6672000.0)
    assert point_to_wgs84(385000.0, 6672000.0, local) == pytest.approx(expected, abs=1e-9)
    point = to_wgs84(Point(385000.0, 6672000.0), local)
    assert (point.x, point.y) == pytest.approx(expected, abs=1e-9)
    assert to_wgs84(point, CRS84) is point


@pytest.mark.parametrize(("srid", "yx"), [(4326, True), (3067, False), (3857, False), (3879, True)])
def test_authority_axis_order(srid: int, yx: bool) -> None:
    assert parse_crs(f"EPSG:{srid}", authority_axes=True).yx is yx
    assert parse_crs(f"EPSG:{srid}").yx is False  # the REST API stays x/y
    assert parse_crs("CRS84", authority_axes=True).yx is False


def test_latitude_first_input_is_swapped() -> None:
    lat_first = parse_crs("EPSG:4326", authority_axes=True)
    assert point_to_wgs84(60.17, 24.95, lat_first) == (24.95, 60.17)
    point = to_wgs84(Point(60.17, 24.95), lat_first)
    assert (point.x, point.y) == (24.95, 60.17)
    gk25 = parse_crs("EPSG:3879", authority_axes=True)  # Helsinki's own: northing first
    expected = Transformer.from_crs(3879, 4326, always_xy=True).transform(25497000.0, 6672000.0)
    assert point_to_wgs84(6672000.0, 25497000.0, gk25) == pytest.approx(expected, abs=1e-9)
