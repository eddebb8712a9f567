"""OwnTracks JSON on `owntracks/{user}/{device}` (and `.../event` for transitions), as the
apps send it (https://owntracks.org/booklet/tech/json/).

The crew is not in the topic: the fix carries `device="owntracks:{user}/{device}"` and an
empty crew id, and the pipeline binds the device to its crew.
"""

from __future__ import annotations

from typing import Any

from fieldline.device_gateway.decoders._fields import (
    epoch_time,
    number,
    parse_object,
    required_number,
    text,
)
from fieldline.device_gateway.messages import DecodeError, DeviceEvent, Fix, Message

KMH_TO_MPS = 1 / 3.6
# Types the apps publish that carry nothing Fieldline stores (cards, waypoints, config dumps,
# step counts, status): valid, acknowledged, ignored.
IGNORED_TYPES = frozenset(
    {"beacon", "card", "cmd", "configuration", "status", "steps", "waypoint", "waypoints"}
)


def device_name(topic: str) -> str:
    parts = topic.split("/")
    if len(parts) not in (3, 4) or parts[0] != "owntracks" or not all(parts[1:3]):
        raise DecodeError("bad_topic", topic[:200])
    return f"owntracks:{parts[1]}/{parts[2]}"


def decode(topic: str, payload: bytes) -> list[Message]:
    device = device_name(topic)
    obj = parse_object(payload)
    kind = obj.get("_type")
    if kind == "location":
        return [_location(device, obj)]
    if kind == "transition":
        return [_transition(device, obj)]
    if kind == "lwt":
        return [_last_will(device, obj)]
    if isinstance(kind, str) and kind in IGNORED_TYPES:
        return []
    if kind is None:
        raise DecodeError("missing_field", "_type")
    raise DecodeError("unsupported_type", f"_type {str(kind)[:40]!r}")


def _tst(obj: dict[str, Any]) -> Any:
    if "tst" not in obj:
        raise DecodeError("missing_field", "tst")
    return epoch_time(obj["tst"], "tst")


def _location(device: str, obj: dict[str, Any]) -> Fix:
    vel_kmh = number(obj, "vel")
    created_at = obj.get("created_at")
    return Fix(
        crew_id="",
        device=device,
        fix_time=_tst(obj),
        lat=required_number(obj, "lat"),
        lon=required_number(obj, "lon"),
        acc_m=number(obj, "acc"),
        speed_mps=None if vel_kmh is None else vel_kmh * KMH_TO_MPS,
        heading_deg=number(obj, "cog"),
        alt_m=number(obj, "alt"),
        batt_pct=number(obj, "batt"),
        device_time=None if created_at is None else epoch_time(created_at, "created_at"),
    )


def _transition(device: str, obj: dict[str, Any]) -> DeviceEvent:
    event = text(obj, "event", required=True)
    detail = {
        "event": event,
        "desc": text(obj, "desc"),
        "lat": number(obj, "lat"),
        "lon": number(obj, "lon"),
        "acc_m": number(obj, "acc"),
    }
    return DeviceEvent(source=device, kind="transition", ts=_tst(obj), detail=detail)


def _last_will(device: str, obj: dict[str, Any]) -> DeviceEvent:
    # The broker publishes the app's last will when it loses the app; `tst` is when the app
    # connected, the only time the will can carry.
    connected_at = _tst(obj)
    return DeviceEvent(
        source=device,
        kind="offline",
        ts=connected_at,
        detail={"connected_at": connected_at.isoformat()},
    )
