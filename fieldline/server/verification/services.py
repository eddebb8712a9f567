"""Proof of work: a completed task checked against the crew's GPS trace.

When a task is completed (`on_task_event`), a pending run is written, due after
FIELDLINE_VERIFICATION_GRACE_S so that late fixes and offline backlogs are stored first. Its
window runs from the crew's acceptance to its completion. The scheduler (`run_due`) then loads
the crew's fixes in the window, from all its devices, cleans them into a trace (gis/trace.py)
and judges the work by its kind (gis/coverage.py):

- repair, inspection, valve operation: the crew reached the site (arrival: the first fix within
  reach, which also becomes `tasks.trace_arrived_at` for the KPIs) and stayed there the kind's
  least time (FIELDLINE_VERIFICATION_MIN_DWELL_S);
- meter reading: every meter visited for the least time;
- patrol: every pipe covered to FIELDLINE_VERIFICATION_MIN_COVERAGE at no more than the mode's
  speed, every checkpoint visited for the least time.

Any kind also fails on jumps (a teleported or spoofed position) and on too many fixes the
gateway quarantined. A pass verifies the task; a fail sends it back to the same crew with the
reasons (the crew's inbox gets them with `task.reopened`) and alerts the dispatchers: a live
event and an escalation notice to FIELDLINE_SUPERVISOR_CONTACT. A run that comes due when its
task is no longer completed (cancelled, decided by a dispatcher, completed again since) records
what it found and leaves the task alone. A dispatcher may override the latest run (`override`)
or ask for a fresh one (`rerun`).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, cast

import redis
import sqlalchemy as sa
from sqlalchemy.orm import Session

from fieldline.gis.errors import Conflict, NotFound
from fieldline.server.crews.models import Crew
from fieldline.server.fields import choice, text
from fieldline.server.live.services import Live
from fieldline.server.notices import texts
from fieldline.server.notices.services import Draft, write_notices
from fieldline.server.tasks import events
from fieldline.server.tasks.events import TaskEvent
from fieldline.server.tasks.models import Task, TaskTransition
from fieldline.server.tasks.services import transition
from fieldline.server.tasks.states import TRANSITIONS
from fieldline.server.verification.checks import evaluate
from fieldline.server.verification.models import RESULTS, TaskVerification
from fieldline.settings import Settings, get_settings

log = logging.getLogger(__name__)

ACTOR = "verification"  # the actor of the steps a run takes
CREW_PROGRESS = ("accept", "start", "arrive")
RUN_BATCH = 100
MAX_NOTE = 2000
MAX_REASON = 2000


# -- scheduling ----------------------------------------------------------------------------


def latest_run(session: Session, task: Task) -> TaskVerification | None:
    return session.scalar(
        sa.select(TaskVerification)
        .where(TaskVerification.task_id == task.id)
        .order_by(TaskVerification.run.desc())
        .limit(1)
    )


def get_run(session: Session, task: Task, number: int | None = None) -> TaskVerification:
    """The task's run `number`, or its latest; NotFound when there is none."""
    if number is None:
        found = latest_run(session, task)
    else:
        found = session.scalar(
            sa.select(TaskVerification).where(
                TaskVerification.task_id == task.id, TaskVerification.run == number
            )
        )
    if found is None:
        which = "no verification" if number is None else f"no verification run {number}"
        raise NotFound(f"{task.public_id} has {which}")
    return found


def window_start(session: Session, task: Task, completed_at: datetime) -> datetime:
    """The crew's latest acceptance at or before the completion; else the latest offer to it
    (an accept the crew never reported); else the task's creation."""
    for actions in (("accept",), ("assign", "transfer")):
        found = session.scalar(
            sa.select(sa.func.max(TaskTransition.at)).where(
                TaskTransition.task_id == task.id,
                TaskTransition.action.in_(actions),
                TaskTransition.crew_id == task.crew_id,
                TaskTransition.at <= completed_at,
            )
        )
        if found is not None:
            return found
    return min(task.created_at, completed_at)


def schedule(
    session: Session, task: Task, completed_at: datetime, due_at: datetime
) -> TaskVerification:
    """A new pending run of the task, numbered after the last, over acceptance to completion."""
    last = session.scalar(
        sa.select(sa.func.max(TaskVerification.run)).where(TaskVerification.task_id == task.id)
    )
    run = TaskVerification(
        task_id=task.id,
        run=(last or 0) + 1,
        status="pending",
        due_at=due_at,
        window_from=window_start(session, task, completed_at),
        window_to=completed_at,
    )
    session.add(run)
    session.flush()
    return run


