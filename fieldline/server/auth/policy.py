"""The single place that decides who may do what.

Every view is wrapped in `@requires(permission)`. Roles map to permissions in ROLE_PERMISSIONS;
the principal comes from `resolve_principal`, which today trusts the local operator (the role
from FIELDLINE_ANONYMOUS_ROLE) and is where sessions, API tokens and device identities plug in.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import wraps
from typing import Any, TypeVar

from flask import current_app, g

from fieldline.roles import ROLES
from fieldline.server.errors import Forbidden

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
    "admin": SUPERVISION,
    "supervisor": SUPERVISION,
    "dispatcher": DISPATCH_DESK,
    "crew_member": frozenset({"assets:read", "tasks:read", "tasks:transition"}) | HANDHELD,
    "viewer": frozenset(
        {"assets:read", "warnings:read", "kpis:read", "tasks:read", "verification:read"}
    )
    | FIELD_READS
    | REPORTS_READ
    | ALARMS_READ
    | INCIDENTS_READ,
    "integration": frozenset(
        {"assets:read", "crews:read", "telemetry:read", "notices:read", "kpis:read"}
    )
    | {"tasks:read", "tasks:write"}
    | ALARMS_READ
    | METERS_READ
    | INCIDENTS_READ
    | INCIDENTS_WRITE
    | CUSTOMERS_WRITE,
}


F = TypeVar("F", bound=Callable[..., Any])


@dataclass(frozen=True)
class Principal:
    name: str
    role: str
    # The crew a crew member acts for (its public id), once sign-in or the device tells.
    crew_id: str | None = None

    def may(self, permission: str) -> bool:
        return permission in ROLE_PERMISSIONS.get(self.role, frozenset())


def resolve_principal() -> Principal:
    role = current_app.config["FIELDLINE_SETTINGS"].anonymous_role
    return Principal(name="local-operator", role=role)


def current_principal() -> Principal:
    if "principal" not in g:
        g.principal = resolve_principal()
    principal: Principal = g.principal
    return principal


def requires(permission: str) -> Callable[[F], F]:
    def decorate(view: F) -> F:
        @wraps(view)
        def guarded(*args: Any, **kwargs: Any) -> Any:
            principal = current_principal()
            if not principal.may(permission):
                raise Forbidden(f"role {principal.role!r} may not {permission}")
            return view(*args, **kwargs)

        guarded.required_permission = permission  # type: ignore[attr-defined]
        return guarded  # type: ignore[return-value]

    return decorate


assert set(ROLE_PERMISSIONS) == set(ROLES), "every role needs a row in ROLE_PERMISSIONS"
