"""Alarm rules, alarms and their steps, and the evaluation run that ties the pure evaluation
(evaluation.py) to the database.

One run, in one transaction: the rules of FIELDLINE_ALARM_RULES_DEFAULT are brought into the
table; the enabled rules are locked (a rule being edited waits for the run, and the reverse);
each rule's stations are found; the readings measured since each (rule, station) was last
judged are read per station and metric in time order (an index range on the telemetry's key,
at most READINGS_PER_PAIR at a time); the evaluation's new state, the raised and cleared
alarms and their steps are written together. The steps go out live after the commit and are
marked announced, so a step whose announcement failed goes out on the next run.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, NamedTuple

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.orm import Session

from fieldline.gis.errors import Conflict, InvalidField, NotFound
from fieldline.gis.models import Station
from fieldline.server.alarms.evaluation import Sample, State, Step, evaluate
from fieldline.server.alarms.models import Alarm, AlarmRule, AlarmState, AlarmTransition
from fieldline.server.alarms.rules import (
    CONDITION_FIELDS,
    MAX_SPAN_S,
    RuleSpec,
    check_rule,
    describe,
)
from fieldline.server.alarms.states import OPEN_STATES, next_state
from fieldline.server.live.outbox import publish_unannounced
from fieldline.server.live.services import Live
from fieldline.server.telemetry.models import TelemetryReading
from fieldline.settings import Settings

log = logging.getLogger(__name__)

SYSTEM_ACTOR = "alarm evaluation"
# Readings of one station's metric judged per run: a long backlog is worked off over runs.
READINGS_PER_PAIR = 5000
# Readings older than this are not read for a rule that has not judged them: history.
MAX_BACKLOG = timedelta(seconds=MAX_SPAN_S)
# An alarm's readings are shown from this long before it began to this long after it ended.
AROUND = timedelta(minutes=15)
NOTE_MOST = 2000


# -- rules -----------------------------------------------------------------------------------


def spec_of(rule: AlarmRule) -> RuleSpec:
    return RuleSpec(
        metric=rule.metric,
        kind=rule.kind,
        severity=rule.severity,
        station=rule.station_id,
        station_kind=rule.station_kind,
        threshold=rule.threshold,
        deadband=rule.deadband,
        window_s=rule.window_s,
        stale_after_s=rule.stale_after_s,
        delay_s=rule.delay_s,
        enabled=rule.enabled,
    )


def _apply(rule: AlarmRule, spec: RuleSpec) -> None:
    rule.metric, rule.kind, rule.severity = spec.metric, spec.kind, spec.severity
    rule.station_id, rule.station_kind = spec.station, spec.station_kind
    rule.threshold, rule.deadband = spec.threshold, spec.deadband
    rule.window_s, rule.stale_after_s = spec.window_s, spec.stale_after_s
    rule.delay_s, rule.enabled = spec.delay_s, spec.enabled


def _check_station(session: Session, spec: RuleSpec) -> None:
    if spec.station is not None and not session.scalar(
        sa.select(Station.id).where(Station.public_id == spec.station)
    ):
        raise InvalidField("station", f"no station with id {spec.station!r}")


def list_rules(session: Session) -> list[AlarmRule]:
    return list(session.scalars(sa.select(AlarmRule).order_by(AlarmRule.id)))


def get_rule(session: Session, public_id: str, *, lock: bool = False) -> AlarmRule:
    query = sa.select(AlarmRule).where(AlarmRule.public_id == public_id)
    rule = session.scalar(query.with_for_update() if lock else query)
    if rule is None:
        raise NotFound(f"no alarm rule with id {public_id!r}")
    return rule


def create_rule(
    session: Session,
    body: Any,
    actor: str,
    now: datetime,
    *,
    origin: str = "api",
    setting_term: str | None = None,
) -> AlarmRule:
    spec = check_rule(body)
    _check_station(session, spec)
    rule = AlarmRule(
        origin=origin,
        setting_term=setting_term,
        watch_from=now,
        created_by=actor,
        created_at=now,
        updated_at=now,
    )
    _apply(rule, spec)
    session.add(rule)
    session.flush()
    return rule


def update_rule(
    session: Session, public_id: str, body: Any, actor: str, now: datetime
) -> AlarmRule:
    """Change a rule. A changed condition (or a rule switched off) clears its open alarms and
    starts its watch afresh from now: an alarm always matches the rule that raised it."""
    rule = get_rule(session, public_id, lock=True)
    before = spec_of(rule)
    spec = check_rule(body, before)
    _check_station(session, spec)
    changed = [name for name in CONDITION_FIELDS if getattr(spec, name) != getattr(before, name)]
    if changed or (before.enabled and not spec.enabled):
        why = "rule switched off" if not spec.enabled else "rule changed: " + ", ".join(changed)
        _restart(session, rule, actor, "user", now, why)
    if spec.enabled and not before.enabled:
        rule.watch_from = now
    _apply(rule, spec)
    rule.updated_at = now
    session.flush()
    return rule


def delete_rule(session: Session, public_id: str, actor: str, now: datetime) -> None:
    rule = get_rule(session, public_id, lock=True)
    if rule.origin == "setting":
        raise Conflict(
            "this rule comes from FIELDLINE_ALARM_RULES_DEFAULT: remove it there, or switch it "
            'off with PATCH {"enabled": false}'
        )
    _restart(session, rule, actor, "user", now, "rule deleted")
    session.delete(rule)
    session.flush()


def _restart(
    session: Session, rule: AlarmRule, actor: str, actor_kind: str, now: datetime, note: str
) -> None:
    """Clear the rule's open alarms and forget what its evaluation knew."""
    open_alarms = session.scalars(
        sa.select(Alarm)
        .where(Alarm.rule_id == rule.id, Alarm.state.in_(OPEN_STATES))
        .with_for_update()
    )
    for alarm in open_alarms:
        _clear(session, alarm, actor, actor_kind, now, None, note)
    session.execute(sa.delete(AlarmState).where(AlarmState.rule_id == rule.id))
    rule.watch_from = now


