"""Who may do what: one permission table, one principal resolver, one decorator."""

from fieldline.server.auth.policy import Principal, current_principal, requires

__all__ = ["Principal", "current_principal", "requires"]
