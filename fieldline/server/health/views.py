"""Liveness and readiness for load balancers and supervisors."""

from __future__ import annotations

import logging
from typing import Any

from flask import Blueprint, jsonify

from fieldline.server.resources import resources

log = logging.getLogger(__name__)
blueprint = Blueprint("health", __name__)


@blueprint.get("/healthz")
def healthz() -> Any:
    return jsonify(status="ok")


@blueprint.get("/readyz")
def readyz() -> Any:
    checks = {}
    found = resources()
    for name, check in (
        ("database", found.check_database),
        ("redis", found.check_redis),
        ("broker", found.check_broker),
    ):
        try:
            check()
            checks[name] = "ok"
        except Exception as exc:  # any failure means "not ready"; say which part and why
            log.warning("readiness: %s failed: %s", name, exc)
            checks[name] = f"unavailable: {type(exc).__name__}"
    ready = all(value == "ok" for value in checks.values())
    return jsonify(status="ready" if ready else "not ready", checks=checks), (200 if ready else 503)
