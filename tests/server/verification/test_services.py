"""The check of completed work against known traces: fixes laid by a walker where the truth is
known (on site for 20 minutes, never closer than 200 m, passing at speed, a street skipped),
through the real database and the task services."""

from __future__ import annotations

import re
from datetime import datetime, timedelta

import pytest
import shapely
import sqlalchemy as sa
from shapely.geometry import LineString, Point
from sqlalchemy.orm import Session

from fieldline.gis.errors import Conflict, InvalidField
from fieldline.gis.trace import LocalProjection
from fieldline.server.crews.models import Crew
from fieldline.server.kpis.services import KpiQuery, kpis
from fieldline.server.notices.models import Notice
from fieldline.server.tasks import events
from fieldline.server.tasks.inbox import messages_for
from fieldline.server.tasks.models import Task, TaskAsset, TaskTransition
from fieldline.server.tasks.services import create_task, transition
from fieldline.server.telemetry.models import Position
from fieldline.server.verification import services
from fieldline.server.verification.models import TaskVerification
from fieldline.settings import Settings, load_settings
from tests.server.verification.conftest import (
    HYDRANT_A,
    HYDRANT_SIDE,
    STREET_A,
    STREET_B,
    T0,
    Walker,
    at_site,
    complete,
    fixture_geometries,
    insert_fixes,
    patrol,
    repair,
)

REPAIR_PIPE = "P-000300"
CHECKED_AT = T0 + timedelta(hours=3)
SITE = Point(0, 0)  # each repair's walker works in metres around its site


def repair_done(
    session: Session, crew: Crew, lay: str = "on_site", **times: timedelta
) -> tuple[Task, datetime]:
    """A repair accepted at T0 and completed 40 minutes later, with the crew's fixes from a
    minute after acceptance: `on_site` drives in (its last fix 150 m off), stays 20 minutes at
    the site and leaves; `away` stays 200 m off; `drive_by` waits 300 m off, drives through the
    site at 10 m/s and waits beyond it. Also when the crew's trace reaches the site."""
    completed = T0 + times.get("completed", timedelta(minutes=40))
    arrived = T0 + times.get("arrived", timedelta(minutes=5))
    task = complete(session, crew, repair(REPAIR_PIPE), T0, completed, arrived)
    start = T0 + times.get("start", timedelta(minutes=1))
    if lay == "on_site":
        walker = at_site(task, start, every_s=5).walk(LineString([(400, 0), (100, 0)]), 10)
        reached = walker.now
        walker.stay(SITE, 20 * 60).walk(LineString([(0, 0), (0, 400)]), 10.0)
    elif lay == "away":
        walker = at_site(task, start, every_s=5).stay(Point(200, 0), 30 * 60)
        reached = completed
    else:
        walker = at_site(task, start, every_s=1).stay(Point(-300, 0), 10 * 60)
        reached = walker.now + timedelta(seconds=30)
        walker.walk(LineString([(-300, 0), (300, 0)]), 10.0).stay(Point(300, 0), 20 * 60)
    insert_fixes(session, crew, walker.fixes)
    return task, reached


def test_a_repair_with_enough_time_on_site_passes_and_sets_the_trace_arrival(
    session: Session, crew: Crew, settings: Settings
) -> None:
    task, reached = repair_done(session, crew)
    run = services.verify(session, task, settings, CHECKED_AT)
    assert (run.status, run.result, run.reasons) == ("done", "pass", [])
    # The first fix within reach is the first of the stay.
    assert task.state == "verified" and task.trace_arrived_at == reached
    site = run.summary["site"]
    assert site["first_at"] == reached.isoformat() and site["passed"]
    assert 20 * 60 - 5 <= site["dwell_s"] <= 20 * 60 + 10
    last = session.scalars(
        sa.select(TaskTransition)
        .where(TaskTransition.task_id == task.id)
        .order_by(TaskTransition.id.desc())
    ).first()
    assert last is not None
    assert (last.action, last.actor, last.actor_kind) == ("verify", "verification", "system")
    spots = run.evidence["dwell"]["features"]
    assert [f["properties"]["seconds"] for f in spots if f["properties"]["kind"] == "site"] == [
        site["dwell_s"]
    ]


