"""Coordinate reference systems: parsing user input and transforming to and from WGS 84.

Storage is always EPSG:4326 with longitude first. Other systems are accepted as `EPSG:3067`,
`3067`, or OGC URIs (`http://www.opengis.net/def/crs/EPSG/0/3067`, `.../OGC/1.3/CRS84`).

Axis order is x/y (easting/longitude first), as in GeoJSON, unless a caller asks for the order
of the CRS's own definition (`authority_axes`): OGC API - Features writes and reads EPSG:4326
as latitude/longitude, and GDAL relies on it. Such a Crs has `yx` set, and the transforms
here swap its coordinates, so code past parsing never deals with axis order.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
from pyproj import CRS, Transformer
from pyproj.exceptions import CRSError
from shapely import Geometry
from shapely import transform as shapely_transform

from fieldline.gis.errors import InvalidField

WGS84 = 4326
_URI = re.compile(r"^https?://www\.opengis\.net/def/crs/(EPSG|OGC)/[^/]+/([A-Za-z0-9]+)$")
_CODE = re.compile(r"^(?:EPSG:)?(\d{4,6})$", re.IGNORECASE)


@dataclass(frozen=True)
class Crs:
    srid: int
    uri: str
    geographic: bool
    yx: bool = False  # coordinates are written latitude (or northing) first

    @property
    def precision(self) -> int:
        """Decimal places for output: ~1 cm in degrees or in metres."""
        return 7 if self.geographic else 2


@lru_cache(maxsize=64)
def crs_from_srid(srid: int, authority_axes: bool = False) -> Crs:
    try:
        crs = CRS.from_epsg(srid)
    except CRSError:
        raise ValueError(f"unknown EPSG code {srid}") from None
    yx = authority_axes and crs.axis_info[0].direction.lower() in {"north", "south"}
    return Crs(srid, f"http://www.opengis.net/def/crs/EPSG/0/{srid}", crs.is_geographic, yx)


CRS84 = Crs(WGS84, "http://www.opengis.net/def/crs/OGC/1.3/CRS84", True)


def parse_crs(value: str, field: str = "crs", *, authority_axes: bool = False) -> Crs:
    """Read a CRS a user named; an unknown one is an InvalidField naming `field`.

    With `authority_axes`, coordinates follow the axis order of the CRS's definition
    (latitude first for EPSG:4326); CRS84 is longitude first either way."""
    text = value.strip()
    uri = _URI.match(text)
    if uri:
        authority, code = uri.groups()
        if authority == "OGC":
            if code.upper() == "CRS84":
                return CRS84
            raise InvalidField(field, f"unsupported OGC CRS {code!r}; use CRS84 or an EPSG code")
        text = code
    if text.upper() in {"CRS84", "OGC:CRS84"}:
        return CRS84
    match = _CODE.match(text)
    if not match:
        raise InvalidField(field, f"{value!r} is not a CRS; use e.g. EPSG:3067 or an OGC URI")
    try:
        return crs_from_srid(int(match.group(1)), authority_axes)
    except ValueError as exc:
        raise InvalidField(field, str(exc)) from None


@lru_cache(maxsize=64)
def _transformer(source: int, target: int) -> Transformer:
    return Transformer.from_crs(source, target, always_xy=True)


def to_wgs84(geometry: Geometry, source: Crs) -> Geometry:
    if source.yx:
        geometry = swap_axes(geometry)
    if source.srid == WGS84:
        return geometry
    return shapely_transform(geometry, lambda xy: _stack(_transformer(source.srid, WGS84), xy))


def from_wgs84(geometry: Geometry, target: Crs) -> Geometry:
    if target.srid != WGS84:
        geometry = shapely_transform(
            geometry, lambda xy: _stack(_transformer(WGS84, target.srid), xy)
        )
    return swap_axes(geometry) if target.yx else geometry


def swap_axes(geometry: Geometry) -> Geometry:
    return shapely_transform(geometry, lambda xy: xy[:, ::-1])


def _stack(transformer: Transformer, xy: np.ndarray) -> np.ndarray:
    x, y = transformer.transform(xy[:, 0], xy[:, 1])
    return np.column_stack([x, y])


def point_to_wgs84(x: float, y: float, source: Crs) -> tuple[float, float]:
    if source.yx:
        x, y = y, x
    if source.srid == WGS84:
        return x, y
    lon, lat = _transformer(source.srid, WGS84).transform(x, y)
    return float(lon), float(lat)
