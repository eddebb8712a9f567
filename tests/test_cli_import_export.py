"""`fieldline import` refusals (before anything is stored) and `fieldline export`, run as a user
runs them against the test database and its committed fixture city."""

from __future__ import annotations

from pathlib import Path

import pyogrio
import pytest
import sqlalchemy as sa
import wntr
from click.testing import CliRunner

from fieldline.cli import main
from fieldline.gis.layers import LAYERS
from tests.conftest import CITY, load_fixture


@pytest.fixture
def runner(engine: sa.Engine, monkeypatch: pytest.MonkeyPatch) -> CliRunner:
    # `engine` migrated the test database and loaded the city; the command reads it from here.
    monkeypatch.setenv("FIELDLINE_DATABASE_URL", engine.url.render_as_string(hide_password=False))
    return CliRunner()


def test_export_writes_a_geopackage_of_every_layer(runner: CliRunner, tmp_path: Path) -> None:
    path = tmp_path / "city.gpkg"
    result = runner.invoke(main, ["export", "--format", "gpkg", str(path)])
    assert result.exit_code == 0, result.output
    assert [str(name) for name, _ in pyogrio.list_layers(path)] == list(LAYERS)
    for name in ("pipes", "valves", "roads"):
        assert pyogrio.read_info(path, layer=name)["features"] == len(load_fixture(name))
        assert f"{name} " in result.output


def test_export_of_chosen_layers_as_geojson(runner: CliRunner, tmp_path: Path) -> None:
    folder = tmp_path / "out"
    result = runner.invoke(
        main,
        ["export", "--format", "geojson", str(folder), "--layer", "valves", "--layer", "nodes"],
    )
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in folder.iterdir()) == ["nodes.geojson", "valves.geojson"]


def test_epanet_import_without_a_crs_says_what_to_give(runner: CliRunner) -> None:
    path = wntr.library.model_library.get_filepath("Net1")
    result = runner.invoke(main, ["import", path])
    assert result.exit_code == 1
    assert "EPANET files carry no CRS" in result.output and "--crs" in result.output


def test_import_refuses_a_mapping_of_a_field_the_files_lack(runner: CliRunner) -> None:
    result = runner.invoke(main, ["import", str(CITY), "--map", "DIAMETER=diameter_mm"])
    assert result.exit_code == 1
    assert "no field DIAMETER" in result.output


def test_import_refuses_a_bad_mapping_rule(runner: CliRunner) -> None:
    result = runner.invoke(main, ["import", str(CITY), "--map-values", "material=CI:iron"])
    assert result.exit_code == 1
    assert "map_values: 'iron' is not a value of material" in result.output