def test_a_crew_that_never_came_within_reach_fails(
    session: Session, crew: Crew, settings: Settings
) -> None:
    task, _ = repair_done(session, crew, "away")
    run = services.verify(session, task, settings, CHECKED_AT)
    assert run.result == "fail" and len(run.reasons) == 1
    assert run.reasons[0].startswith("the crew never came within reach of the site (closest")
    assert 185 <= run.summary["site"]["closest_m"] <= 215
    assert task.trace_arrived_at is None and task.state == "assigned"


def test_a_drive_by_is_too_short_a_dwell(session: Session, crew: Crew, settings: Settings) -> None:
    task, passing = repair_done(session, crew, "drive_by")
    run = services.verify(session, task, settings, CHECKED_AT)
    assert run.result == "fail"
    (reason,) = run.reasons
    assert re.fullmatch(r"stayed \d+ s at the site \(needs 15 min\)", reason), reason
    # Within 15 m for about 3 s at 10 m/s; the arrival in the trace is the pass.
    assert run.summary["site"]["dwell_s"] < 10
    assert task.trace_arrived_at is not None
    assert abs((task.trace_arrived_at - passing).total_seconds()) <= 3


def test_a_teleport_is_flagged_as_a_jump_and_fails(
    session: Session, crew: Crew, settings: Settings
) -> None:
    task = complete(session, crew, repair(REPAIR_PIPE), T0, T0 + timedelta(minutes=40))
    # Five minutes 5 km away, then at the site three seconds later, and on from there.
    walker = at_site(task, T0 + timedelta(minutes=1), every_s=3)
    walker.stay(Point(5000, 0), 5 * 60).stay(SITE, 20 * 60)
    insert_fixes(session, crew, walker.fixes)
    run = services.verify(session, task, settings, CHECKED_AT)
    assert run.result == "fail"
    assert run.reasons == ["the trace jumps once (a teleported or spoofed position)"]
    assert run.summary["counts"]["jumps"] == 1
    (jump,) = run.evidence["jumps"]["features"]
    ox, oy = walker.origin
    leap_from, leap_to = (
        Point(*(float(v) for v in walker.projection.to_metres(*p)))
        for p in jump["geometry"]["coordinates"]
    )
    assert leap_from.distance(Point(ox + 5000, oy)) < 15
    assert leap_to.distance(Point(ox, oy)) < 15
    assert jump["properties"]["distance_m"] == pytest.approx(5000, abs=20)


def test_a_patrol_walked_fully_passes(session: Session, crew: Crew, settings: Settings) -> None:
    walked = patrol(session, crew, skip_side=False)
    run = services.verify(session, walked.task, settings, CHECKED_AT)
    assert (run.result, run.reasons) == ("pass", [])
    pipes = {row["asset_id"]: row for row in run.summary["pipes"]}
    assert set(pipes) == set(STREET_A + STREET_B + walked.side_pipes)
    assert all(row["ratio"] >= 0.9 for row in pipes.values())
    assert run.summary["coverage"]["ratio"] >= 0.9
    assert [(c["asset_id"], c["passed"]) for c in run.summary["checkpoints"]] == [
        (HYDRANT_A, True),
        (HYDRANT_SIDE, True),
    ]
    assert walked.task.state == "verified"


def test_a_patrol_skipping_a_street_fails_naming_exactly_its_pipes(
    session: Session, crew: Crew, settings: Settings
) -> None:
    skipped = patrol(session, crew, skip_side=True)
    run = services.verify(session, skipped.task, settings, CHECKED_AT)
    assert run.result == "fail"
    failed = {row["asset_id"] for row in run.summary["pipes"] if not row["passed"]}
    assert failed == set(skipped.side_pipes)
    named = {m for r in run.reasons for m in re.findall(r"^pipe (P-\d+) covered \d+ %", r)}
    assert named == set(skipped.side_pipes)
    assert all(r.endswith("(needs 90 %)") for r in run.reasons if r.startswith("pipe "))
    assert f"checkpoint {HYDRANT_SIDE} not visited" in run.reasons
    assert len(run.reasons) == len(skipped.side_pipes) + 1
    # The map: the skipped pipes are drawn as missed, no other pipe is more than a scrap.
    missed = run.evidence["missed"]["features"]
    short = {f["properties"]["asset_id"] for f in missed if f["properties"]["ratio"] < 0.9}
    assert short == set(skipped.side_pipes)
    drawn = run.evidence["checkpoints"]["features"]
    assert {f["properties"]["asset_id"]: f["properties"]["visited"] for f in drawn} == {
        HYDRANT_A: True,
        HYDRANT_SIDE: False,
    }
    assert skipped.task.state == "assigned"


