"""The rules of DESIGN.md that code can check: who imports whom, and every view is guarded."""

from __future__ import annotations

import ast
from pathlib import Path

from flask import Flask

PACKAGE = Path(__file__).resolve().parent.parent / "fieldline"

# part -> parts it must never import
FORBIDDEN = {
    "gis": ("fieldline.server", "fieldline.device_gateway", "fieldline.schema", "flask", "paho"),
    "device_gateway": ("fieldline.server.views", "flask"),
    "server": ("fieldline.device_gateway",),
}
# `home.index` serves the map page to browsers through `map.page`, which checks for itself.
PUBLIC_ENDPOINTS = {
    "static",
    "map.static",
    "crew_app.static",
    "home.index",
    "health.healthz",
    "health.readyz",
    # The way in: the login page and API, and who is signed in (401 when nobody).
    "auth.login_page",
    "auth.login_form",
    "auth.login",
    "auth.logout",
    "auth.me",
    "api_docs.openapi",
}


def imported_modules(path: Path) -> set[str]:
    tree = ast.parse(path.read_text())
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
    return names


def test_parts_import_only_what_design_allows() -> None:
    offences = []
    for part, forbidden in FORBIDDEN.items():
        for path in (PACKAGE / part).rglob("*.py"):
            for module in imported_modules(path):
                if module.startswith(forbidden) or (
                    part == "device_gateway" and ".views" in module
                ):
                    offences.append(f"{path.relative_to(PACKAGE)} imports {module}")
    assert offences == []


def test_every_endpoint_declares_its_permission(app: Flask) -> None:
    unguarded = [
        name
        for name, view in app.view_functions.items()
        if name not in PUBLIC_ENDPOINTS and not hasattr(view, "required_permission")
    ]
    assert unguarded == []
