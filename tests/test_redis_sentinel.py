"""FIELDLINE_REDIS_URL naming a Sentinel-kept master: latest positions, the live stream, the
gateway's device rate limit and the API's rate limit all reach the master the sentinel names.

A private redis-server and a sentinel monitoring it run on free ports; every check also reads
the private server directly, so a client that went elsewhere (the machine's Redis) fails.
"""

from __future__ import annotations

import asyncio
import json
import shutil
import subprocess
import tempfile
import threading
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import pytest
import redis
import sqlalchemy as sa

from fieldline.device_gateway.rate_limit import DeviceRateLimit
from fieldline.server import create_app
from fieldline.server.live.fanout import Fanout
from fieldline.server.live.services import Live
from fieldline.settings import Settings, load_settings
from tests.processes import free_port, wait_until

SERVICE = "fieldline"


@dataclass
class SentinelSetup:
    master: redis.Redis  # the private server itself, read by the checks
    url: str  # FIELDLINE_REDIS_URL through the sentinel


@pytest.fixture(scope="module")
def sentinel() -> Iterator[SentinelSetup]:
    if shutil.which("redis-server") is None:
        pytest.skip("no redis-server on PATH")
    folder = Path(tempfile.mkdtemp(prefix="fieldline-sentinel-"))
    master_port, sentinel_port = free_port(), free_port()
    # Sentinel rewrites its configuration file, so it lives in the private folder.
    conf = folder / "sentinel.conf"
    conf.write_text(
        f"port {sentinel_port}\nbind 127.0.0.1\ndir {folder}\n"
        f"sentinel monitor {SERVICE} 127.0.0.1 {master_port} 1\n"
    )
    common = ["--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--dir", str(folder)]
    processes = [
        subprocess.Popen(
            ["redis-server", "--port", str(master_port), *common],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        ),
        subprocess.Popen(
            ["redis-server", str(conf), "--sentinel"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        ),
    ]
    master = redis.Redis(port=master_port, socket_timeout=2)
    asking = redis.Redis(port=sentinel_port, socket_timeout=2)

    def sentinel_knows_master() -> bool:
        try:
            found = asking.execute_command("SENTINEL", "get-master-addr-by-name", SERVICE)
        except redis.RedisError:
            return False
        return bool(found) and int(found[1]) == master_port

    try:
        wait_until(sentinel_knows_master, 15, "the sentinel to name the private master")
        yield SentinelSetup(master, f"redis+sentinel://127.0.0.1:{sentinel_port}/{SERVICE}")
    finally:
        master.close()
        asking.close()
        for process in processes:
            process.terminate()
        for process in processes:
            process.wait(timeout=10)
        shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture
def sentinel_settings(settings: Settings, sentinel: SentinelSetup) -> Settings:
    return load_settings(
        database_url=settings.database_url,
        anonymous_role="admin",
        redis_url=sentinel.url,
        redis_prefix=f"fieldline-test-{uuid.uuid4().hex[:10]}",
    )


def test_live_keeps_the_latest_position_on_the_sentinels_master(
    sentinel: SentinelSetup, sentinel_settings: Settings
) -> None:
    live = Live.from_url(sentinel.url, sentinel_settings.redis_prefix)
    fix = {"crew_id": "C-1", "lat": 60.17, "lon": 24.94, "ts": "2026-01-01T10:00:00Z"}
    assert live.update_latest("C-1", 2_000, 24.94, 60.17, fix)
    assert not live.update_latest("C-1", 1_000, 0.0, 0.0, {**fix, "lat": 0.0})  # older
    assert live.latest() == {"C-1": fix}
    stored = sentinel.master.hget(live.keys.latest, "C-1")
    assert stored is not None and json.loads(stored) == fix


def test_the_devices_rate_limit_counts_on_the_sentinels_master(
    sentinel: SentinelSetup, sentinel_settings: Settings
) -> None:
    limit = DeviceRateLimit.from_url(sentinel.url, sentinel_settings.redis_prefix, 2)
    topic = "fieldline/crews/C-1/position"
    assert limit.over([topic, topic, topic, "fieldline/scada/S-1"]) == [
        False,
        False,
        True,
        False,
    ]
    counted = sentinel.master.keys(f"{sentinel_settings.redis_prefix}:ratelimit:device:*")
    assert len(counted) == 2


def test_the_apis_rate_limit_counts_on_the_sentinels_master(
    sentinel: SentinelSetup, sentinel_settings: Settings, connection: sa.Connection
) -> None:
    limited = load_settings(**{**sentinel_settings.model_dump(), "rate_limit_api": 2})
    client = create_app(limited, bind=connection).test_client()
    codes = [client.get("/api/v1/assets").status_code for _ in range(3)]
    assert codes == [200, 200, 429]
    assert sentinel.master.keys(f"{limited.redis_prefix}:ratelimit*")


def test_the_live_stream_relays_what_is_published_through_the_sentinel(
    sentinel: SentinelSetup, sentinel_settings: Settings, connection: sa.Connection
) -> None:
    client = create_app(sentinel_settings, bind=connection).test_client()
    live = Live.from_url(sentinel.url, sentinel_settings.redis_prefix)
    channel = live.keys.channel
    events: list[dict[str, object]] = []

    def listen() -> None:
        response = client.get("/api/v1/live?limit=1&heartbeat=1", buffered=False)
        for chunk in response.response:
            text = chunk.decode() if isinstance(chunk, bytes) else chunk
            if text.startswith("data: "):
                events.append(json.loads(text.removeprefix("data: ")))
        response.close()

    listener = threading.Thread(target=listen)
    listener.start()
    # The stream's subscription is on the private master: the sentinel led it there.
    wait_until(lambda: sentinel.master.pubsub_numsub(channel)[0][1] > 0, 10, "the stream")
    live.publish({"type": "position", "crew_id": "C-1"})
    listener.join(timeout=10)
    assert not listener.is_alive()
    assert events == [{"type": "position", "crew_id": "C-1"}]


def test_the_event_loops_fanout_subscribes_through_the_sentinel(
    sentinel: SentinelSetup, sentinel_settings: Settings
) -> None:
    live = Live.from_url(sentinel.url, sentinel_settings.redis_prefix)
    fanout = Fanout(sentinel.url, live.keys.channel, queue_size=10)

    async def run() -> bytes | None:
        subscriber = await fanout.subscribe()
        live.publish({"type": "alarm", "id": "A-1"})
        try:
            return await asyncio.wait_for(subscriber.queue.get(), 5)
        finally:
            await fanout.close()

    with ThreadPoolExecutor(max_workers=1) as pool:
        frame = pool.submit(asyncio.run, run()).result()
    assert frame == b'data: {"type":"alarm","id":"A-1"}\n\n'
