"""KPIs of hand-made tasks against the same figures computed here in Python."""

from __future__ import annotations

import random
import statistics
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from flask.testing import FlaskClient
from sqlalchemy.orm import Session

from fieldline.server.kpis.services import KpiQuery, kpis
from tests.server.service_levels.factories import make_crew, make_task

ZONE = ZoneInfo("Europe/Helsinki")  # the default FIELDLINE_TIMEZONE
START = datetime(2031, 6, 1, tzinfo=ZONE)
END = datetime(2031, 6, 15, tzinfo=ZONE)
NOW = END - timedelta(hours=6)  # some promises are still ahead
STATES = ("created", "assigned", "en_route", "on_site", "completed", "verified", "cancelled")


@dataclass
class Made:
    crew: str | None
    district: str | None
    kind: str
    priority: str
    state: str
    created_at: datetime
    promised_arrival_at: datetime | None
    promised_completion_at: datetime | None
    arrived_at: datetime | None
    completed_at: datetime | None
    transfer_count: int
    reopen_count: int


def make_tasks(session: Session, seed: int, count: int) -> list[Made]:
    rng = random.Random(seed)
    crews = [make_crew(session) for _ in range(3)]
    made = []
    span = (END - START).total_seconds() + 2 * 86400
    for _ in range(count):
        created = START - timedelta(days=1) + timedelta(seconds=rng.uniform(0, span))
        state = rng.choice(STATES)
        crew = None if state == "created" or rng.random() < 0.1 else rng.choice(crews)
        if state != "cancelled" and state != "created" and crew is None:
            crew = crews[0]
        promise = (
            created + timedelta(minutes=rng.choice((15, 45, 90))) if rng.random() < 0.8 else None
        )
        finish = created + timedelta(hours=rng.choice((2, 6))) if rng.random() < 0.7 else None
        arrived = completed = None
        if state in ("on_site", "completed", "verified") or (
            state == "cancelled" and rng.random() < 0.3
        ):
            arrived = created + timedelta(minutes=rng.uniform(3, 120))
        if state in ("completed", "verified"):
            completed = arrived + timedelta(minutes=rng.uniform(10, 400))  # type: ignore[operator]
        fields: dict[str, Any] = {
            "district": rng.choice(("north", "south", None)),
            "kind": rng.choice(("repair", "inspection")),
            "priority": rng.choice(("P1", "P2", "P3")),
            "promised_arrival_at": promise,
            "promised_completion_at": finish,
            "arrived_at": arrived,
            "completed_at": completed,
            "transfer_count": rng.choice((0, 0, 1, 2)),
            "reopen_count": rng.choice((0, 0, 0, 1)),
        }
        task = make_task(session, created, crew=crew, state=state, **fields)
        made.append(
            Made(
                crew=crew.public_id if crew else None,
                state=state,
                created_at=created,
                **{k: fields[k] for k in Made.__dataclass_fields__ if k in fields},
            )
        )
        assert task.state == state
    return made


def _on_time(tasks: list[Made], promise: str, end: str, now: datetime) -> tuple[int, int]:
    on_time = measured = 0
    for t in tasks:
        due, reached = getattr(t, promise), getattr(t, end)
        if due is None:
            continue
        if reached is not None:
            measured += 1
            on_time += reached <= due
        elif t.state != "cancelled" and due < now:
            measured += 1  # overdue
    return on_time, measured


def expected_row(tasks: list[Made], now: datetime) -> dict[str, Any]:
    cancelled = sum(t.state == "cancelled" for t in tasks)
    done = sum(t.state in ("completed", "verified") for t in tasks)
    arrivals = _on_time(tasks, "promised_arrival_at", "arrived_at", now)
    completions = _on_time(tasks, "promised_completion_at", "completed_at", now)
    responses = [(t.arrived_at - t.created_at).total_seconds() / 60 for t in tasks if t.arrived_at]
    return {
        "task_count": len(tasks),
        "cancelled_count": cancelled,
        "completed_count": done,
        "completion_rate": done / (len(tasks) - cancelled) if len(tasks) > cancelled else None,
        "on_time_arrivals": arrivals[0],
        "arrivals_measured": arrivals[1],
        "on_time_arrival_rate": arrivals[0] / arrivals[1] if arrivals[1] else None,
        "on_time_completions": completions[0],
        "completions_measured": completions[1],
        "on_time_completion_rate": completions[0] / completions[1] if completions[1] else None,
        "median_response_min": statistics.median(responses) if responses else None,
        "transfer_count": sum(t.transfer_count for t in tasks),
        "reopen_count": sum(t.reopen_count for t in tasks),
    }


