"""The OGC API as third-party clients see it: GDAL's OAPIF driver (ogrinfo, ogr2ogr) and
owslib, over real HTTP, checked against the database itself."""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path
from typing import Any

import pyogrio.raw
import pytest
import shapely
import sqlalchemy as sa
from owslib.ogcapi.features import Features

from fieldline.gis.layers import LAYERS

# Inside the fixture city, large enough to hold several pages of pipes.
BOX = (24.938, 60.166, 24.947, 60.172)


def gdal(*args: str) -> subprocess.CompletedProcess[str]:
    """Run a GDAL program with HTTP debugging on, so tests can see the requests it made."""
    env = os.environ | {"CPL_DEBUG": "ON", "GDAL_HTTP_TIMEOUT": "60"}
    done = subprocess.run(args, capture_output=True, text=True, env=env, timeout=300, check=False)
    assert done.returncode == 0, done.stderr[-3000:]
    return done


def fetched(done: subprocess.CompletedProcess[str], path: str) -> list[str]:
    return [url for url in re.findall(r"HTTP: Fetch\((\S+)\)", done.stderr) if path in url]


def ids_where(engine: sa.Engine, table: str, condition: str, **values: Any) -> set[str]:
    with engine.connect() as connection:
        rows = connection.execute(
            sa.text(f"SELECT public_id FROM {table} WHERE {condition}"),  # noqa: S608
            values,
        )
        return {row[0] for row in rows}


def test_ogrinfo_lists_every_collection(ogc_url: str) -> None:
    done = gdal("ogrinfo", "-ro", "-q", f"OAPIF:{ogc_url}")
    listed = dict(re.findall(r"^\d+: (\w+) \(title: (.*)\) \(", done.stdout, re.MULTILINE))
    assert listed == {name: layer.title for name, layer in LAYERS.items()}


def test_ogr2ogr_copies_every_pipe_page_by_page(
    ogc_url: str, engine: sa.Engine, tmp_path: Path
) -> None:
    target = tmp_path / "pipes.gpkg"
    done = gdal(
        "ogr2ogr", "-f", "GPKG", str(target), f"OAPIF:{ogc_url}", "pipes", "-oo", "PAGE_SIZE=50"
    )
    with engine.connect() as connection:
        expected = {
            row.public_id: row
            for row in connection.execute(
                sa.text(
                    "SELECT public_id, material, diameter_mm, install_year, status,"
                    " ST_AsBinary(geom) AS wkb FROM pipes"
                )
            )
        }
    assert len(fetched(done, "/collections/pipes/items")) >= len(expected) // 50
    _, _, geometries, fields = pyogrio.raw.read(target)[:4]
    names = pyogrio.read_info(target)["fields"].tolist()
    columns = dict(zip(names, fields, strict=True))
    ids = columns["id"].tolist()
    assert len(ids) == len(expected) == len(set(ids))
    assert set(ids) == set(expected)
    for index in range(0, len(ids), 97):  # a sample across the pages
        row = expected[ids[index]]
        assert columns["material"][index] == row.material
        assert columns["diameter_mm"][index] == pytest.approx(row.diameter_mm)
        assert columns["install_year"][index] == row.install_year
        assert columns["status"][index] == row.status
        copied = shapely.from_wkb(geometries[index])
        assert copied.equals_exact(shapely.from_wkb(row.wkb), 1e-7)


def test_ogrinfo_bbox_returns_what_postgis_intersects(ogc_url: str, engine: sa.Engine) -> None:
    done = gdal(
        "ogrinfo", "-ro", "-al", "-spat", *map(str, BOX), "-oo", "PAGE_SIZE=20",
        f"OAPIF:{ogc_url}", "pipes",
    )  # fmt: skip
    got = re.findall(r"^\s+id \(String\) = (\S+)$", done.stdout, re.MULTILINE)
    expected = ids_where(
        engine, "pipes", "ST_Intersects(geom, ST_MakeEnvelope(:a, :b, :c, :d, 4326))",
        a=BOX[0], b=BOX[1], c=BOX[2], d=BOX[3],
    )  # fmt: skip
    assert len(expected) > 60, "the box should span several pages"
    assert len(got) == len(set(got))
    assert set(got) == expected
    # The box goes to the server (GDAL's first request, for the schema, has none), page by page.
    assert len(fetched(done, "bbox=")) >= len(expected) // 20


def test_ogrinfo_sends_attribute_filters_to_the_server(ogc_url: str, engine: sa.Engine) -> None:
    done = gdal(
        "ogrinfo", "-ro", "-al", "-where", "material = 'cast_iron'", f"OAPIF:{ogc_url}", "pipes"
    )
    got = re.findall(r"^\s+id \(String\) = (\S+)$", done.stdout, re.MULTILINE)
    expected = ids_where(engine, "pipes", "material = 'cast_iron'")
    assert len(got) == len(expected) > 10
    assert set(got) == expected
    # GDAL learns that `material` can be filtered on (from the OpenAPI document's parameters,
    # or the CQL2 conformance class in newer GDAL) and pages through the matches alone, 10 a
    # page by default.
    assert len(fetched(done, "cast_iron")) >= len(expected) // 10


def test_owslib_lists_collections_and_reads_items(ogc_url: str, engine: sa.Engine) -> None:
    api = Features(ogc_url)
    assert sorted(api.feature_collections()) == sorted(LAYERS)
    assert (
        "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/core"
        in (api.conformance()["conformsTo"])
    )
    assert api.api()["openapi"].startswith("3.0")
    page = api.collection_items("hydrants", bbox=list(BOX), limit=7)
    inside = ids_where(
        engine, "hydrants", "ST_Intersects(geom, ST_MakeEnvelope(:a, :b, :c, :d, 4326))",
        a=BOX[0], b=BOX[1], c=BOX[2], d=BOX[3],
    )  # fmt: skip
    assert page["numberReturned"] == len(page["features"]) == 7 < len(inside)
    assert {f["id"] for f in page["features"]} <= inside
    assert any(link["rel"] == "next" for link in page["links"])
    one = api.collection_item("hydrants", page["features"][0]["id"])
    assert one["geometry"] == page["features"][0]["geometry"]


def test_owslib_reads_queryables(ogc_url: str) -> None:
    queryables = Features(ogc_url).collection_queryables("pipes")
    assert queryables["properties"]["material"]["enum"] == list(
        LAYERS["pipes"].attribute_index["material"].choices
    )
    assert queryables["properties"]["geometry"]["format"] == "geometry-linestring"
