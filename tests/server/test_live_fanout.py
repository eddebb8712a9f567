"""The event loop's relay writes the frames the threaded view writes, byte for byte, and ends
a stream that falls too far behind with its reason."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Coroutine
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

import pytest

from fieldline.server.live.fanout import TOO_SLOW, Subscriber, data_frame, relay
from fieldline.server.live.views import sse

T = TypeVar("T")


def run_loop(coroutine: Coroutine[Any, Any, T]) -> T:
    """On a thread of its own: the browser tests' driver may keep a loop running on this one."""
    with ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(asyncio.run, coroutine).result()


EVENTS = ['{"type":"position","n":1}', '{"type":"alarm","id":"A-1"}', '{"type":"task","n":3}']


def relayed(events: list[str], limit: int | None, heartbeat_s: float = 30.0) -> bytes:
    async def run() -> bytes:
        subscriber = Subscriber(queue_size=100)
        for event in events:
            subscriber.offer(data_frame(event.encode()))
        sent: list[dict[str, Any]] = []

        async def send(message: dict[str, Any]) -> None:
            sent.append(message)

        task = asyncio.create_task(relay(subscriber, send, heartbeat_s, limit))
        await asyncio.sleep(0.05)
        subscriber.end("closed by the test")
        await task
        assert sent[-1]["more_body"] is False
        return b"".join(message["body"] for message in sent)

    return run_loop(run())


@pytest.mark.parametrize("limit", [None, 0, 1, 2, 3, 10])
def test_the_relay_sends_what_the_view_sends(limit: int | None) -> None:
    threaded = "".join(sse(iter(EVENTS), limit)).encode()
    got = relayed(EVENTS, limit)
    if limit is None or limit > len(EVENTS):
        # The threaded stream waits for more; here the test ends it.
        assert got == threaded + b": ended: closed by the test\n\n"
    else:
        assert got == threaded


def test_a_quiet_stream_gets_heartbeats() -> None:
    started = time.monotonic()

    async def run() -> bytes:
        subscriber = Subscriber(queue_size=10)
        sent: list[bytes] = []

        async def send(message: dict[str, Any]) -> None:
            sent.append(message["body"])

        task = asyncio.create_task(relay(subscriber, send, 0.1, None))
        await asyncio.sleep(0.35)
        subscriber.offer(data_frame(b"{}"))
        await asyncio.sleep(0.05)
        subscriber.end("closed by the test")
        await task
        return b"".join(sent)

    got = run_loop(run())
    assert got.startswith(b": connected\n\n: heartbeat\n\n: heartbeat\n\n: heartbeat\n\n")
    assert got.endswith(b"data: {}\n\n: ended: closed by the test\n\n")
    assert time.monotonic() - started < 2


def test_a_full_queue_ends_the_stream_and_frees_what_it_held() -> None:
    async def run() -> Subscriber:
        subscriber = Subscriber(queue_size=3)
        for n in range(5):
            subscriber.offer(data_frame(str(n).encode()))
        return subscriber

    subscriber = run_loop(run())
    assert subscriber.ended == TOO_SLOW.format(3)
    assert subscriber.queue.qsize() == 1  # only the end itself
    assert subscriber.queue.get_nowait() is None