def local_period(at: datetime, period: str) -> date:
    day = at.astimezone(ZONE).date()
    if period == "week":
        return day - timedelta(days=day.weekday())
    if period == "month":
        return day.replace(day=1)
    return day


def expected_rows(
    made: list[Made], group: Callable[[Made], Any] | None, period: str | None, now: datetime = NOW
) -> dict[tuple[Any, ...], dict[str, Any]]:
    buckets: dict[tuple[Any, ...], list[Made]] = defaultdict(list)
    for t in made:
        if START <= t.created_at < END:
            key = ((group(t),) if group else ()) + (
                (local_period(t.created_at, period).isoformat(),) if period else ()
            )
            buckets[key].append(t)
    return {key: expected_row(tasks, now) for key, tasks in buckets.items()}


def assert_rows(
    found: list[dict[str, Any]],
    expected: dict[tuple[Any, ...], dict[str, Any]],
    keys: tuple[str, ...],
) -> None:
    by_key = {tuple(row[k] for k in keys): row for row in found}
    assert set(by_key) == set(expected)
    for key, want in expected.items():
        got = by_key[key]
        for name, value in want.items():
            if isinstance(value, float):
                assert got[name] == pytest.approx(value, rel=1e-9), (key, name)
            else:
                assert got[name] == value, (key, name)


@pytest.mark.parametrize(
    ("group_by", "period", "group"),
    [
        (None, None, None),
        ("crew", "day", lambda t: t.crew),
        ("district", None, lambda t: t.district),
        ("kind", "week", lambda t: t.kind),
        ("priority", "month", lambda t: t.priority),
        (None, "day", None),
    ],
)
def test_kpis_match_an_independent_computation(
    session: Session, group_by: str | None, period: str | None, group: Any
) -> None:
    made = make_tasks(session, seed=7, count=120)
    query = KpiQuery(START, END, group_by, period, "Europe/Helsinki")
    found = kpis(session, query, NOW)
    keys = tuple(k for k, on in (("group", group_by), ("period", period)) if on)
    expected = expected_rows(made, group, period)
    assert sum(row["task_count"] for row in found) == sum(START <= t.created_at < END for t in made)
    assert_rows(found, expected, keys)


def test_a_day_is_the_utilitys_day(session: Session) -> None:
    # 22:30 UTC on 2 June is 01:30 on 3 June in Helsinki (UTC+3 in summer).
    make_task(session, datetime(2031, 6, 2, 22, 30, tzinfo=UTC))
    found = kpis(session, KpiQuery(START, END, None, "day", "Europe/Helsinki"), NOW)
    assert [(row["period"], row["task_count"]) for row in found] == [("2031-06-03", 1)]
    in_utc = kpis(session, KpiQuery(START, END, None, "day", "UTC"), NOW)
    assert [row["period"] for row in in_utc] == ["2031-06-02"]


def test_the_api_answers_the_same_rows(session: Session, client: FlaskClient) -> None:
    made = make_tasks(session, seed=11, count=40)
    response = client.get(
        "/api/v1/kpis",
        query_string={"from": START.isoformat(), "to": END.isoformat(), "group_by": "crew"},
    )
    assert response.status_code == 200
    body = response.get_json()
    assert (body["group_by"], body["period"]) == ("crew", None)
    # The API measures overdue against the real clock: every promise here is long past.
    expected = expected_rows(made, lambda t: t.crew, None, datetime.now(UTC))
    assert_rows(body["rows"], expected, ("group",))


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"from": "2031-06-02T00:00:00Z", "to": "2031-06-01T00:00:00Z"}, "to"),
        ({"from": "2031-06-01T00:00:00Z", "to": "2031-06-01T00:00:00Z"}, "to"),
        ({"from": "yesterday"}, "from"),
        ({"to": "2031-06-01T00:00:00"}, "to"),  # no time zone
        ({"group_by": "team"}, "group_by"),
        ({"period": "year"}, "period"),
    ],
)
def test_bad_parameters_are_422_naming_the_field(
    client: FlaskClient, params: dict[str, str], field: str
) -> None:
    response = client.get("/api/v1/kpis", query_string=params)
    assert response.status_code == 422
    assert response.mimetype == "application/problem+json"
    assert response.get_json()["field"] == field


def test_an_empty_range_answers_one_row_of_zeros(client: FlaskClient) -> None:
    body = client.get(
        "/api/v1/kpis", query_string={"from": "1990-01-01T00:00:00Z", "to": "1990-01-02T00:00:00Z"}
    ).get_json()
    [row] = body["rows"]
    assert row["task_count"] == 0 and row["completion_rate"] is None
    assert row["median_response_min"] is None and row["transfer_count"] == 0