def sync_default_rules(session: Session, settings: Settings, now: datetime) -> int:
    """Bring the rules of FIELDLINE_ALARM_RULES_DEFAULT into the table: a term not there yet is
    added; a `setting` rule whose term left the setting is deleted (its open alarms cleared).
    A default rule edited through the API keeps its edits. Returns the rules added or removed."""
    wanted = dict(settings.alarm_default_rules)
    have = {
        rule.setting_term: rule
        for rule in session.scalars(
            sa.select(AlarmRule).where(AlarmRule.origin == "setting").with_for_update()
        )
    }
    changes = 0
    for term, rule in have.items():
        if term not in wanted:
            _restart(session, rule, SYSTEM_ACTOR, "system", now, "rule left the setting")
            session.delete(rule)
            changes += 1
    for term, spec in wanted.items():
        if term not in have:
            body = {k: v for k, v in spec.as_dict().items() if v is not None}
            create_rule(session, body, "setting", now, origin="setting", setting_term=term)
            changes += 1
    session.flush()
    return changes


# -- alarms ----------------------------------------------------------------------------------


@dataclass
class AlarmQuery:
    states: tuple[str, ...] = ()
    stations: tuple[str, ...] = ()
    severities: tuple[str, ...] = ()
    limit: int = 100


def list_alarms(session: Session, query: AlarmQuery) -> list[Alarm]:
    select = sa.select(Alarm)
    if query.states:
        select = select.where(Alarm.state.in_(query.states))
    if query.stations:
        select = select.where(Alarm.station_id.in_(query.stations))
    if query.severities:
        select = select.where(Alarm.severity.in_(query.severities))
    return list(
        session.scalars(select.order_by(Alarm.raised_at.desc(), Alarm.id.desc()).limit(query.limit))
    )


def get_alarm(session: Session, public_id: str, *, lock: bool = False) -> Alarm:
    query = sa.select(Alarm).where(Alarm.public_id == public_id)
    alarm = session.scalar(query.with_for_update() if lock else query)
    if alarm is None:
        raise NotFound(f"no alarm with id {public_id!r}")
    return alarm


def _step(
    session: Session,
    alarm: Alarm,
    action: str,
    actor: str,
    actor_kind: str,
    at: datetime,
    value: float | None,
    note: str | None,
) -> AlarmTransition:
    before = None if action == "raise" else alarm.state
    after = next_state(before, action)
    alarm.state = after
    alarm.updated_at = at
    step = AlarmTransition(
        alarm_id=alarm.id,
        action=action,
        from_state=before,
        to_state=after,
        actor=actor,
        actor_kind=actor_kind,
        at=at,
        value=value,
        note=note,
    )
    session.add(step)
    return step


def acknowledge(session: Session, public_id: str, actor: str, note: Any, now: datetime) -> Alarm:
    if note is not None and (not isinstance(note, str) or len(note) > NOTE_MOST):
        raise InvalidField("note", f"must be a text of at most {NOTE_MOST} characters")
    alarm = get_alarm(session, public_id, lock=True)
    _step(session, alarm, "acknowledge", actor, "user", now, None, note or None)
    alarm.acknowledged_at, alarm.acknowledged_by = now, actor
    session.flush()
    return alarm


def _clear(
    session: Session,
    alarm: Alarm,
    actor: str,
    actor_kind: str,
    at: datetime,
    value: float | None,
    note: str | None,
) -> None:
    _step(session, alarm, "clear", actor, actor_kind, at, value, note)
    alarm.cleared_at, alarm.cleared_by, alarm.cleared_value = at, actor, value


