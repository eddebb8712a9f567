"""The live stream served by the event loop: one Redis subscription per process, fanned out to
every open stream through its own bounded queue, so an open stream costs a queue and a
coroutine rather than a server thread.

A stream that falls `queue_size` events behind (a stalled or very slow client) is ended with a
comment saying so instead of holding ever more memory; EventSource reconnects by itself. The
frames are those of views.sse, byte for byte.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from fieldline.redis_client import async_client

log = logging.getLogger(__name__)

CONNECTED = b": connected\n\n"
HEARTBEAT = b": heartbeat\n\n"
# What a stream's last frame says when it is ended here rather than by the client.
TOO_SLOW = "the client read too slowly and fell {} events behind: reconnect"
REDIS_LOST = "the live feed lost Redis: reconnect"
SHUTTING_DOWN = "the server is shutting down: reconnect"


def data_frame(payload: bytes) -> bytes:
    return b"data: " + payload + b"\n\n"


def ended_frame(reason: str) -> bytes:
    return f": ended: {reason}\n\n".encode()


class Subscriber:
    """One open stream's queue of frames; None in the queue ends the stream."""

    def __init__(self, queue_size: int) -> None:
        self.queue: asyncio.Queue[bytes | None] = asyncio.Queue(queue_size)
        self.ended: str | None = None

    def offer(self, frame: bytes) -> None:
        if self.ended is not None:
            return
        try:
            self.queue.put_nowait(frame)
        except asyncio.QueueFull:
            self.end(TOO_SLOW.format(self.queue.maxsize))

    def end(self, reason: str) -> None:
        """Drop what is queued and end the stream after `reason`."""
        if self.ended is not None:
            return
        self.ended = reason
        while not self.queue.empty():
            self.queue.get_nowait()
        self.queue.put_nowait(None)


class Fanout:
    """The process's one subscription to the live channel, started by the first stream."""

    def __init__(self, redis_url: str, channel: str, queue_size: int) -> None:
        self.redis_url = redis_url
        self.channel = channel
        self.queue_size = queue_size
        self.subscribers: set[Subscriber] = set()
        self._reader: asyncio.Task[None] | None = None
        self._subscribed: asyncio.Future[None] | None = None

    async def subscribe(self) -> Subscriber:
        """A new stream's queue, once the channel is subscribed: every event published after
        this returns reaches it. Raises redis.RedisError when Redis cannot be reached."""
        if self._reader is None or self._reader.done():
            loop = asyncio.get_running_loop()
            self._subscribed = loop.create_future()
            self._reader = loop.create_task(self._read(self._subscribed), name="live-fanout")
        assert self._subscribed is not None
        await asyncio.shield(self._subscribed)
        subscriber = Subscriber(self.queue_size)
        self.subscribers.add(subscriber)
        return subscriber

    def unsubscribe(self, subscriber: Subscriber) -> None:
        self.subscribers.discard(subscriber)

    async def _read(self, subscribed: asyncio.Future[None]) -> None:
        client = async_client(self.redis_url)
        pubsub = client.pubsub()
        try:
            await pubsub.subscribe(self.channel)
            async for message in pubsub.listen():
                if message["type"] == "subscribe" and not subscribed.done():
                    subscribed.set_result(None)
                elif message["type"] == "message":
                    frame = data_frame(message["data"])
                    for subscriber in list(self.subscribers):
                        subscriber.offer(frame)
        except asyncio.CancelledError:
            self.end_streams(SHUTTING_DOWN)
            raise
        except Exception as exc:
            log.warning("live fan-out lost Redis (%s); its streams end and clients reconnect", exc)
            if not subscribed.done():
                subscribed.set_exception(exc)
            self.end_streams(REDIS_LOST)
        finally:
            with contextlib.suppress(Exception):
                await pubsub.aclose()
                await client.aclose()

    def end_streams(self, reason: str) -> None:
        for subscriber in list(self.subscribers):
            subscriber.end(reason)
        self.subscribers.clear()

    async def close(self) -> None:
        if self._reader is not None and not self._reader.done():
            self._reader.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._reader
        self.end_streams(SHUTTING_DOWN)


Send = Callable[[dict[str, Any]], Awaitable[None]]


async def relay(subscriber: Subscriber, send: Send, heartbeat_s: float, limit: int | None) -> None:
    """Write the subscriber's events as views.sse does: a heartbeat after each quiet
    `heartbeat_s`, the end after `limit` events. Events already queued go out in one write."""
    await send({"type": "http.response.body", "body": CONNECTED, "more_body": True})
    sent = 0
    queue = subscriber.queue
    while True:
        try:
            async with asyncio.timeout(heartbeat_s):
                frame = await queue.get()
        except TimeoutError:
            await send({"type": "http.response.body", "body": HEARTBEAT, "more_body": True})
            continue
        frames: list[bytes] = []
        while frame is not None:
            frames.append(frame)
            sent += 1
            if (limit is not None and sent >= limit) or queue.empty():
                break
            frame = queue.get_nowait()
        if frames:
            await send({"type": "http.response.body", "body": b"".join(frames), "more_body": True})
        if frame is None or (limit is not None and sent >= limit):
            break
    closing = ended_frame(subscriber.ended) if frame is None and subscriber.ended else b""
    await send({"type": "http.response.body", "body": closing, "more_body": False})
