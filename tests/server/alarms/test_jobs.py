"""The scheduler's alarms job on real PostgreSQL and Redis: a low-pressure series raises
exactly one alarm that clears only above threshold + deadband; rate and stale rules;
idempotence under repeated runs and redelivered readings; the live `alarm` events."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from fieldline import scheduler as scheduling
from fieldline.server.alarms import services
from fieldline.server.alarms.models import Alarm, AlarmState, AlarmTransition
from fieldline.settings import Settings, load_settings
from tests.server.alarms.conftest import STATION, T0, Scheduler, received, store

LOW = {
    "station": STATION,
    "metric": "pressure_kpa",
    "kind": "low",
    "threshold": 250,
    "deadband": 20,
    "delay_s": 60,
    "severity": "high",
}


def alarms_of(session: Session) -> list[Alarm]:
    session.expire_all()
    return list(session.scalars(sa.select(Alarm).order_by(Alarm.id)))


def test_the_job_is_scheduled_at_the_setting_s_interval(settings: Settings) -> None:
    jobs = {job.name: job.interval_s for job in scheduling.all_jobs()}
    assert jobs["alarms"] == 5
    tuned = load_settings(database_url=settings.database_url, alarm_evaluate_s=2)
    assert {job.name: job.interval_s for job in scheduling.all_jobs(tuned)}["alarms"] == 2


def test_low_pressure_raises_one_alarm_that_clears_only_above_the_deadband(
    session: Session, scheduler: Scheduler, listening: Any
) -> None:
    services.create_rule(session, LOW, "test", T0)
    session.commit()
    # Normal, then a dip of 40 s (shorter than the 60 s delay): nothing.
    end = store(session, [300, 300, 240, 240, 240, 240, 300, 300], T0 + timedelta(seconds=10))
    assert scheduler.run(end + timedelta(seconds=1)).raised == []
    # Low for two minutes, judged over three runs as the readings come in.
    start = end + timedelta(seconds=10)
    low = [235.0] * 12
    first = store(session, low[:4], start)
    assert scheduler.run(first + timedelta(seconds=2)).raised == []  # 30 s low: not yet
    second = store(session, low[4:], start + timedelta(seconds=40))
    run = scheduler.run(second + timedelta(seconds=2))
    assert len(run.raised) == 1
    (alarm,) = alarms_of(session)
    assert (alarm.state, alarm.station_id, alarm.metric, alarm.severity) == (
        "active", STATION, "pressure_kpa", "high"
    )  # fmt: skip
    assert alarm.since == start and alarm.raised_at == start + timedelta(seconds=60)
    # Running again, and the same readings redelivered, change nothing.
    for _ in range(3):
        store(session, low, start)
        again = scheduler.run(second + timedelta(seconds=3))
        assert again.raised == [] and again.cleared == []
    # Back between threshold and threshold + deadband: still raised.
    middle = store(session, [255, 262, 269, 270], second + timedelta(seconds=10))
    assert scheduler.run(middle + timedelta(seconds=1)).cleared == []
    assert [a.state for a in alarms_of(session)] == ["active"]
    # Above 270: cleared, once.
    up = store(session, [271, 290, 300], middle + timedelta(seconds=10))
    run = scheduler.run(up + timedelta(seconds=1))
    assert run.cleared == [alarm.public_id]
    (alarm,) = alarms_of(session)
    assert alarm.state == "cleared" and alarm.cleared_value == 271
    assert alarm.cleared_at == middle + timedelta(seconds=10)
    assert alarm.cleared_by == services.SYSTEM_ACTOR and alarm.acknowledged_at is None
    steps = session.scalars(
        sa.select(AlarmTransition).where(AlarmTransition.alarm_id == alarm.id)
    ).all()
    assert [(s.action, s.from_state, s.to_state) for s in steps] == [
        ("raise", None, "active"),
        ("clear", "active", "cleared"),
    ]
    assert all(s.announced_at is not None for s in steps)
    # Both steps went out live, with what the map draws.
    events = [e for e in received(listening, 2) if e["type"] == "alarm"]
    # Each as the alarm stood when its run announced it.
    assert [(e["action"], e["state"]) for e in events] == [
        ("raise", "active"),
        ("clear", "cleared"),
    ]
    raised = events[0]
    assert raised["id"] == alarm.public_id and raised["station_id"] == STATION
    assert raised["metric"] == "pressure_kpa" and raised["severity"] == "high"
    assert raised["value"] == 235 and abs(raised["lon"] - 24.9532709) < 1e-6
    assert abs(raised["lat"] - 60.1722773) < 1e-6
    # The condition coming back opens a new alarm.
    store(session, [230] * 8, up + timedelta(seconds=10))
    run = scheduler.run(up + timedelta(seconds=200))
    assert len(run.raised) == 1 and run.raised != [alarm.public_id]
    assert [a.state for a in alarms_of(session)] == ["cleared", "active"]


def test_a_restarted_scheduler_resumes_from_the_stored_state(
    session: Session, scheduler: Scheduler, alarm_settings: Settings, connection: Any, live: Any
) -> None:
    services.create_rule(session, LOW, "test", T0)
    session.commit()
    end = store(session, [240] * 4, T0 + timedelta(seconds=10))
    scheduler.run(end + timedelta(seconds=1))
    state = session.scalar(sa.select(AlarmState))
    assert state is not None and state.since == T0 + timedelta(seconds=10) and not state.open
    # Another scheduler process (nothing in memory) takes over: the 30 s already seen count.
    successor = Scheduler(alarm_settings, connection, live)
    more = store(session, [240] * 3, end + timedelta(seconds=10))
    assert len(successor.run(more + timedelta(seconds=1)).raised) == 1
    assert len(successor.run(more + timedelta(seconds=30)).raised) == 0
    assert len(alarms_of(session)) == 1


def test_rate_of_change(session: Session, scheduler: Scheduler) -> None:
    rule = dict(LOW, kind="rate", threshold=30, deadband=10, window_s=60, delay_s=0)
    services.create_rule(session, rule, "test", T0)
    session.commit()
    values = [500.0] * 7 + [490, 480, 470, 460, 450] + [450.0] * 8
    end = store(session, values, T0 + timedelta(seconds=10))
    run = scheduler.run(end + timedelta(seconds=1))
    assert len(run.raised) == 1 and len(run.cleared) == 1
    (alarm,) = alarms_of(session)
    assert alarm.measured == -40 and alarm.kind == "rate" and alarm.state == "cleared"


def test_stale_when_no_reading_comes(session: Session, scheduler: Scheduler) -> None:
    rule = {"station": STATION, "metric": "pressure_kpa", "kind": "stale",
            "stale_after_s": 600, "severity": "medium"}  # fmt: skip
    services.create_rule(session, rule, "test", T0)
    session.commit()
    last = store(session, [500, 501], T0 + timedelta(seconds=10))
    assert scheduler.run(last + timedelta(seconds=599)).raised == []
    run = scheduler.run(last + timedelta(seconds=650))
    assert len(run.raised) == 1
    (alarm,) = alarms_of(session)
    assert alarm.raised_at == last + timedelta(seconds=600) and alarm.measured == 600
    assert scheduler.run(last + timedelta(seconds=900)).raised == []
    back = store(session, [502], last + timedelta(seconds=1000))
    assert scheduler.run(back + timedelta(seconds=1)).cleared == [alarm.public_id]


def test_a_sparkplug_death_makes_the_metric_stale_at_once(
    session: Session, scheduler: Scheduler
) -> None:
    rule = {"station": STATION, "metric": "pressure_kpa", "kind": "stale",
            "stale_after_s": 600, "severity": "critical"}  # fmt: skip
    services.create_rule(session, rule, "test", T0)
    session.commit()
    store(session, [500], T0 + timedelta(seconds=10))
    # The gateway stores a node's NDEATH as a reading without value for each metric it had.
    death = store(session, [None], T0 + timedelta(seconds=20))
    run = scheduler.run(death + timedelta(seconds=2))
    assert len(run.raised) == 1
    (alarm,) = alarms_of(session)
    assert alarm.raised_at == death and alarm.severity == "critical"


def test_a_rule_for_a_kind_watches_each_of_its_stations(
    session: Session, scheduler: Scheduler
) -> None:
    rule = dict(LOW, station=None, station_kind="pressure", delay_s=0)
    services.create_rule(session, rule, "test", T0)
    session.commit()
    store(session, [200], T0 + timedelta(seconds=10), station="S-000005")
    store(session, [200], T0 + timedelta(seconds=10), station="S-000001")  # a flow station
    end = store(session, [200], T0 + timedelta(seconds=10), station="S-000006")
    scheduler.run(end + timedelta(seconds=1))
    assert sorted(a.station_id for a in alarms_of(session)) == ["S-000005", "S-000006"]


def test_the_default_rules_come_from_the_setting(
    session: Session, settings: Settings, connection: Any, live: Any
) -> None:
    tuned = load_settings(
        database_url=settings.database_url,
        alarm_rules_default="S-000004/pressure_kpa<250:high,S-000004/stale(pressure_kpa)>5m:low",
    )
    first = Scheduler(tuned, connection, live).run(T0)
    assert first.rules_synced == 2
    terms = sorted(r.setting_term or "" for r in services.list_rules(session))
    assert terms == ["S-000004/pressure_kpa<250:high", "S-000004/stale(pressure_kpa)>5m:low"]
    assert Scheduler(tuned, connection, live).run(T0 + timedelta(seconds=5)).rules_synced == 0
    end = store(session, [200], T0 + timedelta(seconds=10))
    assert len(Scheduler(tuned, connection, live).run(end).raised) == 1
    # A term taken out of the setting: its rule goes, and its open alarm is cleared.
    fewer = load_settings(
        database_url=settings.database_url,
        alarm_rules_default="S-000004/stale(pressure_kpa)>5m:low",
    )
    assert Scheduler(fewer, connection, live).run(end + timedelta(seconds=1)).rules_synced == 1
    (alarm,) = alarms_of(session)
    assert alarm.state == "cleared" and alarm.rule_id is None
    assert [r.setting_term for r in services.list_rules(session)] == [
        "S-000004/stale(pressure_kpa)>5m:low"
    ]
