"""Verification runs as JSON: one run with its evidence for the map, and rows of the list."""

from __future__ import annotations

from typing import Any

from fieldline.server.fields import iso
from fieldline.server.tasks.models import Task
from fieldline.server.verification.models import TaskVerification


def override_json(run: TaskVerification) -> dict[str, Any] | None:
    if run.override_result is None:
        return None
    return {
        "result": run.override_result,
        "reason": run.override_reason,
        "by": run.overridden_by,
        "at": iso(run.overridden_at),
    }


def run_row_json(run: TaskVerification, task: Task) -> dict[str, Any]:
    """A run without its figures and layers: a row of the dispatcher's follow-up list."""
    return {
        "task_id": task.public_id,
        "task": {"title": task.title, "kind": task.kind, "state": task.state},
        "run": run.run,
        "status": run.status,
        "result": run.result,
        "effective_result": run.effective_result,
        "reasons": list(run.reasons or ()),
        "due_at": run.due_at.isoformat(),
        "checked_at": iso(run.checked_at),
        "window": {"from": run.window_from.isoformat(), "to": run.window_to.isoformat()},
        "error": run.error,
        "override": override_json(run),
    }


def run_json(run: TaskVerification, task: Task, *, layers: bool = True) -> dict[str, Any]:
    """A run as `GET /api/v1/tasks/{id}/verification` shows it: the result (and the effective
    one after a dispatcher's override), the reasons, the figures, and the GeoJSON layers
    (WGS 84) unless left out."""
    body = run_row_json(run, task) | {"summary": run.summary or {}}
    if layers:
        body["layers"] = run.evidence or {}
    return body
