"""Which decoder reads which topic: one row per format, in the order they are tried.

The gateway subscribes to every pattern (through its shared subscription group, except the
stateful rows: see `worker.subscriptions`), and the `kind` names the row in metrics. Decoders
are imported when first used, so that a decoder with heavy dependencies (Sparkplug's protobuf)
costs nothing until its topics carry traffic.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache

from paho.mqtt.client import topic_matches_sub

from fieldline.device_gateway.messages import DecodeError, Message

Decoder = Callable[[str, bytes], list[Message]]


@dataclass(frozen=True)
class Route:
    kind: str
    pattern: str  # an MQTT topic filter
    module: str  # a module of fieldline.device_gateway.decoders with decode(topic, payload)
    # The decoder remembers each source between messages (the pipeline holds its session), so
    # every message of a source must reach the same worker.
    stateful: bool = False


ROUTES = (
    Route("position", "fieldline/crews/+/position", "own_json"),
    Route("task_status", "fieldline/crews/+/tasks/+/status", "task_status"),
    Route("report", "fieldline/crews/+/reports", "report"),
    Route("owntracks", "owntracks/+/+", "owntracks"),
    Route("owntracks", "owntracks/+/+/event", "owntracks"),
    Route("scada", "fieldline/scada/+", "scada_json"),
    Route("meter", "fieldline/meters/+/reading", "meter"),
    Route("sparkplug", "spBv1.0/#", "sparkplug", stateful=True),
)


def find_route(topic: str) -> Route | None:
    for route in ROUTES:
        if topic_matches_sub(route.pattern, topic):
            return route
    return None


@cache
def decoder_of(route: Route) -> Decoder:
    try:
        module = importlib.import_module(f"fieldline.device_gateway.decoders.{route.module}")
    except ImportError as exc:
        raise DecodeError("decoder_unavailable", f"{route.module}: {exc}") from None
    decode: Decoder | None = getattr(module, "decode", None)
    if decode is None:
        raise DecodeError("decoder_unavailable", f"{route.module} has no decode()")
    return decode
