"""Every route of the app, for every role (through an API token of a user with that role)
and for nobody: refused (401 nobody, 403 a role) exactly when ROLE_PERMISSIONS says so.

The routes come from the app's URL map, so a new endpoint is checked as soon as it exists;
one without a `required_permission` (set by `@requires`) must be in PUBLIC below. Requests
carry no body and made-up ids, and run inside the test's rolled-back transaction.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from werkzeug.routing import AnyConverter, IntegerConverter, Rule

from fieldline.roles import ROLES
from fieldline.server.auth.models import User
from fieldline.server.auth.policy import ROLE_PERMISSIONS
from fieldline.server.crews.models import Crew
from tests.server.auth.conftest import MakeUser, bearer

# The way in, health checks and static files; nothing else answers without a permission.
PUBLIC = {
    "static",
    "map.static",
    "crew_app.static",
    "home.index",  # serves the map page through map.page, which checks for itself
    "health.healthz",
    "health.readyz",
    "auth.login_page",
    "auth.login_form",
    "auth.login",
    "auth.logout",
    "auth.me",
    "api_docs.openapi",  # the API's description
}
# HTML pages send a browser that is not signed in to the login page.
PAGES = {"map.page", "crew_app.page"}
NOBODY = "nobody"


def placeholder(rule: Rule, name: str) -> Any:
    converter = rule._converters[name]
    if isinstance(converter, IntegerConverter):
        return 0
    if isinstance(converter, AnyConverter):
        return sorted(converter.items)[0]
    return "zz-none"


def routes(app: Flask) -> Iterator[tuple[Rule, str, str]]:
    for rule in app.url_map.iter_rules():
        values = {name: placeholder(rule, name) for name in rule.arguments}
        _, path = rule.build(values) or ("", "")
        for method in sorted((rule.methods or set()) - {"HEAD", "OPTIONS"}):
            yield rule, method, path


def test_every_route_declares_a_permission_or_is_public(app: Flask) -> None:
    unguarded = sorted(
        {
            rule.endpoint
            for rule in app.url_map.iter_rules()
            if not hasattr(app.view_functions[rule.endpoint], "required_permission")
        }
        - PUBLIC
    )
    assert unguarded == []


@pytest.fixture
def headers_for(
    make_user: MakeUser, token_for: Callable[[User], str], crew: Crew
) -> Callable[[str], dict[str, str]]:
    def make(role: str) -> dict[str, str]:
        if role == NOBODY:
            return {}
        user = make_user(f"matrix-{role}", role, crew if role == "crew_member" else None)
        return bearer(token_for(user))

    return make


@pytest.mark.parametrize("who", [*ROLES, NOBODY])
def test_refused_exactly_when_the_role_table_says(
    app: Flask, client: FlaskClient, headers_for: Callable[[str], dict[str, str]], who: str
) -> None:
    headers = headers_for(who) | {"Accept": "application/json"}
    wrong = []
    checked = 0
    for rule, method, path in routes(app):
        permission = getattr(app.view_functions[rule.endpoint], "required_permission", None)
        if permission is None:
            continue
        # Streams (the live events) are not read: the status line is enough.
        response = client.open(path, method=method, headers=headers, buffered=False)
        status = response.status_code
        location = response.headers.get("Location", "")
        response.close()
        checked += 1
        if who == NOBODY:
            if rule.endpoint in PAGES:
                ok = status == 302 and location.startswith("/login?next=")
            else:
                ok = status == 401 and response.headers.get("WWW-Authenticate") == "Bearer"
        elif permission in ROLE_PERMISSIONS[who]:
            ok = status not in (401, 403)
        else:
            ok = status == 403
        if not ok:
            wrong.append(f"{method} {path} ({permission}): {status}")
    assert checked > 80
    assert wrong == []
