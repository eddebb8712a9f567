"""Fieldline: a field-service platform for utility crews."""

__version__ = "0.1.0"
