"""Users, sign-in, API tokens and the audit log: the rules, without Flask.

`record_event` is the one way anything writes to the audit log (`security_events`); other
parts call it in the same transaction as the change they record.
"""

from __future__ import annotations

import hashlib
import re
import secrets
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.orm import Session

from fieldline.gis.errors import InvalidField, NotFound
from fieldline.roles import ROLES
from fieldline.server.auth import passwords, tokens
from fieldline.server.auth.models import ApiToken, SecurityEvent, ServerSecret, User
from fieldline.server.crews.models import Crew
from fieldline.settings import Settings

USERNAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._@-]{0,63}")
FIRST_ADMIN = "admin"
SYSTEM_ACTOR = "fieldline"  # the command line and the server itself
SESSION_KEY_NAME = "session_key"
# A token's last use is written at most this often: not a write on every request.
LAST_USED_EVERY = timedelta(minutes=1)
USER_FIELDS = ("username", "role", "crew_id", "password", "disabled")


class LoginRefused(Exception):
    """Wrong user name or password, or a disabled user: the caller is told no more."""


class LockedOut(Exception):
    """Too many failed sign-ins for this user name lately."""

    def __init__(self, retry_after_s: int) -> None:
        super().__init__("too many failed sign-ins")
        self.retry_after_s = retry_after_s


# --- the audit log ---------------------------------------------------------------------------


def record_event(
    session: Session,
    kind: str,
    actor: str | None,
    subject: str | None = None,
    detail: Mapping[str, Any] | None = None,
    *,
    remote_addr: str | None = None,
    at: datetime | None = None,
) -> SecurityEvent:
    """Add one entry to the audit log; it is written with the caller's transaction."""
    event = SecurityEvent(
        kind=kind,
        actor=actor,
        subject=subject,
        detail=dict(detail or {}),
        remote_addr=remote_addr,
    )
    if at is not None:
        event.at = at
    session.add(event)
    session.flush()
    return event


@dataclass(frozen=True)
class EventQuery:
    kind: str | None = None
    actor: str | None = None
    since: datetime | None = None
    until: datetime | None = None
    limit: int = 100
    before_id: int | None = None  # the cursor: entries older than this one


def list_events(session: Session, query: EventQuery) -> Sequence[SecurityEvent]:
    """Newest first, `query.limit` at most."""
    select = sa.select(SecurityEvent).order_by(SecurityEvent.id.desc()).limit(query.limit)
    if query.kind:
        select = select.where(SecurityEvent.kind == query.kind)
    if query.actor:
        select = select.where(SecurityEvent.actor == query.actor)
    if query.since:
        select = select.where(SecurityEvent.at >= query.since)
    if query.until:
        select = select.where(SecurityEvent.at < query.until)
    if query.before_id:
        select = select.where(SecurityEvent.id < query.before_id)
    return session.scalars(select).all()


def event_json(event: SecurityEvent) -> dict[str, Any]:
    return {
        "id": event.id,
        "at": event.at.isoformat(),
        "kind": event.kind,
        "actor": event.actor,
        "subject": event.subject,
        "remote_addr": event.remote_addr,
        "detail": event.detail,
    }


# --- users -----------------------------------------------------------------------------------


def _username(value: Any) -> str:
    if not isinstance(value, str) or not USERNAME.fullmatch(value):
        raise InvalidField(
            "username",
            "must be 1 to 64 letters, digits and . _ @ -, starting with one of the first two",
        )
    return value


def _role(value: Any) -> str:
    if value not in ROLES:
        raise InvalidField("role", "must be one of " + ", ".join(ROLES))
    return str(value)


def _password(value: Any) -> str:
    if not isinstance(value, str) or not (
        passwords.MIN_LENGTH <= len(value) <= passwords.MAX_LENGTH
    ):
        raise InvalidField(
            "password",
            f"must be text of {passwords.MIN_LENGTH} to {passwords.MAX_LENGTH} characters",
        )
    return value