def test_a_foot_patrol_driven_through_covers_nothing(
    session: Session, crew: Crew, settings: Settings
) -> None:
    driven = patrol(session, crew, skip_side=False, speed_mps=8.0)
    run = services.verify(session, driven.task, settings, CHECKED_AT)
    assert run.result == "fail"
    assert run.summary["thresholds"]["max_speed_mps"] == settings.verification_patrol_speed_foot_mps
    assert run.evidence["too_fast"]["features"]
    # The trace counts only where the crew stood at a hydrant: pipes well away from both are
    # not covered at all.
    pipes, hydrants = fixture_geometries("pipes"), fixture_geometries("hydrants")
    metres = driven.walker.projection.geometry_to_metres
    stood = shapely.union_all([metres(hydrants[h]) for h in (HYDRANT_A, HYDRANT_SIDE)])
    away = [
        row for row in run.summary["pipes"] if metres(pipes[row["asset_id"]]).distance(stood) > 80
    ]
    assert len(away) >= 10 and all(row["covered_m"] == 0 for row in away)


def test_a_meter_reading_needs_every_meter_visited(
    session: Session, crew: Crew, settings: Settings
) -> None:
    meters = fixture_geometries("meters")
    read, skipped = "M-000001", "M-000051"
    body = {"kind": "meter_reading", "priority": "P4", "source": "plan"}
    body["assets"] = [{"layer": "meters", "id": m} for m in (read, skipped)]
    task = complete(session, crew, body, T0, T0 + timedelta(minutes=30))
    projection = LocalProjection(meters[read].x, meters[read].y)
    here = projection.geometry_to_metres(meters[read])
    assert here.distance(projection.geometry_to_metres(meters[skipped])) > 500
    walker = Walker(projection, T0 + timedelta(minutes=5), origin=(here.x, here.y))
    insert_fixes(session, crew, walker.stay(Point(0, 0), 60).fixes)
    run = services.verify(session, task, settings, CHECKED_AT)
    assert run.reasons == [f"meter {skipped} not visited"]
    assert [(m["asset_id"], m["passed"]) for m in run.summary["meters"]] == [
        (read, True),
        (skipped, False),
    ]
    assert run.summary["site"] is None and task.trace_arrived_at is None


def test_no_fixes_is_one_plain_reason(session: Session, crew: Crew, settings: Settings) -> None:
    walked = patrol(session, crew, skip_side=False)
    session.execute(sa.text("DELETE FROM positions WHERE crew_id = :c"), {"c": crew.public_id})
    run = services.verify(session, walked.task, settings, CHECKED_AT)
    assert run.reasons == ["no fixes from the crew between acceptance and completion"]
    assert all(not row["passed"] for row in run.summary["pipes"])


def test_fixes_quarantined_as_jumps_are_judged_again(
    session: Session, crew: Crew, settings: Settings
) -> None:
    task = complete(session, crew, repair(REPAIR_PIPE), T0, T0 + timedelta(minutes=40))
    walker = at_site(task, T0 + timedelta(minutes=1), every_s=5)
    walker.stay(SITE, 20 * 60)
    # The gateway's online filter quarantined the middle 15 minutes as jumps: judged again
    # with the fixes around them, they are the crew's time on site.
    kept, middle = walker.fixes[:30] + walker.fixes[210:], walker.fixes[30:210]
    insert_fixes(session, crew, kept)
    insert_fixes(session, crew, middle, quarantined="jump")
    run = services.verify(session, task, settings, CHECKED_AT)
    assert run.result == "pass", run.reasons
    assert run.summary["site"]["dwell_s"] >= 19 * 60
    assert run.summary["counts"]["quarantined"] == {"jump": 180}


