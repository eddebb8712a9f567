"""`PUT /api/v1/customer-contacts`: the billing system's contacts of customer accounts, which
outage notices reach; every row checked before any is written."""

from __future__ import annotations

from typing import Any

import pytest
import sqlalchemy as sa
from flask.testing import FlaskClient
from sqlalchemy.orm import Session

from fieldline.server.notices.contacts import account_contacts
from fieldline.server.notices.models import CustomerContact

URL = "/api/v1/customer-contacts"


def test_contacts_are_stored_and_replaced(incident_client: FlaskClient, session: Session) -> None:
    rows = [
        {"customer_account": "CA-1", "name": "Aino", "phone": "+358 40 111 2222"},
        {"customer_account": "CA-2", "email": "ca2@example.fi"},
    ]
    response = incident_client.put(URL, json={"contacts": rows})
    assert response.status_code == 200 and response.get_json() == {"stored": 2}
    assert account_contacts(session, ["CA-1", "CA-2", "CA-3"]) == {
        "CA-1": "+358401112222",
        "CA-2": "ca2@example.fi",
    }
    moved = [{"customer_account": "CA-1", "email": "aino@example.fi"}]
    assert incident_client.put(URL, json={"contacts": moved}).status_code == 200
    session.expire_all()
    assert account_contacts(session, ["CA-1"]) == {"CA-1": "aino@example.fi"}
    assert session.get_one(CustomerContact, "CA-1").phone is None


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({}, "contacts"),
        ({"contacts": []}, "contacts"),
        ({"contacts": [{"customer_account": "CA-1"}]}, "contacts[0]"),
        (
            {"contacts": [{"customer_account": "CA-1", "phone": "+358401112222"},
                          {"customer_account": "CA-2", "phone": "ring ring"}]},
            "contacts[1].phone",
        ),
        ({"contacts": [{"phone": "+358401112222"}]}, "contacts[0].customer_account"),
        ({"contacts": [{"customer_account": "CA-1", "email": "no-at"}]}, "contacts[0].email"),
    ],
)  # fmt: skip
def test_a_bad_row_names_its_field_and_nothing_is_stored(
    incident_client: FlaskClient, session: Session, body: Any, field: str
) -> None:
    response = incident_client.put(URL, json=body)
    assert response.status_code == 422
    assert response.get_json()["field"] == field
    assert session.scalar(sa.select(sa.func.count()).select_from(CustomerContact)) == 0


def test_only_the_billing_side_writes_contacts(settings: Any, connection: Any) -> None:
    from fieldline.server import create_app
    from fieldline.settings import load_settings

    as_dispatcher = load_settings(database_url=settings.database_url, anonymous_role="dispatcher")
    client = create_app(as_dispatcher, bind=connection).test_client()
    body = {"contacts": [{"customer_account": "CA-1", "phone": "+358401112222"}]}
    assert client.put(URL, json=body).status_code == 403
