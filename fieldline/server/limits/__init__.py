"""What the server refuses before any view runs: too many requests (rates.py), text that no
query can hold (characters.py), ids beyond the database's (ids.py)."""

from __future__ import annotations

from flask import Flask

from fieldline.server.limits import characters, ids, rates
from fieldline.settings import Settings


def register(app: Flask, settings: Settings) -> None:
    """Before the blueprints: the converter must be there when their routes are added."""
    app.url_map.converters["int"] = ids.IdConverter
    app.before_request(characters.refuse_nul)
    rates.register(app, settings)
