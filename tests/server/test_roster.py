"""Crew status and the roster the dispatcher ranks crews from: the pure status rule, shift
boundaries, skills, positions from fixes or depots, and the migration that holds them."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from fieldline.gis.errors import InvalidField
from fieldline.schema import metadata
from fieldline.server.crews.models import Crew
from fieldline.server.crews.services import (
    CREW_STATUSES,
    CrewState,
    add_shift,
    create_crew,
    crew_status,
    roster,
)
from fieldline.settings import SettingsError, load_settings

NOW = datetime(2026, 11, 23, 10, 0, tzinfo=UTC)
STALE_S = 300.0
SECOND = timedelta(seconds=1)


STATUS_TABLE = [
    (False, timedelta(0), 0, "off_shift"),
    (False, None, 3, "off_shift"),  # off shift wins over everything
    (True, None, 0, "no_signal"),  # never reported
    (True, None, 2, "no_signal"),
    (True, timedelta(seconds=STALE_S), 0, "available"),  # exactly at the limit: still a signal
    (True, timedelta(seconds=STALE_S, microseconds=1), 0, "no_signal"),
    (True, timedelta(seconds=STALE_S + 1), 1, "no_signal"),
    (True, timedelta(seconds=STALE_S - 1), 0, "available"),
    (True, timedelta(seconds=5), 1, "busy"),
    (True, timedelta(seconds=5), 0, "available"),
    (True, -10 * SECOND, 0, "available"),  # a device clock a little ahead
]


def test_the_table_covers_every_status() -> None:
    assert {row[-1] for row in STATUS_TABLE} == set(CREW_STATUSES)


@pytest.mark.parametrize(("on_shift", "fix_age", "tasks", "expected"), STATUS_TABLE)
def test_status_rule(on_shift: bool, fix_age: timedelta | None, tasks: int, expected: str) -> None:
    fix_time = None if fix_age is None else NOW - fix_age
    assert crew_status(NOW, on_shift, fix_time, tasks, STALE_S) == expected


def fix(at: datetime, lon: float = 24.94, lat: float = 60.17) -> dict[str, Any]:
    """A latest fix as the gateway keeps it in Redis."""
    return {"crew_id": "", "device": "handheld", "fix_time": at.isoformat(), "lon": lon, "lat": lat}


def state(session: Session, crew: Crew, now: datetime, **kwargs: Any) -> CrewState:
    latest = kwargs.pop("latest", {crew.public_id: fix(now)})
    tasks = kwargs.pop("active_tasks", {})
    found = roster(session, latest, now, tasks, stale_after_s=STALE_S, **kwargs)
    (mine,) = [s for s in found if s.public_id == crew.public_id]
    return mine


@pytest.mark.parametrize(
    ("now", "expected"),
    [
        (NOW - SECOND, "off_shift"),
        (NOW, "available"),  # the start is included
        (NOW + timedelta(hours=8) - timedelta(microseconds=1), "available"),
        (NOW + timedelta(hours=8), "off_shift"),  # the end is excluded
    ],
)
def test_shift_boundaries(session: Session, now: datetime, expected: str) -> None:
    crew = create_crew(session, "Boundary crew")
    add_shift(session, crew.public_id, NOW, NOW + timedelta(hours=8))
    assert state(session, crew, now).status == expected


def test_back_to_back_shifts_leave_no_gap(session: Session) -> None:
    crew = create_crew(session, "Double shift crew")
    add_shift(session, crew.public_id, NOW - timedelta(hours=4), NOW)
    add_shift(session, crew.public_id, NOW, NOW + timedelta(hours=4))
    for now in (NOW - SECOND, NOW, NOW + SECOND):
        assert state(session, crew, now).status == "available"


def test_active_tasks_make_a_crew_busy(session: Session) -> None:
    crew = create_crew(session, "Busy crew")
    add_shift(session, crew.public_id, NOW - timedelta(hours=1), NOW + timedelta(hours=1))
    assert state(session, crew, NOW, active_tasks={crew.id: 1}).status == "busy"
    assert state(session, crew, NOW, active_tasks={crew.id + 1: 1}).status == "available"


def test_position_is_the_latest_fix_else_the_depot(session: Session) -> None:
    crew = create_crew(session, "Depot crew", depot=(24.93, 60.16))
    nowhere = create_crew(session, "Homeless crew")
    seen = state(session, crew, NOW, latest={crew.public_id: fix(NOW - SECOND, 24.95, 60.18)})
    assert seen.position == (24.95, 60.18) and seen.position_time == NOW - SECOND
    waiting = state(session, crew, NOW, latest={})
    assert waiting.position == (24.93, 60.16) and waiting.position_time is None
    assert waiting.status == "off_shift"  # no shift at all
    lost = state(session, nowhere, NOW, latest={})
    assert lost.position is None and lost.position_time is None


def test_roster_filters_on_every_required_skill(session: Session) -> None:
    both = create_crew(session, "Weld and dig", skills=["excavation", "welding"])
    weld = create_crew(session, "Weld only", skills=["welding"])
    none = create_crew(session, "No skills")
    mine = {both.public_id, weld.public_id, none.public_id}

    def found(skills: list[str] | None) -> set[str]:
        crews = roster(session, {}, NOW, {}, skills, stale_after_s=STALE_S)
        return {c.public_id for c in crews} & mine

    assert found(["welding", "excavation"]) == {both.public_id}
    assert found(["welding"]) == {both.public_id, weld.public_id}
    assert found([]) == found(None) == mine
    with pytest.raises(InvalidField) as caught:
        found(["welding", "juggling"])
    assert caught.value.field == "skills[1]"


def test_crew_state_is_frozen_and_carries_the_database_id(session: Session) -> None:
    crew = create_crew(session, "Frozen crew", "foot", skills=["patrol", "inspection"])
    seen = state(session, crew, NOW)
    assert seen.id == crew.id and seen.mode == "foot"
    assert seen.skills == ("inspection", "patrol")  # the vocabulary's order
    with pytest.raises(dataclasses.FrozenInstanceError):
        seen.status = "busy"  # type: ignore[misc]


def test_stale_limit_is_a_setting() -> None:
    assert load_settings().crew_stale_after_s == 300.0
    assert load_settings(crew_stale_after_s=60).crew_stale_after_s == 60.0
    with pytest.raises(SettingsError, match="FIELDLINE_CREW_STALE_AFTER_S"):
        load_settings(crew_stale_after_s=0)


def test_the_database_refuses_overlapping_shifts_written_past_the_service(
    session: Session,
) -> None:
    crew = create_crew(session, "Race crew")
    insert = sa.text("INSERT INTO crew_shifts (crew_id, starts_at, ends_at) VALUES (:c, :s, :e)")
    session.execute(insert, {"c": crew.id, "s": NOW, "e": NOW + timedelta(hours=8)})
    with pytest.raises(IntegrityError, match="ex_crew_shifts_no_overlap"), session.begin_nested():
        session.execute(
            insert, {"c": crew.id, "s": NOW + timedelta(hours=7), "e": NOW + timedelta(hours=9)}
        )
    with pytest.raises(IntegrityError, match="ends_after_start"), session.begin_nested():
        session.execute(insert, {"c": crew.id, "s": NOW, "e": NOW})
    with pytest.raises(IntegrityError, match="skills_choice"), session.begin_nested():
        session.execute(
            sa.text("UPDATE crews SET skills = '{juggling}' WHERE id = :c"), {"c": crew.id}
        )


def test_migrations_build_the_roster_tables_the_models_describe(
    connection: sa.Connection,
) -> None:
    roster_tables = {"crews", "crew_members", "crew_shifts"}
    context = MigrationContext.configure(connection)
    differences = [
        diff for diff in compare_metadata(context, metadata) if _table_of(diff) in roster_tables
    ]
    assert differences == []


def _table_of(diff: Any) -> str | None:
    # compare_metadata yields ("add_table", Table), ("remove_index", Index), ...,
    # ("add_column", schema, table, Column), or a list of ("modify_...", schema, table, ...).
    if isinstance(diff, list):
        return str(diff[0][2])
    if diff[0] in ("add_column", "remove_column"):
        return str(diff[2])
    item = diff[1]
    table = getattr(item, "table", item)
    return str(getattr(table, "name", None))
