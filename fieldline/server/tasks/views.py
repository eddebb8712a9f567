"""`/api/v1/tasks`: work orders, their transitions and history. After each commit the task
events go out on the live stream and to the crews' inboxes."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

from flask import Blueprint, Response, json, request, url_for

from fieldline.server.assets.payloads import request_json
from fieldline.server.auth import crew_scope, current_principal, requires
from fieldline.server.errors import Forbidden
from fieldline.server.live.views import live
from fieldline.server.resources import db, resources
from fieldline.server.tasks import events, payloads, services
from fieldline.server.tasks.inbox import Delivery
from fieldline.server.tasks.params import GEOJSON, parse_task_query, wants_geojson

blueprint = Blueprint("tasks", __name__)
JSON = ("application/json",)
# The transitions a path names (POST /api/v1/tasks/T-000001/cancel).
SHORT_FORMS = ("cancel", "verify", "reject", "transfer")


def _body(*, optional: bool = False) -> Any:
    if optional and not request.get_data():
        return {}
    return request_json(JSON)


def _commit() -> list[Delivery]:
    """Commit, then publish what the transaction recorded."""
    session = db()
    session.commit()
    return services.announce(session, events.take(session), live(), resources().inbox())


def _actor() -> tuple[str, str]:
    """Who moves a task: a crew member acts for the crew (its public id, as on MQTT)."""
    principal = current_principal()
    if principal.role == "crew_member":
        if principal.crew_id is None:
            raise Forbidden("this crew member is not bound to a crew")
        return principal.crew_id, "crew"
    return principal.name, "dispatcher"


@blueprint.post("")
@requires("tasks:write")
def create() -> Any:
    task = services.create_task(db(), _body(), current_principal().name, datetime.now(UTC))
    _commit()
    location = url_for(".show", task_id=task.public_id)
    return payloads.task_json(db(), task), 201, {"Location": location}


@blueprint.get("")
@requires("tasks:read")
def index() -> Any:
    query = parse_task_query(request.args, resources().settings)
    scope = crew_scope()
    if scope is not None:
        # A crew member lists its own crew's tasks (another crew's asked for: none).
        query = replace(query, crew=scope if query.crew in (None, scope) else "")
    tasks = services.list_tasks(db(), query)
    links = [{"rel": "self", "href": request.url}]
    if len(tasks) == query.limit:
        args = request.args.to_dict() | {"cursor": str(tasks[-1].id)}
        links.append({"rel": "next", "href": url_for(".index", _external=True, **args)})
    preferred = request.accept_mimetypes.best_match(["application/json", GEOJSON])
    if wants_geojson(request.args, preferred):
        body = payloads.feature_collection(db(), tasks) | {"links": links}
        return Response(json.dumps(body), mimetype=GEOJSON)
    return {"tasks": payloads.tasks_json(db(), tasks), "links": links}


@blueprint.get("/<task_id>")
@requires("tasks:read")
def show(task_id: str) -> Any:
    return payloads.task_json(db(), services.get_task(db(), task_id, crew=crew_scope()))


@blueprint.patch("/<task_id>")
@requires("tasks:write")
def update(task_id: str) -> Any:
    task = services.update_task(db(), task_id, _body(), datetime.now(UTC))
    deliveries = _commit()
    return payloads.task_json(db(), task) | {"inbox": [d.json() for d in deliveries]}


def _transition(task_id: str, action: str | None) -> Any:
    wanted = services.transition_request(_body(optional=True), datetime.now(UTC), action)
    actor, actor_kind = _actor()
    task = services.get_task(db(), task_id, crew=crew_scope())
    step = services.transition(
        db(),
        task,
        wanted.action,
        actor=actor,
        actor_kind=actor_kind,
        at=wanted.at,
        crew=wanted.crew,
        position=wanted.position,
        note=wanted.note,
    )
    deliveries = _commit()
    return {
        "transition": payloads.step_json(db(), step),
        "task": payloads.task_json(db(), task),
        "inbox": [delivery.json() for delivery in deliveries],
    }


@blueprint.post("/<task_id>/transitions")
@requires("tasks:transition")
def transitions(task_id: str) -> Any:
    return _transition(task_id, None)


@blueprint.post("/<task_id>/<any(cancel, verify, reject, transfer):action>")
@requires("tasks:transition")
def short_form(task_id: str, action: str) -> Any:
    return _transition(task_id, action)


@blueprint.get("/<task_id>/history")
@requires("tasks:read")
def task_history(task_id: str) -> Any:
    task = services.get_task(db(), task_id, crew=crew_scope())
    return {"task_id": task.public_id, "history": payloads.history_json(db(), task)}
