"""Checks every JSON decoder shares: parse, read a typed field, read a time.

Each failure raises DecodeError with a short, stable reason (counted in metrics) and a detail
naming the field.
"""

from __future__ import annotations

import math
from datetime import UTC, datetime
from typing import Any

import orjson

from fieldline.device_gateway.messages import DecodeError


def parse_json(payload: bytes) -> Any:
    # orjson reads the bytes itself, checks their UTF-8 and refuses NaN and Infinity, at a
    # fraction of the standard library's cost: this runs for every message.
    try:
        return orjson.loads(payload)
    except orjson.JSONDecodeError as exc:
        message = str(exc)
        reason = "not_utf8" if "UTF-8" in message else "bad_json"
        raise DecodeError(reason, message[:200]) from None


def parse_object(payload: bytes) -> dict[str, Any]:
    value = parse_json(payload)
    if not isinstance(value, dict):
        raise DecodeError("not_object", "the payload is not a JSON object")
    return value


def number(obj: dict[str, Any], name: str, *, required: bool = False) -> float | None:
    value = obj.get(name)
    if type(value) is float:  # the common case first: this runs for every field of every fix
        if not math.isfinite(value):
            raise DecodeError("bad_field", f"{name} is not finite")
        return value
    if value is None:
        if required:
            raise DecodeError("missing_field", name)
        return None
    if type(value) is not int:  # bool is a subclass of int, not int itself
        raise DecodeError("bad_field", f"{name} is not a number")
    result = float(value)  # a huge int overflows to inf
    if not math.isfinite(result):
        raise DecodeError("bad_field", f"{name} is not finite")
    return result


def required_number(obj: dict[str, Any], name: str) -> float:
    value = number(obj, name, required=True)
    assert value is not None
    return value


def text(obj: dict[str, Any], name: str, *, required: bool = False) -> str | None:
    value = obj.get(name)
    if value is None:
        if required:
            raise DecodeError("missing_field", name)
        return None
    if not isinstance(value, str):
        raise DecodeError("bad_field", f"{name} is not a string")
    if "\x00" in value:  # PostgreSQL text cannot hold NUL
        raise DecodeError("bad_field", f"{name} holds a NUL character")
    return value


def epoch_time(value: Any, name: str) -> datetime:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise DecodeError("bad_time", f"{name} is not epoch seconds")
    try:
        return datetime.fromtimestamp(value, tz=UTC)
    except (OverflowError, OSError, ValueError):
        raise DecodeError("bad_time", f"{name} is out of range") from None


def time_field(obj: dict[str, Any], name: str) -> datetime:
    """ISO 8601 with a UTC offset, or epoch seconds; always returned in UTC."""
    value = obj.get(name)
    if value is None:
        raise DecodeError("missing_field", name)
    if isinstance(value, str):
        try:
            parsed = datetime.fromisoformat(value)
        except ValueError:
            raise DecodeError("bad_time", f"{name} is not ISO 8601") from None
        if parsed.tzinfo is None:
            # A time without offset is ambiguous; guessing would shift fixes by hours.
            raise DecodeError("bad_time", f"{name} has no UTC offset")
        try:
            return parsed.astimezone(UTC)
        except OverflowError:
            raise DecodeError("bad_time", f"{name} is out of range") from None
    return epoch_time(value, name)


def topic_part(topic: str, index: int, count: int) -> str:
    """Part `index` of a topic that must have exactly `count` levels, none empty."""
    parts = topic.split("/")
    if len(parts) != count or not all(parts):
        raise DecodeError("bad_topic", topic[:200])
    return parts[index]
