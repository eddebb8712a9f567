"""`/api/v1/tasks/{id}/verification`: the check of a task's work against the crew's trace,
as JSON with GeoJSON layers or as a printable report; a fresh run and the dispatcher's
override. `/api/v1/verifications`: recent runs, the dispatcher's follow-up list. After each
commit the task's changes go out on the live stream and to the crew's inbox."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from flask import Blueprint, Response, json, render_template, request, url_for

from fieldline.server.assets.payloads import request_json
from fieldline.server.auth import crew_scope, current_principal, requires
from fieldline.server.auth.services import record_event
from fieldline.server.fields import known_fields
from fieldline.server.live.views import live
from fieldline.server.resources import db, resources
from fieldline.server.tasks.inbox import Delivery
from fieldline.server.tasks.payloads import history_json, task_json
from fieldline.server.tasks.services import announce, get_task
from fieldline.server.verification import payloads, services
from fieldline.server.verification.params import parse_list_query, parse_run_query
from fieldline.server.verification.progress import task_progress
from fieldline.server.verification.report import svg_map

blueprint = Blueprint("verification", __name__, template_folder="templates")
JSON = ("application/json",)
OVERRIDE_FIELDS = ("result", "reason")


def _commit(checked: services.Checked) -> list[Delivery]:
    """Commit, then publish the task's changes and the run."""
    session = db()
    session.commit()
    deliveries = announce(session, list(checked.events), live(), resources().inbox())
    services.publish(live(), [checked])
    return deliveries


@blueprint.get("/tasks/<task_id>/verification")
@requires("verification:read")
def show(task_id: str) -> Any:
    """The latest run (`run=N` for another), with its layers unless `layers=false`."""
    query = parse_run_query(request.args)
    task = get_task(db(), task_id)
    run = services.get_run(db(), task, query.run)
    return payloads.run_json(run, task, layers=query.layers)


@blueprint.get("/tasks/<task_id>/progress")
@requires("tasks:read")
def progress(task_id: str) -> Response:
    """What the crew's trace shows so far of work in hand (the crew's handheld asks)."""
    task = get_task(db(), task_id, crew=crew_scope())
    body = task_progress(db(), task, datetime.now(UTC), resources().settings)
    return Response(json.dumps(body), mimetype="application/geo+json")


@blueprint.get("/tasks/<task_id>/verification/report")
@requires("verification:read")
def report(task_id: str) -> Response:
    """The run as a page to print for an audit."""
    query = parse_run_query(request.args)
    task = get_task(db(), task_id)
    run = services.get_run(db(), task, query.run)
    history = history_json(db(), task)
    page = render_template(
        "verification/report.html",
        task=task,
        run=run,
        summary=run.summary or {},
        map=svg_map(run.evidence or {}),
        crew=task_json(db(), task)["crew"],
        history=history,
        printed=datetime.now(UTC).isoformat(timespec="seconds"),
    )
    return Response(page, mimetype="text/html")


@blueprint.post("/tasks/<task_id>/verification")
@requires("verification:write")
def rerun(task_id: str) -> Any:
    """Check the completed task again now."""
    task = get_task(db(), task_id)
    run, checked = services.rerun(db(), task, resources().settings, datetime.now(UTC))
    deliveries = _commit(checked)
    body = payloads.run_json(run, task) | {
        "task": task_json(db(), task),
        "inbox": [d.json() for d in deliveries],
    }
    return body, 201, {"Location": url_for(".show", task_id=task.public_id, run=run.run)}


@blueprint.post("/tasks/<task_id>/verification/override")
@requires("verification:write")
def override(task_id: str) -> Any:
    """{result: pass | fail, reason}: the dispatcher's decision over the latest run."""
    fields = known_fields(request_json(JSON), OVERRIDE_FIELDS)
    task = get_task(db(), task_id)
    run, checked = services.override(
        db(),
        task,
        fields.get("result"),
        fields.get("reason"),
        current_principal().name,
        datetime.now(UTC),
    )
    record_event(db(), "override", current_principal().name, task.public_id, fields)
    deliveries = _commit(checked)
    return payloads.run_json(run, task, layers=False) | {
        "task": task_json(db(), task),
        "inbox": [d.json() for d in deliveries],
    }


@blueprint.get("/verifications")
@requires("verification:read")
def index() -> Any:
    """Recent runs, newest first; `result=fail` for the work to follow up."""
    result, limit = parse_list_query(request.args)
    runs = services.list_runs(db(), result, limit)
    return {"verifications": [payloads.run_row_json(run, task) for run, task in runs]}
