"""The latest crew positions in Redis: many crews in one call, an older fix never wins."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator

import pytest
import redis

from fieldline.server.live.services import Live
from fieldline.settings import load_settings


@pytest.fixture
def live() -> Iterator[Live]:
    store = Live.from_url(load_settings().redis_url, f"test-latest-{uuid.uuid4().hex[:8]}")
    yield store
    keys = list(store.client.scan_iter(f"{store.keys.prefix}:*"))
    if keys:
        store.client.delete(*keys)
    store.client.close()


def fix(crew: str, ms: int) -> bytes:
    return json.dumps({"crew_id": crew, "ms": ms}).encode()


def test_many_crews_in_one_call_and_an_older_fix_never_wins(live: Live) -> None:
    assert live.update_latest("A", 2_000, 24.90, 60.10, {"crew_id": "A", "ms": 2_000})
    assert live.update_latest("B", 5_000, 24.91, 60.11, {"crew_id": "B", "ms": 5_000})

    updated = live.update_latest_many(
        [
            ("A", 3_000, 24.95, 60.15, fix("A", 3_000)),  # newer: replaces
            ("B", 4_000, 24.99, 60.19, fix("B", 4_000)),  # older: refused
            ("C", 1_000, 24.80, 60.05, fix("C", 1_000)),  # first: taken
        ]
    )

    assert updated == 2
    assert {crew: body["ms"] for crew, body in live.latest().items()} == {
        "A": 3_000,
        "B": 5_000,
        "C": 1_000,
    }
    lon, lat = live.client.geopos(live.keys.geo, "B")[0]  # type: ignore[index]
    assert (round(lon, 4), round(lat, 4)) == (24.91, 60.11)
    assert live.client.hget(live.keys.fix_ms, "A") == "3000"


def test_on_a_pipeline_the_count_comes_with_the_results(live: Live) -> None:
    pipe: redis.client.Pipeline = live.client.pipeline(transaction=False)
    queued = Live(pipe, live.keys.prefix)
    queued.update_latest_many([("A", 1_000, 24.9, 60.1, fix("A", 1_000))])
    queued.update_latest_many([("A", 500, 24.8, 60.0, fix("A", 500))])
    assert pipe.execute() == [1, 0]
    assert live.latest()["A"]["ms"] == 1_000