def _crew(session: Session, value: Any) -> Crew | None:
    if value is None:
        return None
    crew = session.scalar(sa.select(Crew).where(Crew.public_id == value))
    if crew is None:
        raise InvalidField("crew_id", f"there is no crew {value}")
    return crew


def _check_crew_for_role(role: str, crew: Crew | None) -> None:
    if role == "crew_member" and crew is None:
        raise InvalidField("crew_id", "a crew member needs the crew it works in")


def get_user(session: Session, username: str) -> User:
    user = session.scalar(sa.select(User).where(User.username == username))
    if user is None:
        raise NotFound(f"no user {username}")
    return user


def list_users(session: Session) -> Sequence[User]:
    return session.scalars(sa.select(User).order_by(User.username)).all()


def crew_public_id(session: Session, user: User) -> str | None:
    if user.crew_id is None:
        return None
    crew = session.get(Crew, user.crew_id)
    return crew.public_id if crew is not None else None


def user_json(session: Session, user: User) -> dict[str, Any]:
    return {
        "username": user.username,
        "role": user.role,
        "crew_id": crew_public_id(session, user),
        "disabled": user.disabled,
        "created_at": user.created_at.isoformat() if user.created_at else None,
        "last_login_at": user.last_login_at.isoformat() if user.last_login_at else None,
    }


def create_user(
    session: Session,
    username: Any,
    role: Any,
    *,
    crew_id: Any = None,
    password: Any = None,
    actor: str = SYSTEM_ACTOR,
    remote_addr: str | None = None,
) -> tuple[User, str | None]:
    """The new user, and the password generated for it when none was given (to show once)."""
    name, role_name = _username(username), _role(role)
    crew = _crew(session, crew_id)
    _check_crew_for_role(role_name, crew)
    generated = passwords.generate_password() if password is None else None
    secret = generated or _password(password)
    if session.scalar(sa.select(User.id).where(User.username == name)) is not None:
        raise InvalidField("username", f"{name} is taken")
    user = User(
        username=name,
        role=role_name,
        crew_id=crew.id if crew else None,
        password_hash=passwords.hash_password(secret),
        disabled=False,
    )
    session.add(user)
    session.flush()
    record_event(
        session,
        "user_created",
        actor,
        name,
        {"role": role_name, "crew_id": crew.public_id if crew else None},
        remote_addr=remote_addr,
    )
    return user, generated


def update_user(
    session: Session,
    username: str,
    changes: Mapping[str, Any],
    *,
    actor: str,
    remote_addr: str | None = None,
) -> User:
    """Role, crew, disabled and password; each change goes to the audit log (never the
    password itself)."""
    user = get_user(session, username)
    unknown = sorted(set(changes) - {"role", "crew_id", "disabled", "password"})
    if unknown:
        raise InvalidField(unknown[0], "cannot be changed here")
    changed: dict[str, Any] = {}
    role = _role(changes["role"]) if "role" in changes else user.role
    if "crew_id" in changes:
        crew = _crew(session, changes["crew_id"])
        changed["crew_id"] = crew.public_id if crew else None
    else:
        crew = session.get(Crew, user.crew_id) if user.crew_id else None
    _check_crew_for_role(role, crew)
    if "role" in changes:
        changed["role"] = role
    user.role, user.crew_id = role, crew.id if crew else None
    if "disabled" in changes:
        if not isinstance(changes["disabled"], bool):
            raise InvalidField("disabled", "must be true or false")
        user.disabled = changed["disabled"] = changes["disabled"]
    if changed:
        record_event(session, "user_changed", actor, username, changed, remote_addr=remote_addr)
    if "password" in changes:
        set_password(session, user, changes["password"], actor=actor, remote_addr=remote_addr)
    session.flush()
    return user