def test_too_many_quarantined_fixes_fail(session: Session, crew: Crew, settings: Settings) -> None:
    task, _ = repair_done(session, crew)
    positions = session.scalar(
        sa.select(sa.func.count()).select_from(Position).where(Position.crew_id == crew.public_id)
    )
    assert positions
    # As many fixes refused for their accuracy, and some sent too often (not held against).
    walker = at_site(task, T0 + timedelta(minutes=2, seconds=1), every_s=1200 / positions)
    walker.stay(SITE, 1200)
    refused = walker.fixes[:positions]
    insert_fixes(session, crew, refused, acc_m=500.0, quarantined="accuracy")
    insert_fixes(session, crew, refused[:40], quarantined="too_frequent")
    run = services.verify(session, task, settings, CHECKED_AT)
    share = len(refused) / (positions + len(refused) + 40)
    assert run.reasons == [f"{int(share * 100)} % of the fixes were quarantined (at most 20 %)"]
    assert run.summary["counts"]["quarantined"] == {"accuracy": positions, "too_frequent": 40}


def test_completion_creates_a_pending_run_that_runs_after_the_grace(
    session: Session, crew: Crew, settings: Settings
) -> None:
    task, _ = repair_done(session, crew)
    run = services.latest_run(session, task)
    assert run is not None and (run.run, run.status, run.result) == (1, "pending", None)
    assert (run.window_from, run.window_to) == (T0, T0 + timedelta(minutes=40))
    assert run.due_at >= run.window_to + timedelta(seconds=settings.verification_grace_s)

    events.take(session)  # the scheduler's session holds no earlier events
    assert services.run_due(session, run.due_at - timedelta(seconds=1), settings) == []
    assert run.status == "pending" and task.state == "completed"
    (checked,) = services.run_due(session, run.due_at, settings)
    assert (checked.task_id, checked.run, checked.result, checked.action) == (
        task.public_id,
        1,
        "pass",
        "verify",
    )
    assert run.status == "done" and run.checked_at == run.due_at and task.state == "verified"
    assert [e.action for e in checked.events] == ["verify"]
    assert services.run_due(session, run.due_at + timedelta(hours=1), settings) == []


def test_a_failed_run_reopens_the_task_to_the_same_crew_with_the_reasons(
    session: Session, crew: Crew, settings: Settings
) -> None:
    told = load_settings(
        database_url=settings.database_url, supervisor_contact="supervisor@example.org"
    )
    task, _ = repair_done(session, crew, "away")
    run = services.latest_run(session, task)
    assert run is not None
    events.take(session)  # the scheduler's session holds no earlier events
    (checked,) = services.run_due(session, run.due_at, told)
    assert (checked.result, checked.action, checked.live_event()["alert"]) == (
        "fail",
        "reject",
        True,
    )
    assert (task.state, task.crew_id, task.reopen_count) == ("assigned", crew.id, 1)
    assert task.offer_expires_at is not None and task.completed_at is None
    (event,) = checked.events
    assert (event.action, event.actor_kind, event.note) == ("reject", "system", run.reasons[0])
    ((to, message),) = messages_for(event, lambda: {"id": task.public_id})
    assert (to, message["kind"], message["reasons"]) == (
        crew.public_id,
        "task.reopened",
        run.reasons[0],
    )
    notice = session.scalar(sa.select(Notice).where(Notice.task_id == task.id))
    assert notice is not None
    assert (notice.kind, notice.occasion, notice.recipient) == (
        "escalation",
        "verification:1",
        "supervisor@example.org",
    )
    assert notice.text.startswith(f"CHECK FAILED {task.public_id} run 1, crew {crew.public_id}")

    # The crew goes back and completes again: a second run over the second acceptance.
    again = T0 + timedelta(hours=4)
    for action, at in (
        ("accept", again),
        ("arrive", again),
        ("complete", again + timedelta(minutes=30)),
    ):
        transition(session, task, action, actor=crew.public_id, actor_kind="crew", at=at)
    second = services.latest_run(session, task)
    assert second is not None and (second.run, second.window_from) == (2, again)


