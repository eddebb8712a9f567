"""SCADA JSON on `fieldline/scada/{station_id}`: `ts` and `metrics` {name: value}, the unit in
each name (`pressure_kpa`, `flow_lps`, `chlorine_mgl`); a null value is a stale reading."""

from __future__ import annotations

import re

from fieldline.device_gateway.decoders._fields import number, parse_object, time_field, topic_part
from fieldline.device_gateway.messages import DecodeError, Message, Reading

METRIC_NAME = re.compile(r"[a-z][a-z0-9_]{0,62}")


def decode(topic: str, payload: bytes) -> list[Message]:
    station_id = topic_part(topic, 2, 3)
    obj = parse_object(payload)
    ts = time_field(obj, "ts")
    metrics = obj.get("metrics")
    if not isinstance(metrics, dict):
        raise DecodeError("missing_field", "metrics")
    readings: list[Message] = []
    for name in metrics:
        if not METRIC_NAME.fullmatch(name):
            raise DecodeError("bad_metric", f"metric name {name[:40]!r}")
        readings.append(Reading(station_id, name, ts, number(metrics, name)))
    return readings
