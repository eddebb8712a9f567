"""Fieldline's own position JSON on `fieldline/crews/{crew_id}/position`: one fix or an array of
fixes (an offline backlog, in any order). A fix may name its handheld (`device`, or `tid` as
OwnTracks calls it), which is then checked against the crew's bound devices."""

from __future__ import annotations

from typing import Any

from fieldline.device_gateway.decoders._fields import (
    number,
    parse_json,
    required_number,
    time_field,
    topic_part,
)
from fieldline.device_gateway.messages import DecodeError, Fix, Message

DEVICE = "handheld"  # the crew's Fieldline handheld


def decode(topic: str, payload: bytes) -> list[Message]:
    crew_id = topic_part(topic, 2, 4)
    value = parse_json(payload)
    items = value if isinstance(value, list) else [value]
    return [_fix(crew_id, item) for item in items]


def _fix(crew_id: str, item: Any) -> Fix:
    if not isinstance(item, dict):
        raise DecodeError("not_object", "a fix is not a JSON object")
    named = item.get("device", item.get("tid"))
    if named is not None and (not isinstance(named, str) or not named):
        raise DecodeError("bad_device", "device (or tid) must be the handheld's name")
    return Fix(
        crew_id=crew_id,
        named_device=named,
        device=DEVICE,
        fix_time=time_field(item, "ts"),
        lat=required_number(item, "lat"),
        lon=required_number(item, "lon"),
        acc_m=number(item, "acc_m"),
        speed_mps=number(item, "speed_mps"),
        heading_deg=number(item, "heading_deg"),
        alt_m=number(item, "alt_m"),
        batt_pct=number(item, "batt_pct"),
    )
