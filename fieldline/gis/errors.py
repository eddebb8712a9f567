"""Errors of the geographic core, each carrying what a user needs to fix the request."""

from __future__ import annotations


class GisError(Exception):
    """Base class; `detail` is safe to show to a user."""

    def __init__(self, detail: str) -> None:
        super().__init__(detail)
        self.detail = detail


class InvalidField(GisError):
    """A value a user sent is not acceptable; `field` names it (`properties.diameter_mm`)."""

    def __init__(self, field: str, detail: str) -> None:
        super().__init__(detail)
        self.field = field


class NotFound(GisError):
    pass


class Conflict(GisError):
    """The request is valid but clashes with stored data (a duplicate, a referenced asset)."""
