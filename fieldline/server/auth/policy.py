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

ROLE_PERMISSIONS: dict[str, frozenset[str]] = {
    "admin": frozenset({"assets:read", "assets:write", "assets:history"})
    | OPERATOR_READS
    | ROSTER_WRITES
    | PROVISIONING,
    "supervisor": frozenset({"assets:read", "assets:write", "assets:history"})
    | OPERATOR_READS
    | ROSTER_WRITES
    | PROVISIONING,
    "dispatcher": frozenset({"assets:read", "assets:history"}) | OPERATOR_READS | ROSTER_WRITES,
    "crew_member": frozenset({"assets:read"}),
    "viewer": frozenset({"assets:read"}) | FIELD_READS,
    "integration": frozenset({"assets:read", "crews:read", "telemetry:read"}),
}

F = TypeVar("F", bound=Callable[..., Any])


@dataclass(frozen=True)
class Principal:
    name: str
    role: str

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
