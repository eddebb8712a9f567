"""Signing in and out (`/login`, the page; `/api/v1/auth/{login,logout,me}`), the users
(`/api/v1/users`), API tokens (`/api/v1/tokens`) and the audit log (`/api/v1/audit`).

Signing in is the only way to get a session: the login endpoints and `/me` need no
permission (they are the way in); everything else is guarded by `@requires`.
"""

from __future__ import annotations

import secrets
from datetime import UTC, datetime
from typing import Any

from flask import Blueprint, Response, redirect, render_template, request, session, url_for

from fieldline.gis.validation import BIGINT_MAX
from fieldline.server.assets.payloads import request_json
from fieldline.server.auth import current_principal, policy, requires, services
from fieldline.server.auth.models import User
from fieldline.server.errors import (
    Forbidden,
    NotFoundError,
    Unauthorized,
    Unprocessable,
    problem,
)
from fieldline.server.fields import known_fields
from fieldline.server.resources import db, resources
from fieldline.server.telemetry.params import parse_interval, parse_limit

blueprint = Blueprint("auth", __name__, template_folder="templates")
API = "/api/v1"
JSON = ("application/json",)
REFUSED = "wrong user name or password"
AUDIT_PAGE, AUDIT_MOST = 100, 1000


@blueprint.app_context_processor
def _page_context() -> dict[str, Any]:
    # Pages put the token where their script finds it, for the X-CSRF-Token header.
    return {"csrf_token": session.get(policy.SESSION_CSRF, "")}


def _now() -> datetime:
    return datetime.now(UTC)


def _start_session(user: User) -> str:
    session.clear()
    session.permanent = True
    csrf = secrets.token_urlsafe(32)
    session[policy.SESSION_USER] = user.id
    session[policy.SESSION_CSRF] = csrf
    session[policy.SESSION_PASSWORD] = services.password_fingerprint(user)
    return csrf


def _sign_in(username: Any, password: Any) -> User | Response:
    """The user signed in (session started), or the problem to answer."""
    try:
        user = services.authenticate(
            db(), username, password, _now(), resources().settings, remote_addr=request.remote_addr
        )
    except services.LockedOut as exc:
        db().commit()
        response = problem(
            429,
            "Too Many Requests",
            f"too many failed sign-ins; try again in {exc.retry_after_s // 60 + 1} minutes",
        )
        response.headers["Retry-After"] = str(exc.retry_after_s)
        return response
    except services.LoginRefused:
        db().commit()  # the failure stays in the audit log
        return problem(401, "Unauthorized", REFUSED)
    _start_session(user)
    db().commit()
    return user


def _safe_next(value: str | None) -> str:
    """Only a path on this site: never a redirect elsewhere."""
    if not value or not value.startswith("/") or value.startswith("//") or "\\" in value:
        return url_for("map.page")
    return value


@blueprint.get("/login")
def login_page() -> Any:
    return render_template(
        "auth/login.html",
        action=url_for(".login_form"),
        next=_safe_next(request.args.get("next")),
        username="",
        error=None,
    )


@blueprint.post("/login")
def login_form() -> Any:
    target = _safe_next(request.form.get("next"))
    found = _sign_in(request.form.get("username"), request.form.get("password"))
    if isinstance(found, User):
        return redirect(target, code=303)
    body = render_template(
        "auth/login.html",
        action=url_for(".login_form"),
        next=target,
        username=request.form.get("username", ""),
        error=found.get_json()["detail"],
    )
    return Response(body, status=found.status_code, mimetype="text/html")


@blueprint.post(f"{API}/auth/login")
def login() -> Any:
    """{username, password}: starts the web session; answers who and the CSRF token."""
    fields = known_fields(request_json(JSON), ("username", "password"))
    found = _sign_in(fields.get("username"), fields.get("password"))
    if not isinstance(found, User):
        return found
    crew_id = services.crew_public_id(db(), found)
    return _me_json(policy.Principal(found.username, found.role, crew_id, found.id, "session"))


@blueprint.post(f"{API}/auth/logout")
def logout() -> Any:
    principal = current_principal()  # a session's request must carry its CSRF token
    if principal.via == "session":
        services.record_event(
            db(), "logout", principal.name, principal.name, remote_addr=request.remote_addr
        )
        db().commit()
    session.clear()
    return Response(status=204)


def _me_json(principal: policy.Principal) -> dict[str, Any]:
    return {
        "username": principal.name,
        "role": principal.role,
        "crew_id": principal.crew_id,
        "via": principal.via,
        "csrf_token": session.get(policy.SESSION_CSRF) if principal.via == "session" else None,
    }


@blueprint.get(f"{API}/auth/me")
def me() -> Any:
    principal = current_principal()
    if principal.user_id is None:
        raise Unauthorized("not signed in")
    return _me_json(principal)


# --- users -----------------------------------------------------------------------------------


@blueprint.get(f"{API}/users")
@requires("users:admin")
def users() -> Any:
    return {"users": [services.user_json(db(), user) for user in services.list_users(db())]}