def test_a_task_no_longer_completed_is_left_alone(
    session: Session, crew: Crew, settings: Settings
) -> None:
    task, _ = repair_done(session, crew, "away")
    transition(
        session, task, "verify", actor="sam", actor_kind="dispatcher", at=T0 + timedelta(hours=1)
    )
    run = services.latest_run(session, task)
    assert run is not None
    events.take(session)  # the scheduler's session holds no earlier events
    (checked,) = services.run_due(session, run.due_at, settings)
    assert (checked.status, checked.result, checked.action) == ("done", "fail", None)
    assert task.state == "verified" and checked.events == ()


def test_a_run_that_raises_is_marked_error_and_the_others_go_on(
    session: Session, crew: Crew, settings: Settings
) -> None:
    broken, _ = repair_done(session, crew)
    fine, _ = repair_done(session, crew)
    # An asset row of a layer that does not exist: the check cannot load the work.
    session.add(
        TaskAsset(task_id=broken.id, role="target", layer="nowhere", asset_id="X-1", ordinal=9)
    )
    session.flush()
    due = max(r.due_at for r in session.scalars(sa.select(TaskVerification)))
    events.take(session)  # the scheduler's session holds no earlier events
    checked = {c.task_id: c for c in services.run_due(session, due, settings)}
    assert checked[broken.public_id].status == "error"
    assert "nowhere" in (checked[broken.public_id].error or "")
    assert broken.state == "completed" and checked[broken.public_id].events == ()
    assert (checked[fine.public_id].status, fine.state) == ("done", "verified")


def test_override_pass_approves_what_the_check_sent_back(
    session: Session, crew: Crew, settings: Settings
) -> None:
    task, _ = repair_done(session, crew, "away")
    run = services.verify(session, task, settings, CHECKED_AT)
    assert task.state == "assigned"
    transition(session, task, "accept", actor=crew.public_id, actor_kind="crew", at=CHECKED_AT)
    with pytest.raises(InvalidField) as missing:
        services.override(session, task, "pass", "", "sam", CHECKED_AT)
    assert missing.value.field == "reason"

    later = CHECKED_AT + timedelta(minutes=5)
    found, checked = services.override(
        session, task, "pass", "crew was there, GPS down", "sam", later
    )
    assert found.id == run.id and checked.action == "approve"
    assert (run.result, run.override_result, run.effective_result) == ("fail", "pass", "pass")
    assert (run.override_reason, run.overridden_by, run.overridden_at) == (
        "crew was there, GPS down",
        "sam",
        later,
    )
    assert task.state == "verified" and task.completed_at == T0 + timedelta(minutes=40)
    assert task.offer_expires_at is None

    # A pass can be failed after all: back to the crew with the reason.
    services.override(session, task, "fail", "the customer still has no water", "kim", later)
    assert (task.state, task.reopen_count, run.override_result) == ("assigned", 2, "fail")
    with pytest.raises(Conflict):  # sent back by a dispatcher, not by the check
        services.override(session, task, "pass", "after all", "kim", later)


def test_nothing_to_override(session: Session, crew: Crew) -> None:
    task = create_task(session, repair(REPAIR_PIPE), "dispatcher", T0)
    with pytest.raises(Conflict, match="no verification"):
        services.override(session, task, "pass", "fine", "sam", T0)


def test_on_time_arrival_counts_the_trace_arrival(
    session: Session, crew: Crew, settings: Settings
) -> None:
    # Promised within 120 min of creation (P2); the crew reported on site after 155 min, the
    # trace shows it there after 66 min.
    task, _ = repair_done(
        session,
        crew,
        start=timedelta(minutes=60),
        arrived=timedelta(minutes=150),
        completed=timedelta(minutes=180),
    )
    query = KpiQuery(T0 - timedelta(minutes=10), T0, None, None, settings.timezone)
    (before,) = kpis(session, query, CHECKED_AT)
    assert (before["on_time_arrivals"], before["arrivals_measured"]) == (0, 1)
    services.verify(session, task, settings, CHECKED_AT)
    assert task.trace_arrived_at is not None
    (after,) = kpis(session, query, CHECKED_AT)
    assert (after["on_time_arrivals"], after["arrivals_measured"]) == (1, 1)
    response = (task.trace_arrived_at - task.created_at).total_seconds() / 60
    assert after["median_response_min"] == pytest.approx(response)
    assert 60 < response < 70
