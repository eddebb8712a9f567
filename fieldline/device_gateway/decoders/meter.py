"""A meter reading on `fieldline/meters/{meter_id}/reading`: `ts` and `volume_m3`."""

from __future__ import annotations

from fieldline.device_gateway.decoders._fields import (
    parse_object,
    required_number,
    time_field,
    topic_part,
)
from fieldline.device_gateway.messages import DecodeError, Message, MeterReading


def decode(topic: str, payload: bytes) -> list[Message]:
    meter_id = topic_part(topic, 2, 4)
    obj = parse_object(payload)
    volume_m3 = required_number(obj, "volume_m3")
    if volume_m3 < 0:
        raise DecodeError("bad_field", "volume_m3 is negative")
    return [MeterReading(meter_id=meter_id, ts=time_field(obj, "ts"), volume_m3=volume_m3)]
