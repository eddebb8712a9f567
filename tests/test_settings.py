from __future__ import annotations

import pytest

from fieldline.settings import SettingsError, load_settings


def test_defaults_point_at_the_local_servers(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in (
        "FIELDLINE_DATABASE_URL",
        "FIELDLINE_REDIS_URL",
        "FIELDLINE_MQTT_URL",
        "FIELDLINE_PORT",
    ):
        monkeypatch.delenv(name, raising=False)
    settings = load_settings()
    assert settings.database_url == "postgresql+psycopg://localhost/fieldline"
    assert settings.redis_url == "redis://localhost:6379/0"
    assert settings.mqtt_url == "mqtt://localhost:1883"
    assert (settings.host, settings.port) == ("127.0.0.1", 8080)


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("FIELDLINE_PORT", "eighty"),
        ("FIELDLINE_PORT", "70000"),
        ("FIELDLINE_DATABASE_URL", "mysql://localhost/x"),
        ("FIELDLINE_REDIS_URL", "http://localhost"),
        ("FIELDLINE_MQTT_URL", "tcp://localhost"),
        ("FIELDLINE_LOCAL_CRS", "EPSG:0"),
        ("FIELDLINE_ANONYMOUS_ROLE", "king"),
        ("FIELDLINE_PAGE_SIZE", "0"),
        ("FIELDLINE_MAP_BASE_TILES_URL", "ftp://tiles.example.org/{z}/{x}/{y}.png"),
        ("FIELDLINE_MAP_BASE_TILES_URL", "https://tiles.example.org/{z}/{x}.png"),
    ],
)
def test_bad_values_name_the_variable(
    monkeypatch: pytest.MonkeyPatch, name: str, value: str
) -> None:
    monkeypatch.setenv(name, value)
    with pytest.raises(SettingsError, match=name):
        load_settings()


def test_plain_postgresql_url_gets_the_psycopg_driver(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FIELDLINE_DATABASE_URL", "postgresql://db.example/fl")
    assert load_settings().sqlalchemy_url == "postgresql+psycopg://db.example/fl"
