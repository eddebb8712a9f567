"""Dispatch endpoints: candidate crews for a task, assigning it, and batch plans.

- `GET  /api/v1/tasks/{id}/candidates?limit=&include_busy=`
- `POST /api/v1/tasks/{id}/assign` `{"crew": "C-000001"}`
- `POST /api/v1/dispatch/batch` `{"tasks": [...], "crews": [...], "dry_run": true}`
- `GET  /api/v1/tasks/{id}/route?from=LON,LAT&mode=` (the crew's handheld asks too)

After each commit the task events go out on the live stream and to the crews' inboxes.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from flask import Blueprint, Response, json, request

from fieldline.server.assets.payloads import request_json
from fieldline.server.auth import crew_scope, current_principal, requires
from fieldline.server.dispatch import params, payloads, services
from fieldline.server.live.views import live
from fieldline.server.resources import db, resources
from fieldline.server.tasks import events
from fieldline.server.tasks import payloads as task_payloads
from fieldline.server.tasks import services as tasks
from fieldline.server.tasks.inbox import Delivery

blueprint = Blueprint("dispatch", __name__)
JSON = ("application/json",)


def _commit() -> list[Delivery]:
    """Commit, then publish what the transaction recorded."""
    session = db()
    session.commit()
    return tasks.announce(session, events.take(session), live(), resources().inbox())


@blueprint.get("/tasks/<task_id>/candidates")
@requires("dispatch:read")
def candidates(task_id: str) -> Any:
    query = params.parse_candidates_query(request.args)
    now = datetime.now(UTC)
    task, ranking = services.task_candidates(
        db(),
        task_id,
        now,
        latest=live().latest(),
        limit=query.limit,
        include_busy=query.include_busy,
        settings=resources().settings,
    )
    return services.ranking_json(task, ranking, now, query.include_busy)


@blueprint.get("/tasks/<task_id>/route")
@requires("tasks:read")
def route(task_id: str) -> Response:
    """The way to the task's site, as a crew would travel it now."""
    tasks.get_task(db(), task_id, crew=crew_scope())  # a crew member: its own crew's only
    query = params.parse_route_query(request.args)
    # The handheld gives its position: its route does not wait on Redis.
    latest = live().latest() if query.origin is None else {}
    found = services.task_route(
        db(),
        task_id,
        datetime.now(UTC),
        latest=latest,
        origin=query.origin,
        mode=query.mode,
        settings=resources().settings,
    )
    return Response(json.dumps(payloads.route_feature(found)), mimetype="application/geo+json")


@blueprint.post("/tasks/<task_id>/assign")
@requires("dispatch:write")
def assign(task_id: str) -> Any:
    crew_id = params.parse_assign(request_json(JSON))
    assignment = services.assign(
        db(),
        task_id,
        crew_id,
        actor=current_principal().name,
        now=datetime.now(UTC),
        latest=live().latest([crew_id]),
        settings=resources().settings,
    )
    deliveries = _commit()
    return {
        "task": task_payloads.task_json(db(), assignment.task),
        "transition": task_payloads.step_json(db(), assignment.step),
        **services.assignment_json(assignment),
        "inbox": [delivery.json() for delivery in deliveries],
    }


@blueprint.post("/dispatch/batch")
@requires("dispatch:write")
def batch() -> Any:
    wanted = params.parse_batch(request_json(JSON))
    plan = services.plan_batch(
        db(),
        datetime.now(UTC),
        latest=live().latest(),
        task_ids=wanted.tasks,
        crew_ids=wanted.crews,
        settings=resources().settings,
    )
    body = services.plan_json(plan) | {"dry_run": wanted.dry_run}
    if wanted.dry_run:
        return body
    offered = services.apply_batch(db(), plan, actor=current_principal().name)
    deliveries = _commit()
    # After the offers themselves: each crew's order of work.
    inbox = resources().inbox()
    deliveries += [inbox.send(crew, message) for crew, message in services.plan_messages(plan)]
    return body | {"offered": offered, "inbox": [delivery.json() for delivery in deliveries]}
