"""Crews' old days thinned into the position history before prune drops them, and tracks that
reach past the detailed days drawn from it."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
import redis
import sqlalchemy as sa
from flask.testing import FlaskClient
from sqlalchemy.orm import Session

from fieldline.scheduler import JobContext
from fieldline.server.crews.services import create_crew
from fieldline.server.live.services import Live
from fieldline.server.telemetry.history import pending_days, roll_up, roll_up_day
from fieldline.server.telemetry.jobs import position_rollup
from fieldline.server.telemetry.services import crew_track, prune
from fieldline.settings import Settings, SettingsError, load_settings

TODAY = date(2026, 11, 24)
OLD_DAY = date(2026, 9, 10)  # 75 days before TODAY: past 30 detail days, within 90 retention
RECENT_DAY = date(2026, 11, 20)


def _partition(connection: sa.Connection, day: date) -> None:
    connection.execute(
        sa.text("SELECT fieldline_create_partitions('positions', :d, 1)"), {"d": day}
    )


def _partitions(connection: sa.Connection, table: str) -> set[str]:
    return set(
        connection.execute(
            sa.text(
                "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
                "WHERE i.inhparent = CAST(:t AS regclass)"
            ),
            {"t": table},
        ).scalars()
    )


def _insert(connection: sa.Connection, fixes: list[dict[str, Any]]) -> None:
    connection.execute(
        sa.text(
            "INSERT INTO positions (crew_id, device, fix_time, lat, lon, acc_m, speed_mps) "
            "VALUES (:crew, :device, :t, :lat, :lon, :acc, :speed)"
        ),
        fixes,
    )


def _walk(crew: str, device: str, start: datetime, count: int, every_s: float) -> list[dict]:
    """`count` fixes `every_s` apart, each a little further east."""
    return [
        {
            "crew": crew,
            "device": device,
            "t": start + timedelta(seconds=i * every_s),
            "lat": 60.17,
            "lon": 24.9 + i * 0.0001,
            "acc": 5.0 + i,
            "speed": 1.0,
        }
        for i in range(count)
    ]


def _history(connection: sa.Connection, crew: str) -> list[tuple[Any, ...]]:
    return [
        tuple(row)
        for row in connection.execute(
            sa.text(
                "SELECT device, minute, fix_time, fixes, lat, lon, acc_m FROM position_history "
                "WHERE crew_id = :c ORDER BY device, minute"
            ),
            {"c": crew},
        )
    ]


def test_a_day_keeps_each_minutes_last_fix_with_how_many_it_stands_for(
    connection: sa.Connection,
) -> None:
    _partition(connection, OLD_DAY)
    start = datetime.combine(OLD_DAY, datetime.min.time(), UTC) + timedelta(hours=8, seconds=2)
    walk = _walk("C-H1", "handheld", start, 40, 5.0)  # 08:00:02 .. 08:03:17
    other = _walk("C-H1", "van", start, 3, 30.0)  # 08:00:02, 08:00:32, 08:01:02
    # A backlog of an even older day, in DEFAULT (no partition of its own).
    backlog_day = OLD_DAY - timedelta(days=400)
    backlog_start = datetime.combine(backlog_day, datetime.min.time(), UTC)
    backlog = _walk("C-H1", "handheld", backlog_start + timedelta(seconds=50), 3, 5.0)
    _insert(connection, walk + other + backlog)

    assert pending_days(connection, OLD_DAY) == [backlog_day]
    rolled = roll_up(connection, detail_days=30, today=TODAY)
    assert [(r.day, r.fixes, r.minutes) for r in rolled][:1] == [(backlog_day, 3, 2)]
    assert (OLD_DAY, 43, 6) in [(r.day, r.fixes, r.minutes) for r in rolled]

    # Expected from the fixes themselves: per device and UTC minute, the latest one and a count.
    expected: dict[tuple[str, datetime], tuple[dict[str, Any], int]] = {}
    for fix in sorted(walk + other + backlog, key=lambda f: f["t"]):
        key = (fix["device"], fix["t"].replace(second=0, microsecond=0))
        expected[key] = (fix, expected.get(key, (fix, 0))[1] + 1)
    assert _history(connection, "C-H1") == [
        (device, minute, fix["t"], count, fix["lat"], fix["lon"], fix["acc"])
        for (device, minute), (fix, count) in sorted(expected.items())
    ]
    assert f"position_history_p{OLD_DAY:%Y%m}01" in _partitions(connection, "position_history")


def test_rolling_up_again_changes_nothing(connection: sa.Connection) -> None:
    _partition(connection, OLD_DAY)
    start = datetime.combine(OLD_DAY, datetime.min.time(), UTC) + timedelta(hours=9)
    _insert(connection, _walk("C-H2", "handheld", start, 30, 5.0))
    assert [r.day for r in roll_up(connection, 30, TODAY)] == [OLD_DAY]
    before = _history(connection, "C-H2")
    assert roll_up(connection, 30, TODAY) == []  # nothing pending
    assert roll_up_day(connection, OLD_DAY).minutes == 3  # the same day by hand: the same rows
    assert _history(connection, "C-H2") == before
    # A day within the detail days is not rolled up.
    _partition(connection, RECENT_DAY)
    assert RECENT_DAY not in pending_days(connection, TODAY - timedelta(days=30))


def test_prune_never_drops_a_day_not_rolled_up(connection: sa.Connection) -> None:
    _partition(connection, OLD_DAY)
    start = datetime.combine(OLD_DAY, datetime.min.time(), UTC) + timedelta(hours=10)
    _insert(connection, _walk("C-H3", "handheld", start, 24, 5.0))
    # Retention of 60 days would drop OLD_DAY, but it is not in the history yet.
    dropped = prune(connection, retention_days=60, today=TODAY)
    assert f"positions_p{OLD_DAY:%Y%m%d}" not in dropped
    assert f"positions_p{OLD_DAY:%Y%m%d}" in _partitions(connection, "positions")
    roll_up(connection, 30, TODAY)
    dropped = prune(connection, retention_days=60, today=TODAY)
    assert f"positions_p{OLD_DAY:%Y%m%d}" in dropped
    count = "SELECT count(*) FROM {} WHERE crew_id = 'C-H3'"
    assert connection.execute(sa.text(count.format("positions"))).scalar_one() == 0
    assert connection.execute(sa.text(count.format("position_history"))).scalar_one() == 2


def test_history_months_go_after_their_own_retention(connection: sa.Connection) -> None:
    old, kept = date(2021, 3, 15), date(2021, 6, 1)
    for day in (old, kept):
        start = datetime.combine(day, datetime.min.time(), UTC)
        _insert(connection, _walk("C-H4", "handheld", start, 2, 5.0))
    roll_up(connection, 30, TODAY)
    # The retention begins on 2021-05-20: the months before May go, June stays.
    dropped = prune(connection, 90, TODAY, history_retention_days=(TODAY - date(2021, 5, 20)).days)
    assert "position_history_p20210301" in dropped
    assert "position_history_p20210601" not in dropped
    minutes: list[datetime] = list(
        connection.execute(
            sa.text("SELECT minute FROM position_history WHERE crew_id = 'C-H4'")
        ).scalars()
    )
    assert [m.date() for m in minutes] == [kept]


def test_an_old_day_still_draws_from_the_history_and_says_so(
    session: Session, connection: sa.Connection, client: FlaskClient
) -> None:
    crew = create_crew(session, "History crew").public_id
    _partition(connection, OLD_DAY)
    _partition(connection, RECENT_DAY)
    old_start = datetime.combine(OLD_DAY, datetime.min.time(), UTC) + timedelta(hours=7)
    recent_start = datetime.combine(RECENT_DAY, datetime.min.time(), UTC) + timedelta(hours=7)
    _insert(connection, _walk(crew, "handheld", old_start, 36, 5.0))  # 3 minutes
    _insert(connection, _walk(crew, "handheld", recent_start, 4, 5.0))
    roll_up(connection, 30, TODAY)
    prune(connection, 60, TODAY)  # OLD_DAY's detail is gone now
    session.flush()

    url = f"/api/v1/crews/{crew}/positions"
    day = {
        "since": old_start.replace(hour=0).isoformat(),
        "until": (old_start.replace(hour=0) + timedelta(days=1)).isoformat(),
    }
    body = client.get(url, query_string=day).get_json()
    line, *points = body["features"]
    assert body["history_until"] == datetime(2026, 9, 11, tzinfo=UTC).isoformat()
    assert line["properties"]["resolution"] == "minute"
    assert [(p["properties"]["resolution"], p["properties"]["fixes"]) for p in points] == [
        ("minute", 12)
    ] * 3
    assert [p["properties"]["fix_time"] for p in points] == [
        (old_start + timedelta(seconds=s)).isoformat() for s in (55, 115, 175)
    ]

    # Both days at once: the old one a fix a minute, the recent one every fix, in time order.
    both = client.get(url, query_string={"since": day["since"]}).get_json()
    line, *points = both["features"]
    assert line["properties"]["resolution"] == "mixed"
    assert [p["properties"]["resolution"] for p in points] == ["minute"] * 3 + ["fix"] * 4
    times = [p["properties"]["fix_time"] for p in points]
    assert times == sorted(times) and len(line["geometry"]["coordinates"]) == 7
    # A range starting inside the recent days reads no history.
    recent = crew_track(session, crew, recent_start, None)
    assert {f["properties"]["resolution"] for f in recent["features"]} == {"fix"}


def test_a_days_track_reads_one_partition_through_the_crews_index(
    session: Session, connection: sa.Connection
) -> None:
    crew = create_crew(session, "Plan crew").public_id
    for day in (RECENT_DAY - timedelta(days=1), RECENT_DAY, RECENT_DAY + timedelta(days=1)):
        _partition(connection, day)
    start = datetime.combine(RECENT_DAY, datetime.min.time(), UTC)
    _insert(connection, _walk(crew, "handheld", start, 10, 5.0))
    statements: list[tuple[str, Any]] = []

    def capture(_c: Any, _cursor: Any, statement: str, parameters: Any, *_: Any) -> None:
        if "FROM positions" in statement:
            statements.append((statement, parameters))

    sa.event.listen(connection, "before_cursor_execute", capture)
    try:
        crew_track(session, crew, start, start + timedelta(days=1))
    finally:
        sa.event.remove(connection, "before_cursor_execute", capture)
    (statement, parameters), *_ = statements
    # The plan a big table gets: sequential scans off, as they would be at scale.
    connection.execute(sa.text("SET LOCAL enable_seqscan = off"))
    plan = connection.exec_driver_sql("EXPLAIN (FORMAT JSON) " + statement, parameters)
    text = json.dumps(plan.scalar_one())
    assert f"positions_p{RECENT_DAY:%Y%m%d}" in text
    assert f"positions_p{RECENT_DAY - timedelta(days=1):%Y%m%d}" not in text
    assert "positions_default" not in text
    assert f'"Index Name": "positions_p{RECENT_DAY:%Y%m%d}_pkey"' in text


@pytest.fixture
def job_context(settings: Settings, engine: sa.Engine) -> Iterator[JobContext]:
    live = Live(redis.Redis.from_url(settings.redis_url, decode_responses=True), "fl_test_hist")
    now = datetime.combine(TODAY, datetime.min.time(), UTC) + timedelta(hours=1)
    yield JobContext(settings, engine, live, {}, clock=lambda: now)
    live.client.close()


def test_the_scheduler_job_rolls_up_each_day_once(
    job_context: JobContext, engine: sa.Engine
) -> None:
    days = [date(2026, 10, 1), date(2026, 10, 2)]
    try:
        with engine.begin() as connection:
            for day in days:
                _partition(connection, day)
                start = datetime.combine(day, datetime.min.time(), UTC)
                _insert(connection, _walk("C-HJ", "handheld", start, 13, 5.0))
        assert [(r.day, r.fixes, r.minutes) for r in position_rollup(job_context)] == [
            (days[0], 13, 2),
            (days[1], 13, 2),
        ]
        assert position_rollup(job_context) == []
        with engine.connect() as connection:
            assert len(_history(connection, "C-HJ")) == 4
    finally:
        with engine.begin() as connection:
            connection.execute(sa.text("DELETE FROM position_rollups"))
            connection.execute(sa.text("DROP TABLE IF EXISTS position_history_p20261001"))
            for day in days:
                connection.execute(sa.text(f"DROP TABLE IF EXISTS positions_p{day:%Y%m%d}"))


def test_detail_days_may_not_exceed_the_retention() -> None:
    with pytest.raises(SettingsError, match="FIELDLINE_POSITIONS_DETAIL_DAYS"):
        load_settings(retention_days=20, positions_detail_days=30)
    assert load_settings(retention_days=30, positions_detail_days=30).positions_detail_days == 30
