"""What the simulator hands to a publisher: a topic, a JSON payload, and when to send it."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from fieldline.device_gateway.simulator.gps import GpsFix


@dataclass(frozen=True)
class Publication:
    at: datetime  # simulated time at which the device sends it
    topic: str
    payload: Any  # a JSON value: the message as the device writes it
    qos: int = 1
    fixes: tuple[GpsFix, ...] = field(default=(), compare=False)  # the truth behind a position

    def payload_bytes(self) -> bytes:
        return json.dumps(self.payload, separators=(",", ":")).encode()


def iso_utc(ts: datetime) -> str:
    """ISO 8601 in UTC with milliseconds and `Z`, as handheld apps write it."""
    return ts.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def epoch_s(ts: datetime) -> float:
    return round(ts.timestamp(), 3)
