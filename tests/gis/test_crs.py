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
