"""Crews and their device bindings."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from fieldline.gis.errors import Conflict, InvalidField, NotFound
from fieldline.server.crews.models import CREW_MODES, DEVICE_KINDS, Crew, Device


def create_crew(session: Session, name: str, mode: str = "vehicle") -> Crew:
    if not name.strip():
        raise InvalidField("name", "a crew needs a name")
    if mode not in CREW_MODES:
        raise InvalidField("mode", "must be one of " + ", ".join(CREW_MODES))
    crew = Crew(name=name.strip(), mode=mode)
    session.add(crew)
    session.flush()
    session.refresh(crew)  # the public id comes from the database
    return crew


def get_crew(session: Session, public_id: str) -> Crew:
    crew = session.scalar(sa.select(Crew).where(Crew.public_id == public_id))
    if crew is None:
        raise NotFound(f"no crew {public_id}")
    return crew


def bind_device(session: Session, crew_public_id: str, kind: str, identifier: str) -> Device:
    """Bind a device to a crew: `own` (a handheld name) or `owntracks` ("user/device")."""
    if kind not in DEVICE_KINDS:
        raise InvalidField("kind", "must be one of " + ", ".join(DEVICE_KINDS))
    if kind == "owntracks" and (identifier.count("/") != 1 or "" in identifier.split("/")):
        raise InvalidField("identifier", "an OwnTracks device is named user/device")
    crew = get_crew(session, crew_public_id)
    taken = session.scalar(
        sa.select(Device).where(Device.kind == kind, Device.identifier == identifier)
    )
    if taken is not None and taken.crew_id != crew.id:
        raise Conflict(f"{kind} device {identifier} is bound to another crew")
    if taken is not None:
        return taken
    device = Device(crew_id=crew.id, kind=kind, identifier=identifier)
    session.add(device)
    session.flush()
    return device


def list_crews(session: Session, latest: dict[str, dict[str, Any]]) -> list[dict[str, Any]]:
    """Every crew with its devices and, from `latest`, its latest accepted fix."""
    devices: dict[int, list[dict[str, str]]] = {}
    for device in session.scalars(sa.select(Device).order_by(Device.id)):
        devices.setdefault(device.crew_id, []).append(
            {"kind": device.kind, "identifier": device.identifier}
        )
    return [
        {
            "id": crew.public_id,
            "name": crew.name,
            "mode": crew.mode,
            "devices": devices.get(crew.id, []),
            "latest": latest.get(crew.public_id),
        }
        for crew in session.scalars(sa.select(Crew).order_by(Crew.public_id))
    ]