@events.listen
def on_task_event(session: Session, event: TaskEvent) -> None:
    """A completion gets a run, due once late fixes had time to arrive (the completion may be
    reported late itself: the grace counts from whichever is later)."""
    if event.action != "complete":
        return
    task = session.scalar(sa.select(Task).where(Task.public_id == event.task_id))
    if task is None:
        return
    grace = timedelta(seconds=get_settings().verification_grace_s)
    schedule(session, task, event.at, max(event.at, datetime.now(UTC)) + grace)


# -- acting on a run -------------------------------------------------------------------------


@dataclass(frozen=True)
class Checked:
    """A run just finished or overridden, for the live stream after the commit."""

    task_id: str
    crew_id: str | None
    run: int
    status: str
    result: str | None
    effective_result: str | None
    action: str | None  # what it did to the task: verify, reject, approve; None: left alone
    reasons: tuple[str, ...]
    error: str | None = None
    events: tuple[TaskEvent, ...] = ()

    def live_event(self) -> dict[str, Any]:
        return {
            "type": "verification",
            "task_id": self.task_id,
            "crew_id": self.crew_id,
            "run": self.run,
            "status": self.status,
            "result": self.result,
            "effective_result": self.effective_result,
            "action": self.action,
            "reasons": list(self.reasons),
            "error": self.error,
            # The dispatchers' cue: work sent back, or a check that could not be made.
            "alert": self.action == "reject" or self.status == "error",
        }


def _checked(session: Session, task: Task, run: TaskVerification, action: str | None) -> Checked:
    crew = None if task.crew_id is None else session.get(Crew, task.crew_id)
    return Checked(
        task.public_id,
        None if crew is None else crew.public_id,
        run.run,
        run.status,
        run.result,
        run.effective_result,
        action,
        tuple(run.reasons or ()),
        run.error,
        tuple(events.take(session)),
    )


def publish(live: Live, checked: Iterable[Checked]) -> None:
    """Each run on the live stream (type `verification`); a Redis failure is logged."""
    for item in checked:
        try:
            live.publish(item.live_event())
        except redis.RedisError as exc:
            log.warning("verification of %s not published live: %s", item.task_id, exc)


def _step_time(session: Session, task: Task, now: datetime) -> datetime:
    """Now, or the task's last step when a crew's clock put it later: a step taken here may
    not come before the one it follows."""
    last = session.scalar(
        sa.select(sa.func.max(TaskTransition.at)).where(TaskTransition.task_id == task.id)
    )
    return now if last is None else max(now, last)


def rejection_note(reasons: Sequence[str]) -> str:
    note = "; ".join(reasons) or "the check of the crew's trace failed"
    return note if len(note) <= MAX_NOTE else note[: MAX_NOTE - 3].rstrip() + "..."


def _escalate(session: Session, task: Task, run: TaskVerification, settings: Settings) -> None:
    contact = settings.supervisor_contact or None
    if contact is None:
        return
    crew = None if task.crew_id is None else session.get(Crew, task.crew_id)
    text_ = texts.verification_failed(
        task.public_id, run.run, None if crew is None else crew.public_id, list(run.reasons)
    )
    write_notices(
        session, [Draft(task.id, "escalation", f"verification:{run.run}", contact, text_)], settings
    )


def _check(
    session: Session, task: Task, run: TaskVerification, settings: Settings, now: datetime
) -> str | None:
    """Judge the run, store what it found, and verify or send back the task when it still
    waits for this run; the action taken, if any."""
    found = evaluate(session, task, run, settings)
    run.status, run.result, run.reasons = "done", found.result, found.reasons
    run.summary, run.evidence = found.summary, found.evidence
    run.checked_at, run.error = now, None
    if found.arrived_at is not None:
        # The first arrival counts for the promise, as with the crew's own report.
        earlier = task.trace_arrived_at
        task.trace_arrived_at = min(earlier, found.arrived_at) if earlier else found.arrived_at
    session.flush()
    latest = latest_run(session, task)
    if task.state != "completed" or latest is None or latest.id != run.id:
        return None
    at = _step_time(session, task, now)
    if found.result == "pass":
        action, note = "verify", f"the crew's trace passed the check (run {run.run})"
    else:
        action, note = "reject", rejection_note(found.reasons)
    transition(
        session,
        task,
        action,
        actor=ACTOR,
        actor_kind="system",
        at=at,
        note=note,
        settings=settings,
    )
    if action == "verify":
        return action
    _escalate(session, task, run, settings)
    return "reject"


def verify(
    session: Session,
    task: Task,
    settings: Settings,
    now: datetime,
    run: TaskVerification | None = None,
) -> TaskVerification:
    """Check the task's latest run (or `run`) now and act on it (see the module's docstring)."""
    run = run or get_run(session, task)
    _check(session, task, run, settings, now)
    return run


