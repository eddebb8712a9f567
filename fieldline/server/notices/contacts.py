"""Who a notice can reach over which channel: a caller's {name, phone, email}, or the
supervisor contact (an e-mail address or a phone number), or a customer account's contact."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.orm import Session

from fieldline.gis.errors import InvalidField
from fieldline.server.fields import is_email, known_fields, optional_text, phone_number, text


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


def account_contacts(session: Session, accounts: Iterable[str]) -> dict[str, str]:
    """Customer account -> the contact (phone, else e-mail) its holder is reached at; the
    accounts without a usable one are left out."""
    from fieldline.server.notices.models import CustomerContact

    wanted = sorted({a for a in accounts if a})
    if not wanted:
        return {}
    rows = session.execute(
        sa.select(
            CustomerContact.customer_account, CustomerContact.phone, CustomerContact.email
        ).where(CustomerContact.customer_account.in_(wanted))
    )
    found = {}
    for account, phone, email in rows:
        contact = contact_of({"phone": phone, "email": email})
        if contact is not None:
            found[account] = contact
    return found


MAX_CONTACTS = 10_000
CONTACT_FIELDS = ("customer_account", "name", "phone", "email")


def store_contacts(session: Session, body: Any, now: datetime) -> int:
    """`{"contacts": [{customer_account, name, phone, email}, ...]}` from the billing system:
    each account's contact replaced (phone or e-mail required), every row checked before any
    is written; how many were stored."""
    from fieldline.server.notices.models import CustomerContact

    rows = known_fields(body, ("contacts",)).get("contacts")
    if isinstance(rows, str | Mapping) or not isinstance(rows, Sequence) or not rows:
        raise InvalidField("contacts", "must be a non-empty list of {customer_account, ...}")
    if len(rows) > MAX_CONTACTS:
        raise InvalidField("contacts", f"lists at most {MAX_CONTACTS} contacts a request")
    checked: dict[str, dict[str, Any]] = {}
    for i, row in enumerate(rows):
        field = f"contacts[{i}]"
        fields = known_fields(row, CONTACT_FIELDS, field)
        account = text(fields.get("customer_account"), f"{field}.customer_account", 100)
        phone = optional_text(fields.get("phone"), f"{field}.phone", 40)
        if phone is not None and phone_number(phone) is None:
            raise InvalidField(f"{field}.phone", f"{phone!r} is not a phone number")
        email = optional_text(fields.get("email"), f"{field}.email", 320)
        if email is not None and not is_email(email):
            raise InvalidField(f"{field}.email", f"{email!r} is not an e-mail address")
        if phone is None and email is None:
            raise InvalidField(field, "needs a phone or an email")
        name = optional_text(fields.get("name"), f"{field}.name", 200)
        checked[account] = {
            "customer_account": account,
            "name": name,
            "phone": phone,
            "email": email,
            "updated_at": now,
        }
    statement = insert(CustomerContact)
    statement = statement.on_conflict_do_update(
        index_elements=[CustomerContact.customer_account],
        set_={name: statement.excluded[name] for name in ("name", "phone", "email", "updated_at")},
    )
    session.execute(statement, list(checked.values()))
    return len(checked)
