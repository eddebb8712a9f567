"""The single place that decides who may do what.

Every view is wrapped in `@requires(permission)`. Roles map to permissions in ROLE_PERMISSIONS;
the principal comes from `resolve_principal`: an API token (`Authorization: Bearer`), else the
web session cookie (whose unsafe requests must carry `X-CSRF-Token`), else nobody, who has the
role FIELDLINE_ANONYMOUS_ROLE if one is set. Nobody without a role gets 401, a known principal
without the permission 403. A crew member sees and moves only its own crew's work (`crew_scope`).
"""

from __future__ import annotations

import hmac
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import wraps
from typing import Any, TypeVar
from urllib.parse import urlencode

from flask import current_app, g, redirect, request, session, url_for

from fieldline.roles import ROLES
from fieldline.server.errors import Forbidden, NotFoundError, Unauthorized

# Crews' positions, station telemetry and the live stream; the dead letter is for operators.
FIELD_READS = frozenset({"crews:read", "telemetry:read", "live:read"})
OPERATOR_READS = FIELD_READS | {"deadletter:read"}
# Keeping the roster (crews, members, skills, shifts) is dispatch work; binding devices and
# SCADA names to crews and stations is provisioning.
ROSTER_WRITES = frozenset({"crews:write"})
PROVISIONING = frozenset({"devices:write", "stations:write"})
# Service levels: dispatchers watch and acknowledge warnings, the call centre reads what
# customers were told, everyone who follows the work reads the scores.
SERVICE_LEVELS = frozenset({"warnings:read", "warnings:write", "notices:read", "kpis:read"})
# Work orders: dispatchers create, edit and move them; other systems (the call centre's,
# SCADA's) create them; a crew member moves its own crew's tasks (services.py checks whose).
TASKS = frozenset({"tasks:read", "tasks:write", "tasks:transition"})
# Dispatch: ranking crews for a task (read), assigning and batch plans (write).
DISPATCH = frozenset({"dispatch:read", "dispatch:write"})
# Proof of work: reading the checks of crews' traces, and running one again or overriding it.
VERIFICATION = frozenset({"verification:read", "verification:write"})
# The crew's handheld: signing in with a bound device, putting photos for its field reports.
HANDHELD = frozenset({"crews:sign-in", "uploads:write", "uploads:read"})
# Field reports from the crews: the office reads them and their photos; supervisors review
# them (accepting a correction edits the asset, as `assets:write` does).
REPORTS_READ = frozenset({"reports:read", "uploads:read"})
REPORTS_REVIEW = frozenset({"reports:review"})
# SCADA alarms: everyone who watches the network reads them; dispatchers acknowledge them;
# supervisors set the rules that raise them.
ALARMS_READ = frozenset({"alarms:read"})
ALARMS_ACKNOWLEDGE = frozenset({"alarms:acknowledge"})
ALARM_RULES = frozenset({"alarm-rules:write"})
# Meter anomalies name customers' accounts and addresses: the office and the call centre's
# and billing systems read them, not every viewer.
METERS_READ = frozenset({"meters:read"})
# Incidents (main breaks, outages): everyone who watches the network reads them; the office
# and the call centre's system report them; dispatchers confirm the pipe and isolate it.
INCIDENTS_READ = frozenset({"incidents:read"})
INCIDENTS_WRITE = frozenset({"incidents:write"})
# Customers' contacts (outage notices reach them) come from the billing system.
CUSTOMERS_WRITE = frozenset({"customers:write"})
# People and programs: everyone keeps its own API tokens; admins keep the users, everyone's
# tokens, and read the audit log.
OWN_TOKENS = frozenset({"tokens:own"})
ADMINISTRATION = frozenset({"users:admin", "audit:read"})

# What the office does: dispatchers run the day's work; supervisors and admins also edit the
# network, provision devices and review field reports.
DISPATCH_DESK = (
    frozenset({"assets:read", "assets:history"})
    | OPERATOR_READS
    | ROSTER_WRITES
    | SERVICE_LEVELS
    | TASKS
    | DISPATCH
    | VERIFICATION
    | REPORTS_READ
    | ALARMS_READ
    | ALARMS_ACKNOWLEDGE
    | METERS_READ
    | INCIDENTS_READ
    | INCIDENTS_WRITE
)
SUPERVISION = (
    DISPATCH_DESK
    | {"assets:write"}
    | PROVISIONING
    | REPORTS_REVIEW
    | HANDHELD
    | ALARM_RULES
    | CUSTOMERS_WRITE
)

ROLE_PERMISSIONS: dict[str, frozenset[str]] = {
    "admin": SUPERVISION | ADMINISTRATION | OWN_TOKENS,
    "supervisor": SUPERVISION | OWN_TOKENS,
    "dispatcher": DISPATCH_DESK | OWN_TOKENS,
    "crew_member": frozenset({"assets:read", "tasks:read", "tasks:transition"})
    | HANDHELD
    | OWN_TOKENS,
    "viewer": frozenset(
        {"assets:read", "warnings:read", "kpis:read", "tasks:read", "verification:read"}
    )
    | FIELD_READS
    | REPORTS_READ
    | ALARMS_READ
    | INCIDENTS_READ
    | OWN_TOKENS,
    "integration": frozenset(
        {"assets:read", "crews:read", "telemetry:read", "notices:read", "kpis:read"}
    )
    | {"tasks:read", "tasks:write"}
    | ALARMS_READ
    | METERS_READ
    | INCIDENTS_READ
    | INCIDENTS_WRITE
    | CUSTOMERS_WRITE
    | OWN_TOKENS,
}


