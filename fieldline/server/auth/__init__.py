"""Who may do what: one permission table, one principal resolver, one decorator."""

from fieldline.server.auth.policy import (
    Principal,
    check_crew,
    crew_scope,
    current_principal,
    requires,
)

__all__ = ["Principal", "check_crew", "crew_scope", "current_principal", "requires"]
