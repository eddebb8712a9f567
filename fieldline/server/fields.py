"""Checks of the values a request or a command line gives, shared by every domain's services:
each failure is an InvalidField naming the field, raised before anything is written; and the
one way a time is written back (`iso`)."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from fieldline.gis.errors import InvalidField
from fieldline.gis.validation import parse_datetime

_EMAIL = re.compile(r"[^@\s]+@[^@\s]+\.[^@\s]+")
_PHONE = re.compile(r"\+?[0-9]{6,15}")
# Written between the digits of phone numbers as people type them.
_PHONE_PUNCTUATION = str.maketrans("", "", " -().")


def is_email(value: str) -> bool:
    return _EMAIL.fullmatch(value) is not None


def phone_number(value: str) -> str | None:
    """The number without spaces and punctuation (`+358 40 123-4567` -> `+358401234567`),
    or None when it is not one."""
    digits = value.translate(_PHONE_PUNCTUATION)
    return digits if _PHONE.fullmatch(digits) else None


def known_fields(data: Any, known: Sequence[str], field: str = "body") -> Mapping[str, Any]:
    """An object whose keys are all among `known`."""
    if not isinstance(data, Mapping):
        raise InvalidField(field, "must be a JSON object")
    for key in data:
        if key not in known:
            raise InvalidField(str(key), "unknown field; known: " + ", ".join(known))
    return data


def text(value: Any, field: str, most: int) -> str:
    """A non-empty string of at most `most` characters, stripped."""
    if not isinstance(value, str) or not value.strip():
        raise InvalidField(field, "must be a non-empty string")
    if len(value) > most or "\x00" in value:
        raise InvalidField(field, f"must be at most {most} characters, without NUL")
    return value.strip()


def optional_text(value: Any, field: str, most: int) -> str | None:
    return None if value is None else text(value, field, most)


def choice(value: Any, field: str, choices: Sequence[str]) -> str:
    if value is None:
        raise InvalidField(field, "is required: one of " + ", ".join(choices))
    if value not in choices:
        raise InvalidField(field, f"{value!r} is not one of: {', '.join(choices)}")
    return str(value)


def moment(value: Any, field: str) -> datetime:
    """An ISO 8601 date-time with an offset, or an aware datetime."""
    if isinstance(value, datetime):
        if value.tzinfo is None:
            raise InvalidField(field, "needs a time zone")
        return value
    return parse_datetime(value, field)


def iso(at: datetime | None) -> str | None:
    """A time as ISO 8601 with its offset, as every answer writes it; None stays None."""
    return None if at is None else at.isoformat()
