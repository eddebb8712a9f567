"""Issuing and revoking the MQTT logins of devices, SCADA stations and Sparkplug edge nodes.

A login is written to the broker (through its dynamic security API) in the same step as the
row that records it; the caller commits only once the broker has taken it, so the two agree.
A password is made here, given to the caller once and never stored by Fieldline.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from fieldline.gis.errors import Conflict, InvalidField, NotFound
from fieldline.gis.models import Station
from fieldline.server.auth.services import record_event
from fieldline.server.crews import services as crews
from fieldline.server.crews.models import Crew, Device
from fieldline.server.crews.services import bind_device, get_crew, unbind_device
from fieldline.server.mqtt_access import acl
from fieldline.server.mqtt_access.broker import BrokerAdmin
from fieldline.server.mqtt_access.models import DeviceCredential
from fieldline.server.telemetry.models import StationBinding

PASSWORD_BYTES = 24


@dataclass(frozen=True)
class Login:
    username: str
    password: str
    kind: str
    subject: str

    def as_json(self) -> dict[str, str]:
        return {"username": self.username, "password": self.password}


def new_password() -> str:
    return secrets.token_urlsafe(PASSWORD_BYTES)


def new_identifier() -> str:
    return f"handheld-{secrets.token_hex(4)}"


def _live(session: Session, username: str) -> DeviceCredential | None:
    return session.scalar(
        sa.select(DeviceCredential).where(
            DeviceCredential.username == username, DeviceCredential.revoked_at.is_(None)
        )
    )


def _issue(
    session: Session,
    admin: BrokerAdmin,
    *,
    username: str,
    kind: str,
    subject: str,
    grants: list[acl.Grant],
    actor: str,
    device_id: int | None = None,
) -> Login:
    """A fresh login with these rights; one of the same name is replaced (and disconnected)."""
    previous = _live(session, username)
    if previous is not None:
        if previous.kind != kind or (previous.device_id or device_id) != device_id:
            # A handheld named like a station's login must not take the station's place.
            raise Conflict(f"the MQTT login {username} belongs to {previous.subject}")
        previous.revoked_at = datetime.now(UTC)
        session.flush()
    session.add(
        DeviceCredential(username=username, kind=kind, subject=subject, device_id=device_id)
    )
    password = new_password()
    record_event(
        session,
        "device_credentials_created",
        actor,
        username,
        {"kind": kind, "subject": subject, "topics": sorted({g.topic for g in grants})},
    )
    session.flush()
    admin.send(acl.create_commands(username, password, grants))
    return Login(username, password, kind, subject)


def _revoke(session: Session, admin: BrokerAdmin, username: str, actor: str) -> bool:
    """Remove the login from the broker (closing its connection); False if none was live."""
    credential = _live(session, username)
    if credential is not None:
        credential.revoked_at = datetime.now(UTC)
        record_event(
            session,
            "device_revoked",
            actor,
            username,
            {"kind": credential.kind, "subject": credential.subject},
        )
        session.flush()
    admin.send(acl.delete_commands(username))
    return credential is not None


# --- crews' devices -------------------------------------------------------------------------


def device_username(device: Device) -> str:
    # Own handhelds' names have no '/', OwnTracks' are "user/device": they never clash.
    return device.identifier


def _device_login(
    session: Session, admin: BrokerAdmin, crew: Crew, device: Device, actor: str
) -> Login:
    return _issue(
        session,
        admin,
        username=device_username(device),
        kind="device",
        subject=f"{crew.public_id} {device.kind}:{device.identifier}",
        grants=acl.device_grants(device.kind, crew.public_id, device.identifier),
        actor=actor,
        device_id=device.id,
    )


def add_device(
    session: Session,
    admin: BrokerAdmin,
    crew_public_id: str,
    kind: Any,
    identifier: Any,
    *,
    actor: str,
) -> tuple[Device, Login]:
    """Bind a device to a crew and give it its MQTT login. Asking again for a bound device
    issues a new password (the old one stops working)."""
    device = bind_device(session, crew_public_id, kind, identifier)
    crew = get_crew(session, crew_public_id)
    return device, _device_login(session, admin, crew, device, actor)


def revoke_device(
    session: Session,
    admin: BrokerAdmin,
    crew_public_id: str,
    kind: str,
    identifier: str,
    *,
    actor: str,
) -> None:
    """Unbind a device from its crew and revoke its login: the broker refuses it from now on
    and closes its connection."""
    unbind_device(session, crew_public_id, kind, identifier)
    _revoke(session, admin, identifier, actor)


def delete_crew(session: Session, admin: BrokerAdmin, crew_public_id: str, *, actor: str) -> None:
    """Delete a crew (crews.services.delete_crew) and revoke its devices' logins with it."""
    crew = get_crew(session, crew_public_id)
    usernames = session.scalars(
        sa.select(DeviceCredential.username)
        .join(Device, Device.id == DeviceCredential.device_id)
        .where(Device.crew_id == crew.id, DeviceCredential.revoked_at.is_(None))
    ).all()
    crews.delete_crew(session, crew_public_id)
    for username in usernames:
        _revoke(session, admin, username, actor)


def sign_in_login(
    session: Session, admin: BrokerAdmin, crew: Crew, device: Device, *, actor: str
) -> Login:
    """The handheld's login for this sign-in: a fresh password each time, so the page holds
    nothing that outlives its session (an earlier sign-in of the device is disconnected)."""
    return _device_login(session, admin, crew, device, actor)


# --- SCADA stations and Sparkplug edge nodes ------------------------------------------------


def _station_subject(session: Session, source: str) -> tuple[str, str, list[acl.Grant]]:
    """(kind, username, grants) of a station's name or a Sparkplug edge node `spb:group/edge`;
    NotFound unless a station is known by it (`fieldline stations bind`)."""
    if source.startswith("spb:"):
        parts = source.removeprefix("spb:").split("/")
        if len(parts) != 2 or "" in parts or any(c in source for c in "+# "):
            raise InvalidField("source", "a Sparkplug edge node is spb:group/edge")
        bound = session.scalar(
            sa.select(StationBinding.source).where(
                sa.or_(
                    StationBinding.source == source, StationBinding.source.startswith(source + "/")
                )
            )
        )
        if bound is None:
            raise NotFound(
                f"no station is bound to {source}; bind one with `fieldline stations bind`"
            )
        return "edge", source, acl.edge_grants(parts[0], parts[1])
    if not source or any(c in source for c in "/+# "):
        raise InvalidField("source", "must be a station's id or the name SCADA reports it under")
    known = session.scalar(sa.select(Station.id).where(Station.public_id == source)) or session.get(
        StationBinding, source
    )
    if not known:
        raise NotFound(f"no station {source}; bind the name with `fieldline stations bind`")
    return "station", f"scada:{source}", acl.station_grants(source)


def add_station_login(session: Session, admin: BrokerAdmin, source: str, *, actor: str) -> Login:
    kind, username, grants = _station_subject(session, source)
    return _issue(
        session, admin, username=username, kind=kind, subject=source, grants=grants, actor=actor
    )


def revoke_station_login(session: Session, admin: BrokerAdmin, source: str, *, actor: str) -> bool:
    _kind, username, _grants = _station_subject(session, source)
    return _revoke(session, admin, username, actor)
