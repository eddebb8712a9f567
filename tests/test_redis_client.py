"""FIELDLINE_REDIS_URL: the forms Fieldline takes, and errors that name the setting."""

from __future__ import annotations

import re

import pytest

from fieldline.redis_client import check_url, sentinel_target, sync_client
from fieldline.settings import SettingsError, load_settings


@pytest.mark.parametrize(
    "url",
    [
        "redis://localhost:6379/0",
        "rediss://:secret@redis.example:6380/2",
        "unix:///run/redis/redis.sock?db=1",
        "redis+sentinel://10.0.0.1:26379/fieldline",
        "redis+sentinel://s1:26379,s2:26380,[::1]:26381/fieldline",
    ],
)
def test_good_urls_are_taken_as_written(monkeypatch: pytest.MonkeyPatch, url: str) -> None:
    monkeypatch.setenv("FIELDLINE_REDIS_URL", url)
    assert load_settings().redis_url == url


def test_a_sentinel_url_names_its_sentinels_service_and_credentials() -> None:
    target = sentinel_target("redis+sentinel://app:p%40ss@s1:26379,[::1]:26380/fieldline")
    assert target.sentinels == (("s1", 26379), ("::1", 26380))
    assert target.service_name == "fieldline"
    assert target.auth == {"username": "app", "password": "p@ss"}
    assert sentinel_target("redis+sentinel://s1:26379/fl").auth == {}


@pytest.mark.parametrize(
    ("url", "says"),
    [
        ("http://localhost:6379", "redis+sentinel://"),
        ("localhost:6379", "redis+sentinel://"),
        ("redis+sentinel://s1/fieldline", "'s1' is not host:port"),
        ("redis+sentinel://s1:26379,s2/fieldline", "'s2' is not host:port"),
        ("redis+sentinel://s1:port/fieldline", "is not host:port"),
        ("redis+sentinel://s1:99999/fieldline", "is not host:port"),
        ("redis+sentinel://s1:26379", "service name"),
        ("redis+sentinel://s1:26379/", "service name"),
        # `limits` would read "fieldline1" as the service: a database number is refused.
        ("redis+sentinel://s1:26379/fieldline/1", "no database number"),
        ("redis+sentinel://s1:26379/fieldline?db=1", "no query"),
    ],
)
def test_bad_urls_name_the_setting_and_the_fault(
    monkeypatch: pytest.MonkeyPatch, url: str, says: str
) -> None:
    monkeypatch.setenv("FIELDLINE_REDIS_URL", url)
    with pytest.raises(SettingsError, match="FIELDLINE_REDIS_URL") as found:
        load_settings()
    assert says in str(found.value)
    # A client asked for directly (not through settings) says the same.
    with pytest.raises(SettingsError, match=r"^FIELDLINE_REDIS_URL: ") as direct:
        sync_client(url)
    assert says in str(direct.value)
    with pytest.raises(ValueError, match=re.escape(says)):
        check_url(url)
