"""Outage notices through the notices outbox: `water_off` when the valves are being shut,
`water_update` for a new restoration time, `water_restored` when the incident closes.

Recipients are the contacts of the customer accounts of the meters the trace leaves without
water (customer_contacts, from the billing system) and the incident's callers, each once:
the occasion (incident and contact, plus the estimate for an update) makes a replayed step
write nothing new under the outbox's unique (task, kind, channel, occasion).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from fieldline.server.incidents.models import Incident, IncidentSource, IncidentTask
from fieldline.server.notices import texts
from fieldline.server.notices.contacts import account_contacts, contact_of
from fieldline.server.notices.services import Draft, write_notices
from fieldline.settings import Settings

CAUSE = "a burst water main is being repaired"
KINDS = ("water_off", "water_update", "water_restored")


def _callers(session: Session, incident: Incident) -> list[dict[str, Any]]:
    found: list[dict[str, Any] | None] = list(
        session.scalars(
            sa.select(IncidentSource.caller)
            .where(IncidentSource.incident_id == incident.id, IncidentSource.caller.is_not(None))
            .order_by(IncidentSource.reported_at, IncidentSource.id)
        )
    )
    return [caller for caller in found if caller]


def recipients(session: Session, incident: Incident) -> list[str]:
    """Everyone to tell about the outage, each once: the holders of the affected meters'
    customer accounts, then the callers."""
    meters = (incident.isolation or {}).get("meters", [])
    by_account = account_contacts(session, (m.get("customer_account") for m in meters))
    found = dict.fromkeys(by_account[a] for a in sorted(by_account))
    for caller in _callers(session, incident):
        contact = contact_of(caller)
        if contact is not None:
            found.setdefault(contact)
    return list(found)


def notify(
    session: Session, incident: Incident, kind: str, now: datetime, settings: Settings
) -> int:
    """Write one notice of `kind` to every recipient; once per recipient and kind (and, for
    an update, per estimate). Attached to the repair task, which carries the work they
    wait for; how many rows were new."""
    repair = session.scalar(
        sa.select(IncidentTask.task_id).where(
            IncidentTask.incident_id == incident.id, IncidentTask.role == "repair"
        )
    )
    if repair is None:
        return 0
    eta = incident.estimated_restoration
    if kind == "water_off":
        start = incident.isolated_at or now
        message = texts.water_off(incident.public_id, CAUSE, start, eta, settings.timezone)
    elif kind == "water_update":
        assert eta is not None
        message = texts.water_update(incident.public_id, eta, now, settings.timezone)
    else:
        message = texts.water_restored(incident.public_id)
    suffix = f":{eta.isoformat()}" if kind == "water_update" and eta is not None else ""
    drafts = [
        Draft(repair, kind, f"{incident.public_id}:{contact}{suffix}", contact, message)
        for contact in recipients(session, incident)
    ]
    return write_notices(session, drafts, settings)
