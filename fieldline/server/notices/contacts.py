"""Who a notice can reach over which channel: a caller's {name, phone, email}, or the
supervisor contact (an e-mail address or a phone number)."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

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


def contact_of(caller: Mapping[str, Any] | None) -> str | None:
    """The caller's phone number, else e-mail address: one text reaches a person once."""
    if not caller:
        return None
    phone = caller.get("phone")
    if isinstance(phone, str) and phone_number(phone):
        return phone_number(phone)
    email = caller.get("email")
    if isinstance(email, str) and is_email(email.strip()):
        return email.strip()
    return None


def recipient_for(channel: str, contact: str | None) -> str | None:
    """The address a channel delivers to: SMS needs a phone number; the webhook (the call
    centre's system) and the recording backend take either."""
    if not contact:
        return None
    phone = phone_number(contact)
    if channel == "sms" or phone is not None:
        return phone
    return contact if is_email(contact) else None