def set_password(
    session: Session,
    user: User,
    password: Any,
    *,
    actor: str,
    remote_addr: str | None = None,
) -> None:
    user.password_hash = passwords.hash_password(_password(password))
    record_event(session, "password_changed", actor, user.username, remote_addr=remote_addr)


def password_fingerprint(user: User) -> str:
    """Kept in the web session: a session made before the password changed no longer counts."""
    return hashlib.sha256(user.password_hash.encode()).hexdigest()[:16]


# --- signing in ------------------------------------------------------------------------------


def _recent_failures(session: Session, username: str, since: datetime) -> list[datetime]:
    """Failed sign-ins for the name since `since`, after its latest successful one."""
    last_ok = session.scalar(
        sa.select(sa.func.max(SecurityEvent.at)).where(
            SecurityEvent.kind == "login",
            SecurityEvent.subject == username,
            SecurityEvent.at >= since,
        )
    )
    start = max(since, last_ok) if last_ok is not None else since
    return list(
        session.scalars(
            sa.select(SecurityEvent.at)
            .where(
                SecurityEvent.kind == "login_failed",
                SecurityEvent.subject == username,
                SecurityEvent.at >= start,
            )
            .order_by(SecurityEvent.at)
        )
    )


def authenticate(
    session: Session,
    username: Any,
    password: Any,
    now: datetime,
    settings: Settings,
    *,
    remote_addr: str | None = None,
) -> User:
    """The user, signed in (its last sign-in recorded); LoginRefused or LockedOut otherwise,
    each failure recorded in the audit log (the caller commits either way)."""
    name = username if isinstance(username, str) else ""
    window = timedelta(minutes=settings.login_lockout_minutes)
    failures = _recent_failures(session, name, now - window) if name else []
    if len(failures) >= settings.login_max_failures:
        retry = failures[-settings.login_max_failures] + window - now
        record_event(
            session,
            "login_failed",
            name,
            name,
            {"reason": "locked"},
            remote_addr=remote_addr,
            at=now,
        )
        raise LockedOut(max(1, int(retry.total_seconds())))
    user = session.scalar(sa.select(User).where(User.username == name)) if name else None
    given = password if isinstance(password, str) else ""
    if user is None:
        passwords.verify_nobody(given)
        ok = False
    else:
        ok = passwords.verify_password(user.password_hash, given) and not user.disabled
    if user is None or not ok:
        reason = "unknown user" if user is None else ("disabled" if user.disabled else "password")
        who = name or None
        record_event(
            session, "login_failed", who, who, {"reason": reason}, remote_addr=remote_addr, at=now
        )
        raise LoginRefused()
    if passwords.needs_rehash(user.password_hash):
        user.password_hash = passwords.hash_password(given)
    user.last_login_at = now
    record_event(session, "login", name, name, remote_addr=remote_addr, at=now)
    return user


def active_user(session: Session, user_id: int) -> User | None:
    user = session.get(User, user_id)
    return user if user is not None and not user.disabled else None


# --- API tokens ------------------------------------------------------------------------------


def create_token(
    session: Session,
    user: User,
    name: Any,
    now: datetime,
    settings: Settings,
    *,
    days: Any = None,
    actor: str,
    remote_addr: str | None = None,
) -> tuple[ApiToken, str]:
    """The token's row and its full secret form, to hand over once."""
    if not isinstance(name, str) or not 1 <= len(name.strip()) <= 100:
        raise InvalidField("name", "must be text of 1 to 100 characters")
    if days is None:
        days = settings.token_max_days
    if isinstance(days, bool) or not isinstance(days, int | float):
        raise InvalidField("days", "must be a number of days")
    if not 0 < days <= settings.token_max_days:
        raise InvalidField("days", f"must be above 0 and at most {settings.token_max_days}")
    full, parts = tokens.new_token()
    token = ApiToken(
        user_id=user.id,
        name=name.strip(),
        prefix=parts.prefix,
        secret_sha256=tokens.secret_digest(parts.secret),
        created_at=now,
        expires_at=now + timedelta(days=days),
    )
    session.add(token)
    session.flush()
    record_event(
        session,
        "token_created",
        actor,
        user.username,
        {"token_id": token.id, "name": token.name, "expires_at": token.expires_at.isoformat()},
        remote_addr=remote_addr,
        at=now,
    )
    return token, full