@blueprint.post(f"{API}/users")
@requires("users:admin")
def create_user() -> Any:
    """{username, role, crew_id?, password?}: without a password one is made and answered
    once, as `password`."""
    fields = known_fields(request_json(JSON), services.USER_FIELDS[:-1])
    user, generated = services.create_user(
        db(),
        fields.get("username"),
        fields.get("role"),
        crew_id=fields.get("crew_id"),
        password=fields.get("password"),
        actor=current_principal().name,
        remote_addr=request.remote_addr,
    )
    db().commit()
    body = services.user_json(db(), user)
    if generated:
        body["password"] = generated
    return body, 201, {"Location": url_for(".user", username=user.username)}


@blueprint.get(f"{API}/users/<username>")
@requires("users:admin")
def user(username: str) -> Any:
    return services.user_json(db(), services.get_user(db(), username))


@blueprint.patch(f"{API}/users/<username>")
@requires("users:admin")
def update_user(username: str) -> Any:
    """{role?, crew_id?, disabled?, password?}"""
    user = services.update_user(
        db(),
        username,
        known_fields(request_json(JSON), ("role", "crew_id", "disabled", "password")),
        actor=current_principal().name,
        remote_addr=request.remote_addr,
    )
    db().commit()
    return services.user_json(db(), user)


# --- API tokens ------------------------------------------------------------------------------


def _own_user() -> User | None:
    """The caller's user; None for an anonymous operator (which has no tokens of its own)."""
    principal = current_principal()
    return db().get(User, principal.user_id) if principal.user_id is not None else None


@blueprint.get(f"{API}/tokens")
@requires("tokens:own")
def tokens() -> Any:
    """The caller's tokens; an admin's: everyone's (`?user=` one user's)."""
    if current_principal().may("users:admin"):
        wanted = request.args.get("user")
        rows = services.list_tokens(db(), services.get_user(db(), wanted) if wanted else None)
    else:
        owner = _own_user()
        rows = services.list_tokens(db(), owner) if owner is not None else []
    return {"tokens": [services.token_json(token, name) for token, name in rows]}


@blueprint.post(f"{API}/tokens")
@requires("tokens:own")
def create_token() -> Any:
    """{name, days?, user?}: a token for the caller (an admin: for `user`); its secret is in
    the answer, once."""
    fields = known_fields(request_json(JSON), ("name", "days", "user"))
    principal = current_principal()
    if fields.get("user") is not None:
        if not principal.may("users:admin"):
            raise Forbidden("only an admin makes tokens for another user", field="user")
        owner: User | None = services.get_user(db(), str(fields["user"]))
    else:
        owner = _own_user()
    if owner is None:
        raise Unprocessable("name the user the token acts for", field="user")
    token, secret = services.create_token(
        db(),
        owner,
        fields.get("name"),
        _now(),
        resources().settings,
        days=fields.get("days"),
        actor=principal.name,
        remote_addr=request.remote_addr,
    )
    db().commit()
    return services.token_json(token, owner.username) | {"token": secret}, 201


@blueprint.delete(f"{API}/tokens/<token_id>")
@requires("tokens:own")
def revoke_token(token_id: str) -> Any:
    """Revoke a token: the caller's own, or (an admin) anyone's."""
    principal = current_principal()
    owner = None if principal.may("users:admin") else _own_user()
    if owner is None and not principal.may("users:admin"):
        raise NotFoundError(f"no token {token_id}")
    token = services.get_token(db(), token_id, owner)
    services.revoke_token(
        db(), token, _now(), actor=principal.name, remote_addr=request.remote_addr
    )
    db().commit()
    name = db().get(User, token.user_id)
    return services.token_json(token, name.username if name else "")


# --- the audit log ---------------------------------------------------------------------------


@blueprint.get(f"{API}/audit")
@requires("audit:read")
def audit() -> Any:
    """Newest first; `kind`, `actor`, `since`, `until`, `limit`, `cursor` (the next page)."""
    since, until = parse_interval(request.args)
    cursor = request.args.get("cursor")
    # ASCII digits within bigint: `isdigit` alone lets other scripts' digits through to int().
    if cursor is not None and not (
        cursor.isascii() and cursor.isdigit() and int(cursor) <= BIGINT_MAX
    ):
        raise Unprocessable("must be the cursor of a `next` link", field="cursor")
    query = services.EventQuery(
        kind=request.args.get("kind") or None,
        actor=request.args.get("actor") or None,
        since=since,
        until=until,
        limit=parse_limit(request.args, AUDIT_PAGE, AUDIT_MOST),
        before_id=int(cursor) if cursor else None,
    )
    events = services.list_events(db(), query)
    links = [{"rel": "self", "href": request.url}]
    if len(events) == query.limit:
        args = request.args.to_dict() | {"cursor": str(events[-1].id)}
        links.append({"rel": "next", "href": url_for(".audit", _external=True, **args)})
    return {"events": [services.event_json(event) for event in events], "links": links}