F = TypeVar("F", bound=Callable[..., Any])


SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
CSRF_HEADER = "X-CSRF-Token"
# What the web session keeps (Flask's signed cookie): who, the CSRF token, and a fingerprint
# of the password, so that changing it ends the sessions made before.
SESSION_USER, SESSION_CSRF, SESSION_PASSWORD = "user_id", "csrf", "pw"
ANONYMOUS = "local-operator"


@dataclass(frozen=True)
class Principal:
    name: str
    role: str  # empty: nobody (no credentials, no anonymous role)
    # The crew a crew member acts for (its public id): the user's crew.
    crew_id: str | None = None
    user_id: int | None = None
    via: str = "anonymous"  # or "token", "session"

    def may(self, permission: str) -> bool:
        return permission in ROLE_PERMISSIONS.get(self.role, frozenset())


def resolve_principal() -> Principal:
    header = request.headers.get("Authorization", "")
    if header:
        scheme, _, presented = header.partition(" ")
        if scheme.lower() != "bearer" or not presented.strip():
            raise Unauthorized("the Authorization header must be `Bearer <API token>`")
        return _token_principal(presented.strip())
    if SESSION_USER in session:
        return _session_principal()
    role = current_app.config["FIELDLINE_SETTINGS"].anonymous_role
    return Principal(name=ANONYMOUS, role=role)


def _token_principal(presented: str) -> Principal:
    from fieldline.server.auth import services
    from fieldline.server.resources import resources

    # A session of its own: the token's last use is written even when the request's own
    # work is rolled back.
    with resources().sessions() as db:
        found = services.token_user(db, presented, datetime.now(UTC))
        if found is None:
            raise Unauthorized("the API token is unknown, expired or revoked, or its user disabled")
        user, _token = found
        principal = Principal(
            user.username, user.role, services.crew_public_id(db, user), user.id, "token"
        )
        db.commit()
    return principal


def _session_principal() -> Principal:
    from fieldline.server.auth import services
    from fieldline.server.resources import resources

    with resources().sessions() as db:
        user = services.active_user(db, int(session[SESSION_USER]))
        if user is None or services.password_fingerprint(user) != session.get(SESSION_PASSWORD):
            session.clear()
            raise Unauthorized("the session has ended: sign in again")
        principal = Principal(
            user.username, user.role, services.crew_public_id(db, user), user.id, "session"
        )
    if request.method not in SAFE_METHODS:
        # The cookie comes with any request the browser makes to this site, also one another
        # site's page starts; only this site's pages know the session's token.
        sent, expected = request.headers.get(CSRF_HEADER, ""), str(session.get(SESSION_CSRF, ""))
        if not expected or not hmac.compare_digest(sent.encode(), expected.encode()):
            raise Forbidden(
                f"a request signed in by the session cookie must carry the {CSRF_HEADER} header"
                " with the session's token (given at sign-in and by GET /api/v1/auth/me)",
                field=CSRF_HEADER,
            )
    return principal


def _public_read() -> bool:
    """OGC API - Features reads, anonymously when FIELDLINE_OGC_PUBLIC_READS says so."""
    settings = current_app.config["FIELDLINE_SETTINGS"]
    return (
        settings.ogc_public_reads and request.method in SAFE_METHODS and request.blueprint == "ogc"
    )


def login_url() -> str:
    return url_for("auth.login_page") + "?" + urlencode({"next": request.full_path.rstrip("?")})


def current_principal() -> Principal:
    if "principal" not in g:
        g.principal = resolve_principal()
    principal: Principal = g.principal
    return principal


def requires(permission: str, *, page: bool = False) -> Callable[[F], F]:
    """`page`: an HTML page, which sends a browser that is not signed in to the login page."""

    def decorate(view: F) -> F:
        @wraps(view)
        def guarded(*args: Any, **kwargs: Any) -> Any:
            try:
                principal = current_principal()
                if not principal.may(permission) and not _public_read():
                    if principal.role:
                        raise Forbidden(f"role {principal.role!r} may not {permission}")
                    raise Unauthorized(
                        "sign in (POST /api/v1/auth/login) or send an API token"
                        " as `Authorization: Bearer <token>`"
                    )
            except Unauthorized:
                if page:
                    return redirect(login_url())
                raise
            return view(*args, **kwargs)

        guarded.required_permission = permission  # type: ignore[attr-defined]
        return guarded  # type: ignore[return-value]

    return decorate


def crew_scope() -> str | None:
    """The one crew whose tasks the principal may see and move (its public id); None: all."""
    principal = current_principal()
    if principal.role != "crew_member":
        return None
    if principal.crew_id is None:
        raise Forbidden("this crew member is not bound to a crew")
    return principal.crew_id


def check_crew(crew_id: str | None, what: str) -> None:
    """Another crew's work is not found for a crew member, as if it did not exist."""
    scope = crew_scope()
    if scope is not None and crew_id != scope:
        raise NotFoundError(f"no {what}")


assert set(ROLE_PERMISSIONS) == set(ROLES), "every role needs a row in ROLE_PERMISSIONS"
