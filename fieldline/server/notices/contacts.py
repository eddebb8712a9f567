"""Who a notice can reach over which channel: a caller's {name, phone, email}, or the
supervisor contact (an e-mail address or a phone number)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from fieldline.server.fields import is_email, phone_number


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