def history(session: Session, alarm: Alarm) -> list[AlarmTransition]:
    return list(
        session.scalars(
            sa.select(AlarmTransition)
            .where(AlarmTransition.alarm_id == alarm.id)
            .order_by(AlarmTransition.id)
        )
    )


def readings_around(
    session: Session, alarm: Alarm, now: datetime, limit: int
) -> list[TelemetryReading]:
    """The alarm's metric at its station from a while before the condition began to a while
    after the alarm cleared (or now)."""
    start = alarm.since - AROUND
    end = (alarm.cleared_at or now) + AROUND
    return list(
        session.scalars(
            sa.select(TelemetryReading)
            .where(
                TelemetryReading.station_id == alarm.station_id,
                TelemetryReading.metric == alarm.metric,
                TelemetryReading.ts >= start,
                TelemetryReading.ts <= end,
            )
            .order_by(TelemetryReading.ts)
            .limit(limit)
        )
    )


class StationPlace(NamedTuple):
    name: str
    kind: str
    lon: float
    lat: float


def station_places(session: Session, ids: Iterable[str]) -> dict[str, StationPlace]:
    wanted = set(ids)
    if not wanted:
        return {}
    rows = session.execute(
        sa.select(
            Station.public_id,
            Station.name,
            Station.kind,
            sa.func.ST_X(Station.geom),
            sa.func.ST_Y(Station.geom),
        ).where(Station.public_id.in_(wanted))
    )
    return {row[0]: StationPlace(row[1], row[2], row[3], row[4]) for row in rows}


def rule_ids(session: Session, ids: Iterable[int | None]) -> dict[int, str]:
    wanted = {i for i in ids if i is not None}
    if not wanted:
        return {}
    rows = session.execute(
        sa.select(AlarmRule.id, AlarmRule.public_id).where(AlarmRule.id.in_(wanted))
    )
    return {rule_id: public_id for rule_id, public_id in rows}


# -- the evaluation run ----------------------------------------------------------------------


@dataclass
class Run:
    """What one run did: the readings it read, the alarms it raised and cleared (public ids),
    and the default rules it added or removed."""

    readings: int = 0
    raised: list[str] = field(default_factory=list)
    cleared: list[str] = field(default_factory=list)
    rules_synced: int = 0


def _targets(session: Session, rules: Sequence[AlarmRule]) -> dict[int, list[str]]:
    """The stations each rule watches: its station; else the stations (of its kind) that list
    its metric."""
    stations = session.execute(sa.select(Station.public_id, Station.kind, Station.metrics)).all()
    found: dict[int, list[str]] = {}
    for rule in rules:
        if rule.station_id is not None:
            found[rule.id] = [rule.station_id]
            continue
        found[rule.id] = [
            public_id
            for public_id, kind, metrics in stations
            if rule.metric in metrics and rule.station_kind in (None, kind)
        ]
    return found


def _state_of(row: AlarmState) -> State:
    return State(
        started_at=row.started_at,
        judged_to=row.judged_to,
        alive_at=row.alive_at,
        dead=row.dead,
        since=row.since,
        open=row.open,
        recent=tuple(Sample(datetime.fromisoformat(ts), value) for ts, value in row.recent or []),
    )


def _store_state(row: AlarmState, state: State) -> None:
    row.started_at, row.judged_to = state.started_at, state.judged_to
    row.alive_at, row.dead, row.since, row.open = (
        state.alive_at,
        state.dead,
        state.since,
        state.open,
    )
    row.recent = [[s.ts.isoformat(), s.value] for s in state.recent]


def _read(
    session: Session, pairs: dict[tuple[str, str], datetime], now: datetime
) -> dict[tuple[str, str], list[Sample]]:
    """Readings measured after each pair's time up to now, in time order, per pair: one index
    range on the telemetry's key (station, metric, ts) per pair."""
    if not pairs:
        return {}
    keys = list(pairs)
    rows = session.execute(
        sa.text(
            "SELECT p.station_id, p.metric, r.ts, r.value "
            "FROM unnest(CAST(:stations AS text[]), CAST(:metrics AS text[]), "
            "CAST(:afters AS timestamptz[])) AS p(station_id, metric, after) "
            "CROSS JOIN LATERAL (SELECT t.ts, t.value FROM telemetry t "
            "WHERE t.station_id = p.station_id AND t.metric = p.metric "
            "AND t.ts > p.after AND t.ts > :lowest AND t.ts <= :now "
            "ORDER BY t.ts LIMIT :most) r"
        ),
        {
            "stations": [station for station, _ in keys],
            "metrics": [metric for _, metric in keys],
            "afters": [pairs[key] for key in keys],
            # A constant bound too, so that the planner skips the older partitions.
            "lowest": min(pairs.values()),
            "now": now,
            "most": READINGS_PER_PAIR,
        },
    )
    found: dict[tuple[str, str], list[Sample]] = {key: [] for key in keys}
    for row in rows:
        found[(row.station_id, row.metric)].append(Sample(row.ts, row.value))
    return found