def list_tokens(session: Session, user: User | None = None) -> Sequence[tuple[ApiToken, str]]:
    """Tokens with their user's name; of one user, or every user's."""
    select = sa.select(ApiToken, User.username).join(User, User.id == ApiToken.user_id)
    if user is not None:
        select = select.where(ApiToken.user_id == user.id)
    rows = session.execute(select.order_by(ApiToken.id))
    return [(token, username) for token, username in rows]


def get_token(session: Session, token_id: Any, owner: User | None = None) -> ApiToken:
    """The token; NotFound also for another user's when `owner` is given."""
    try:
        number = int(token_id)
    except (TypeError, ValueError):
        raise NotFound(f"no token {token_id}") from None
    token = session.get(ApiToken, number)
    if token is None or (owner is not None and token.user_id != owner.id):
        raise NotFound(f"no token {token_id}")
    return token


def revoke_token(
    session: Session, token: ApiToken, now: datetime, *, actor: str, remote_addr: str | None = None
) -> ApiToken:
    if token.revoked_at is None:
        token.revoked_at = now
        owner = session.get(User, token.user_id)
        record_event(
            session,
            "token_revoked",
            actor,
            owner.username if owner else None,
            {"token_id": token.id, "name": token.name},
            remote_addr=remote_addr,
            at=now,
        )
    return token


def token_json(token: ApiToken, username: str) -> dict[str, Any]:
    return {
        "id": token.id,
        "name": token.name,
        "username": username,
        "prefix": token.prefix,
        "created_at": token.created_at.isoformat(),
        "expires_at": token.expires_at.isoformat(),
        "revoked_at": token.revoked_at.isoformat() if token.revoked_at else None,
        "last_used_at": token.last_used_at.isoformat() if token.last_used_at else None,
    }


def token_user(session: Session, presented: str, now: datetime) -> tuple[User, ApiToken] | None:
    """The active user and live token a presented token stands for; None for anything else
    (unknown, wrong secret, expired, revoked, disabled user). Notes its use now and then."""
    parts = tokens.split_token(presented)
    if parts is None:
        return None
    token = session.scalar(sa.select(ApiToken).where(ApiToken.prefix == parts.prefix))
    if token is None or not tokens.secret_matches(parts.secret, token.secret_sha256):
        return None
    if token.revoked_at is not None or token.expires_at <= now:
        return None
    user = active_user(session, token.user_id)
    if user is None:
        return None
    if token.last_used_at is None or now - token.last_used_at >= LAST_USED_EVERY:
        token.last_used_at = now
    return user, token


# --- the server's own secrets and first run --------------------------------------------------


def session_key(session: Session) -> str:
    """The session cookie's signing key: made once, then the same for every process."""
    session.execute(
        insert(ServerSecret)
        .values(name=SESSION_KEY_NAME, value=secrets.token_hex(32))
        .on_conflict_do_nothing(index_elements=["name"])
    )
    value = session.scalar(
        sa.select(ServerSecret.value).where(ServerSecret.name == SESSION_KEY_NAME)
    )
    assert value is not None
    return value


def ensure_first_admin(session: Session) -> str | None:
    """On a database without users: the user `admin` with a random password, returned to
    show once. None when there are users already (the caller commits)."""
    # One process at a time, so that two first starts cannot both make one.
    session.execute(sa.text("SELECT pg_advisory_xact_lock(hashtext('fieldline.first_admin'))"))
    if session.scalar(sa.select(sa.func.count()).select_from(User)):
        return None
    _user, password = create_user(session, FIRST_ADMIN, "admin", actor=SYSTEM_ACTOR)
    return password
