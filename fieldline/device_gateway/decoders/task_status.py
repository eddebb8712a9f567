"""Task status from a handheld on `fieldline/crews/{crew_id}/tasks/{task_id}/status`."""

from __future__ import annotations

from fieldline.device_gateway.decoders._fields import (
    number,
    parse_object,
    text,
    time_field,
    topic_part,
)
from fieldline.device_gateway.messages import DecodeError, Message, TaskStatus

STATUSES = ("accepted", "en_route", "on_site", "completed", "rejected")


def decode(topic: str, payload: bytes) -> list[Message]:
    crew_id = topic_part(topic, 2, 6)
    task_id = topic_part(topic, 4, 6)
    obj = parse_object(payload)
    status = text(obj, "status", required=True)
    if status not in STATUSES:
        raise DecodeError("bad_status", f"status {str(status)[:40]!r}")
    lat, lon = number(obj, "lat"), number(obj, "lon")
    if (lat is None) != (lon is None):
        raise DecodeError("bad_field", "lat and lon come together")
    return [
        TaskStatus(
            crew_id=crew_id,
            task_id=task_id,
            status=status,
            ts=time_field(obj, "ts"),
            note=text(obj, "note"),
            lat=lat,
            lon=lon,
        )
    ]