def evaluate_rules(session: Session, now: datetime, settings: Settings) -> Run:
    """One evaluation run; the caller commits, then announces."""
    run = Run(rules_synced=sync_default_rules(session, settings, now))
    rules = list(
        session.scalars(
            sa.select(AlarmRule).where(AlarmRule.enabled).order_by(AlarmRule.id).with_for_update()
        )
    )
    if not rules:
        return run
    targets = _targets(session, rules)
    rows = {
        (row.rule_id, row.station_id): row
        for row in session.scalars(
            sa.select(AlarmState).where(AlarmState.rule_id.in_([r.id for r in rules]))
        )
    }
    floor = now - MAX_BACKLOG
    states: dict[tuple[int, str], State] = {}
    pairs: dict[tuple[str, str], datetime] = {}
    for rule in rules:
        for station in targets[rule.id]:
            row = rows.get((rule.id, station))
            if row is None:
                start = max(rule.watch_from, floor)
                state = State.start(min(start, now))
            else:
                state = _state_of(row)
            states[(rule.id, station)] = state
            after = max(state.judged_to, floor)
            key = (station, rule.metric)
            pairs[key] = min(pairs.get(key, after), after)
    samples = _read(session, pairs, now)
    run.readings = sum(len(found) for found in samples.values())
    for rule in rules:
        spec = spec_of(rule)
        for station in targets[rule.id]:
            found = samples[(station, rule.metric)]
            # A pair with more readings waiting is judged up to its last one read, not to now.
            until = found[-1].ts if len(found) >= READINGS_PER_PAIR else now
            # Readings that only another rule on the same pair still needed are skipped.
            before = states[(rule.id, station)]
            result = evaluate(spec, before, found, until)
            for step in result.steps:
                _apply_step(session, rule, station, step, run)
            if result.state != before or (rule.id, station) not in rows:
                row = rows.get((rule.id, station)) or AlarmState(
                    rule_id=rule.id, station_id=station
                )
                _store_state(row, result.state)
                session.add(row)
    session.flush()
    return run


def _apply_step(session: Session, rule: AlarmRule, station: str, step: Step, run: Run) -> None:
    if step.action == "raise":
        inserted = session.execute(
            insert(Alarm)
            .values(
                rule_id=rule.id,
                station_id=station,
                metric=rule.metric,
                kind=rule.kind,
                severity=rule.severity,
                condition=describe(spec_of(rule)),
                state="active",
                value=step.value,
                measured=step.measured,
                since=step.since or step.at,
                raised_at=step.at,
                updated_at=step.at,
            )
            .on_conflict_do_nothing(
                index_elements=["rule_id", "station_id", "metric"],
                index_where=Alarm.state.in_(OPEN_STATES),
            )
            .returning(Alarm.id)
        ).scalar()
        if inserted is None:
            return  # open already: the unique index keeps it one
        alarm = session.get_one(Alarm, inserted)
        session.add(
            AlarmTransition(
                alarm_id=alarm.id,
                action="raise",
                from_state=None,
                to_state="active",
                actor=SYSTEM_ACTOR,
                actor_kind="system",
                at=step.at,
                value=step.value,
                note=describe(spec_of(rule)),
            )
        )
        run.raised.append(alarm.public_id)
        return
    found = session.scalar(
        sa.select(Alarm)
        .where(
            Alarm.rule_id == rule.id,
            Alarm.station_id == station,
            Alarm.metric == rule.metric,
            Alarm.state.in_(OPEN_STATES),
        )
        .with_for_update()
    )
    if found is not None:
        _clear(session, found, SYSTEM_ACTOR, "system", step.at, step.value, None)
        run.cleared.append(found.public_id)


# -- live ------------------------------------------------------------------------------------


def announce(session: Session, live: Live, now: datetime) -> int:
    """Publish the steps not announced yet as `alarm` events (live/outbox.py); the caller
    commits."""
    from fieldline.server.alarms.payloads import alarm_event

    def events(steps: Sequence[AlarmTransition]) -> Iterator[dict[str, Any]]:
        alarms = {
            alarm.id: alarm
            for alarm in session.scalars(
                sa.select(Alarm).where(Alarm.id.in_({step.alarm_id for step in steps}))
            )
        }
        places = station_places(session, (alarm.station_id for alarm in alarms.values()))
        rules = rule_ids(session, (alarm.rule_id for alarm in alarms.values()))
        for step in steps:
            alarm = alarms[step.alarm_id]
            yield alarm_event(alarm, step, places.get(alarm.station_id), rules)

    return publish_unannounced(session, live, AlarmTransition, now, events)
