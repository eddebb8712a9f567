"""Alarm rules and alarms as JSON, for the API and the live stream. An alarm carries what the
map needs to draw it without another request: the station's id, name and position, the
metric, the value, the severity and the state."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy.orm import Session

from fieldline.server.alarms import services
from fieldline.server.alarms.models import Alarm, AlarmRule, AlarmTransition
from fieldline.server.alarms.rules import describe, format_term
from fieldline.server.alarms.services import StationPlace
from fieldline.server.alarms.states import allowed_actions
from fieldline.server.fields import iso
from fieldline.server.telemetry.models import TelemetryReading


def rule_json(rule: AlarmRule) -> dict[str, Any]:
    spec = services.spec_of(rule)
    return {
        "id": rule.public_id,
        "station": rule.station_id,
        "station_kind": rule.station_kind,
        "metric": rule.metric,
        "kind": rule.kind,
        "threshold": rule.threshold,
        "deadband": rule.deadband,
        "window_s": rule.window_s,
        "stale_after_s": rule.stale_after_s,
        "delay_s": rule.delay_s,
        "severity": rule.severity,
        "enabled": rule.enabled,
        "origin": rule.origin,
        "term": format_term(spec),
        "condition": describe(spec),
        "watch_from": iso(rule.watch_from),
        "created_by": rule.created_by,
        "created_at": iso(rule.created_at),
        "updated_at": iso(rule.updated_at),
    }


def alarm_json(
    alarm: Alarm, place: StationPlace | None, rules: Mapping[int, str]
) -> dict[str, Any]:
    return {
        "id": alarm.public_id,
        "rule_id": None if alarm.rule_id is None else rules.get(alarm.rule_id),
        "station_id": alarm.station_id,
        "station_name": None if place is None else place.name,
        "lon": None if place is None else place.lon,
        "lat": None if place is None else place.lat,
        "metric": alarm.metric,
        "kind": alarm.kind,
        "condition": alarm.condition,
        "severity": alarm.severity,
        "state": alarm.state,
        "allowed_actions": list(allowed_actions(alarm.state)),
        "value": alarm.value,
        "measured": alarm.measured,
        "since": iso(alarm.since),
        "raised_at": iso(alarm.raised_at),
        "acknowledged_at": iso(alarm.acknowledged_at),
        "acknowledged_by": alarm.acknowledged_by,
        "cleared_at": iso(alarm.cleared_at),
        "cleared_by": alarm.cleared_by,
        "cleared_value": alarm.cleared_value,
    }


def alarms_json(session: Session, alarms: Sequence[Alarm]) -> list[dict[str, Any]]:
    places = services.station_places(session, (alarm.station_id for alarm in alarms))
    rules = services.rule_ids(session, (alarm.rule_id for alarm in alarms))
    return [alarm_json(alarm, places.get(alarm.station_id), rules) for alarm in alarms]


def step_json(step: AlarmTransition) -> dict[str, Any]:
    return {
        "action": step.action,
        "from_state": step.from_state,
        "to_state": step.to_state,
        "actor": step.actor,
        "actor_kind": step.actor_kind,
        "at": iso(step.at),
        "recorded_at": iso(step.recorded_at),
        "value": step.value,
        "note": step.note,
    }


def alarm_detail(
    session: Session,
    alarm: Alarm,
    steps: Sequence[AlarmTransition],
    readings: Sequence[TelemetryReading],
) -> dict[str, Any]:
    (body,) = alarms_json(session, [alarm])
    return body | {
        "history": [step_json(step) for step in steps],
        "readings": [{"ts": iso(r.ts), "value": r.value} for r in readings],
    }


def alarm_event(
    alarm: Alarm, step: AlarmTransition, place: StationPlace | None, rules: Mapping[int, str]
) -> dict[str, Any]:
    """An `alarm` event of the live stream: the alarm as the API shows it, and the step."""
    return {
        "type": "alarm",
        **alarm_json(alarm, place, rules),
        "action": step.action,
        "at": iso(step.at),
        "actor": step.actor,
    }
