"""Latest crew positions and live events in Redis, shared by the gateway (writer) and the web
server (reader).

Keys, under the FIELDLINE_REDIS_PREFIX (`fieldline` by default):
- `<prefix>:crews:geo`      GEO set of each crew's latest position (GEOSEARCH by radius)
- `<prefix>:crews:latest`   hash crew id -> JSON of the latest fix
- `<prefix>:crews:fix_ms`   hash crew id -> fix time of that fix in epoch ms (the guard)
- `<prefix>:live`           pub/sub channel of JSON events: position, telemetry, deadletter
- `<prefix>:deadletter`     stream of dead letters (capped)
"""

from __future__ import annotations

import json
from collections.abc import Collection, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import redis

from fieldline.redis_client import sync_client

# One script so that the compare and the writes are atomic: an older fix (a late backlog, a
# redelivery, another worker's slower batch) never replaces a newer one. It takes any number of
# crews, five arguments each (crew id, fix ms, fix JSON, lon, lat): the gateway sends a whole
# batch's in one call. It answers how many were newer.
UPDATE_LATEST = """
local updated = 0
for i = 1, #ARGV, 5 do
  local crew, fix_ms = ARGV[i], ARGV[i + 1]
  local old = tonumber(redis.call('HGET', KEYS[1], crew))
  if not (old and old >= tonumber(fix_ms)) then
    redis.call('HSET', KEYS[1], crew, fix_ms)
    redis.call('HSET', KEYS[2], crew, ARGV[i + 2])
    redis.call('GEOADD', KEYS[3], ARGV[i + 3], ARGV[i + 4], crew)
    updated = updated + 1
  end
end
return updated
"""


def dead_letter_event(
    received_at: datetime, topic: str, reason: str, detail: str, payload: bytes, size: int
) -> dict[str, Any]:
    """A dead letter as the live stream, its Redis stream and `fieldline/deadletter` show it;
    `payload` is the capped part kept, `size` the whole payload's bytes."""
    return {
        "received_at": received_at.isoformat(),
        "topic": topic,
        "reason": reason,
        "detail": detail,
        "payload": payload.decode("utf-8", "replace"),
        "payload_bytes": size,
    }


# A crew's latest fix for `update_latest_many`: crew id, fix time in epoch ms, lon, lat, and
# the fix as JSON (text or bytes).
LatestFix = tuple[str, int, float, float, str | bytes]


@dataclass(frozen=True)
class LiveKeys:
    prefix: str

    @property
    def geo(self) -> str:
        return f"{self.prefix}:crews:geo"

    @property
    def latest(self) -> str:
        return f"{self.prefix}:crews:latest"

    @property
    def fix_ms(self) -> str:
        return f"{self.prefix}:crews:fix_ms"

    @property
    def channel(self) -> str:
        return f"{self.prefix}:live"

    @property
    def deadletter(self) -> str:
        return f"{self.prefix}:deadletter"


class Live:
    def __init__(self, client: redis.Redis, prefix: str) -> None:
        self.client = client
        self.keys = LiveKeys(prefix)
        self._update = client.register_script(UPDATE_LATEST)

    @classmethod
    def from_url(cls, url: str, prefix: str) -> Live:
        return cls(sync_client(url, decode_responses=True), prefix)

    def update_latest(
        self, crew_id: str, fix_ms: int, lon: float, lat: float, fix: dict[str, Any]
    ) -> bool:
        """Record the crew's fix unless a later one is recorded; True when it was newer."""
        return bool(self.update_latest_many([(crew_id, fix_ms, lon, lat, json.dumps(fix))]))

    def update_latest_many(self, fixes: Sequence[LatestFix]) -> Any:
        """`update_latest` for many crews (one fix each) in one command; how many were newer
        (on a pipeline, that count comes with the pipeline's results)."""
        keys = [self.keys.fix_ms, self.keys.latest, self.keys.geo]
        args: list[str | bytes | int | float] = []
        for crew_id, fix_ms, lon, lat, text in fixes:
            args += (crew_id, fix_ms, text, lon, lat)
        return self._update(keys=keys, args=args)

    def latest(self, crew_ids: Collection[str] | None = None) -> dict[str, dict[str, Any]]:
        """The latest fix per crew public id: of every crew, else of `crew_ids` only (one
        HMGET rather than the whole hash)."""
        if crew_ids is None:
            found: dict[str, str] = self.client.hgetall(self.keys.latest)  # type: ignore[assignment]
            return {crew_id: json.loads(value) for crew_id, value in found.items()}
        ids = list(crew_ids)
        if not ids:
            return {}
        values: list[str | None] = self.client.hmget(self.keys.latest, ids)  # type: ignore[assignment]
        return {
            crew_id: json.loads(value)
            for crew_id, value in zip(ids, values, strict=True)
            if value is not None
        }

    def publish(self, event: dict[str, Any]) -> None:
        self.client.publish(self.keys.channel, json.dumps(event, separators=(",", ":")))

    def add_deadletter(self, entry: Mapping[str, Any], maxlen: int) -> None:
        fields = {key: str(value) for key, value in entry.items()}  # a stream holds strings
        self.client.xadd(self.keys.deadletter, fields, maxlen=maxlen, approximate=True)  # type: ignore[arg-type]

    def events(self, heartbeat_s: float) -> Iterator[str | None]:
        """Events from the channel as JSON texts; None after each quiet `heartbeat_s`."""
        pubsub = self.client.pubsub(ignore_subscribe_messages=True)
        pubsub.subscribe(self.keys.channel)
        try:
            while True:
                message = pubsub.get_message(timeout=heartbeat_s)
                yield None if message is None else str(message["data"])
        finally:
            pubsub.close()