def run_due(
    session: Session, now: datetime, settings: Settings, limit: int = RUN_BATCH
) -> list[Checked]:
    """Check the pending runs due at `now`, each in a savepoint of its own: one that raises is
    marked `error` with the message, and the others go on. The caller commits, then announces
    the task events of each Checked and publishes them; the session must hold no other task
    events."""
    due = list(
        session.scalars(
            sa.select(TaskVerification)
            .where(TaskVerification.status == "pending", TaskVerification.due_at <= now)
            .order_by(TaskVerification.due_at, TaskVerification.id)
            .limit(limit)
            .with_for_update(skip_locked=True)
        )
    )
    done = []
    for run in due:
        task = session.get(Task, run.task_id)
        assert task is not None  # runs go with their task (ON DELETE CASCADE)
        try:
            with session.begin_nested():
                action = _check(session, task, run, settings, now)
        except Exception as exc:
            events.take(session)  # undone with the savepoint
            log.exception("verification run %d of %s failed", run.run, task.public_id)
            run.status, run.checked_at = "error", now
            run.error = f"{type(exc).__name__}: {exc}"[:MAX_REASON]
            session.flush()
            done.append(_checked(session, task, run, None))
            continue
        done.append(_checked(session, task, run, action))
    if done:
        log.info(
            "verification: %s",
            ", ".join(f"{c.task_id} run {c.run} {c.result or c.status}" for c in done),
        )
    return done


# -- the dispatcher's part -------------------------------------------------------------------


def _reopened_by(session: Session, task: Task, run: TaskVerification) -> bool:
    """The failed run sent the task back and the crew has only moved towards the work since
    (not completed it again, nor was it transferred)."""
    if run.status != "done" or run.result != "fail":
        return False
    reject = session.scalar(
        sa.select(TaskTransition)
        .where(TaskTransition.task_id == task.id, TaskTransition.action == "reject")
        .order_by(TaskTransition.id.desc())
        .limit(1)
    )
    if reject is None or reject.actor != ACTOR or reject.at < run.window_to:
        return False
    since = session.scalars(
        sa.select(TaskTransition.action).where(
            TaskTransition.task_id == task.id, TaskTransition.id > reject.id
        )
    )
    return all(action in CREW_PROGRESS for action in since)


def override(
    session: Session, task: Task, result: Any, reason: Any, by: str, now: datetime
) -> tuple[TaskVerification, Checked]:
    """A dispatcher's decision over the latest run, recorded on it with the reason: pass on a
    completed task verifies it, pass on a task the failed run sent back approves it; fail on
    a completed or verified task sends it back to the crew with the reason. Conflict when
    there is nothing to override."""
    result = choice(result, "result", RESULTS)
    reason = text(reason, "reason", MAX_REASON)
    run = latest_run(session, task)
    if run is None:
        raise Conflict(f"{task.public_id} has no verification to override")
    if result == "pass":
        if task.state == "completed":
            action = "verify"
        elif task.state in TRANSITIONS["approve"].sources and _reopened_by(session, task, run):
            action = "approve"
        else:
            raise Conflict(
                f"{task.public_id} is {task.state} and was not sent back by its latest "
                "verification: nothing to pass"
            )
    elif task.state in ("completed", "verified"):
        action = "reject"
    else:
        raise Conflict(f"{task.public_id} is {task.state}: only done work can fail")
    at = _step_time(session, task, now)
    transition(session, task, action, actor=by, actor_kind="dispatcher", at=at, note=reason)
    run.override_result, run.override_reason = result, reason
    run.overridden_by, run.overridden_at = by, now
    session.flush()
    return run, _checked(session, task, run, action)


def rerun(
    session: Session, task: Task, settings: Settings, now: datetime
) -> tuple[TaskVerification, Checked]:
    """A fresh run of a completed task, checked now (new fixes may have arrived, or the
    settings changed)."""
    if task.state != "completed" or task.completed_at is None:
        raise Conflict(f"{task.public_id} is {task.state}: only completed work is checked")
    run = schedule(session, task, task.completed_at, now)
    action = _check(session, task, run, settings, now)
    return run, _checked(session, task, run, action)


def list_runs(
    session: Session, result: str | None, limit: int
) -> list[tuple[TaskVerification, Task]]:
    """Runs newest first; with `result`, those whose effective result (after any override)
    it is."""
    statement = sa.select(TaskVerification, Task).join(Task, Task.id == TaskVerification.task_id)
    if result is not None:
        effective = sa.func.coalesce(TaskVerification.override_result, TaskVerification.result)
        statement = statement.where(effective == result)
    ordered = statement.order_by(
        sa.func.coalesce(TaskVerification.checked_at, TaskVerification.due_at).desc(),
        TaskVerification.id.desc(),
    ).limit(limit)
    rows = cast(Iterable[tuple[TaskVerification, Task]], session.execute(ordered))
    return [(run, task) for run, task in rows]
