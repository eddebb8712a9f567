"""Messages a minute per device (`FIELDLINE_RATE_LIMIT_DEVICE`), counted in Redis so that the
workers sharing the topics share the count: one round trip per batch (a pipeline of INCRBY
per device in the batch), never one per message. Messages over the limit go to the dead letter
with reason `rate_limited`; none is dropped silently.

A device is the topic without its per-message part: `fieldline/crews/C-000001` for a crew's
fixes, reports and task statuses, `owntracks/user/phone`, `fieldline/scada/NAME`,
`fieldline/meters/M-000001`, `spBv1.0/group/edge[/device]` (the message type left out).
"""

from __future__ import annotations

import logging
import time
from collections import Counter
from collections.abc import Sequence

import redis

from fieldline.redis_client import sync_client

log = logging.getLogger(__name__)
WINDOW_S = 60


def device_of(topic: str) -> str:
    levels = topic.split("/")
    if levels[0] == "spBv1.0" and len(levels) >= 4:
        return "/".join([levels[0], levels[1], *levels[3:5]])
    return "/".join(levels[:3])


class DeviceRateLimit:
    def __init__(self, client: redis.Redis, prefix: str, per_minute: int) -> None:
        self.client = client
        self.prefix = prefix
        self.per_minute = per_minute

    @classmethod
    def from_url(cls, url: str, prefix: str, per_minute: int) -> DeviceRateLimit:
        return cls(sync_client(url, socket_timeout=2), prefix, per_minute)

    def over(self, topics: Sequence[str], now: float | None = None) -> list[bool]:
        """For each message of a batch, in order, whether it is over its device's limit."""
        devices = [device_of(topic) for topic in topics]
        counts = Counter(devices)
        window = int((time.time() if now is None else now) // WINDOW_S)
        keys = {d: f"{self.prefix}:ratelimit:device:{window}:{d}" for d in counts}
        pipe = self.client.pipeline(transaction=False)
        for device, count in counts.items():
            pipe.incrby(keys[device], count)
            pipe.expire(keys[device], 2 * WINDOW_S)
        try:
            totals = pipe.execute()[::2]
        except redis.RedisError as exc:  # Redis away: take the batch rather than stall ingest
            log.warning("device rate limits not counted: %s", exc)
            return [False] * len(topics)
        # Before this batch the device had sent total - count this minute: the first
        # `per_minute - before` of its messages here are within the limit.
        allowed = {
            device: self.per_minute - (total - counts[device])
            for device, total in zip(counts, totals, strict=True)
        }
        over = []
        for device in devices:
            allowed[device] -= 1
            over.append(allowed[device] < 0)
        return over
