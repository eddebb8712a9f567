"""What an alarm rule says, checked in one place for both ways rules come in: the API's JSON
body and the terms of FIELDLINE_ALARM_RULES_DEFAULT. Pure: no database, no Flask.

A term of the setting, terms separated by commas:

    [SCOPE/]TEST:SEVERITY[:OPTION...]

    SCOPE     a station kind (pressure, flow, quality) or a station id (S-000004);
              none: every station that lists the metric
    TEST      METRIC<NUMBER            low: raised below NUMBER
              METRIC>NUMBER            high: raised above NUMBER
              rate(METRIC)>NUMBER      rate: the value changes faster than NUMBER per minute
              stale(METRIC)>DURATION   stale: no reading for DURATION (or the source died)
    SEVERITY  critical, high, medium or low
    OPTION    deadband=NUMBER   hysteresis: a low alarm clears only above NUMBER + deadband,
                                a high or rate alarm only below NUMBER - deadband
              delay=DURATION    how long the condition must hold before the alarm is raised
              window=DURATION   rate: the span the change is measured over (default 5m)
    DURATION  a number of seconds, or with a unit: 90s, 15m, 1h

e.g. `pressure_kpa<250:high:deadband=20:delay=60s,quality/chlorine_mgl<0.2:high,
S-000004/stale(pressure_kpa)>15m:medium`.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, fields
from typing import Any

from fieldline.gis.errors import InvalidField
from fieldline.gis.models import STATION_KINDS

KINDS = ("low", "high", "rate", "stale")
SEVERITIES = ("critical", "high", "medium", "low")  # most urgent first
DEFAULT_WINDOW_S = 300.0
# Whatever a rule asks for, the evaluation keeps at most this much of a rate's window and
# waits at most this long: beyond a day it is history, not an alarm.
MAX_SPAN_S = 86_400.0
METRIC = re.compile(r"[a-z][a-z0-9_]{0,62}")
STATION_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.:-]{0,99}")
# The fields a body may carry; `enabled` is the API's alone.
FIELDS = (
    "station",
    "station_kind",
    "metric",
    "kind",
    "threshold",
    "deadband",
    "window_s",
    "stale_after_s",
    "delay_s",
    "severity",
    "enabled",
)
# The fields that make up the condition: changing one starts the rule's watch afresh.
CONDITION_FIELDS = FIELDS[:9]


@dataclass(frozen=True)
class RuleSpec:
    metric: str
    kind: str
    severity: str
    station: str | None = None  # a station's public id
    station_kind: str | None = None
    threshold: float | None = None  # low/high: the value; rate: per minute
    deadband: float = 0.0
    window_s: float | None = None  # rate
    stale_after_s: float | None = None  # stale
    delay_s: float = 0.0
    enabled: bool = True

    def as_dict(self) -> dict[str, Any]:
        return {f.name: getattr(self, f.name) for f in fields(self)}


def _number(value: Any, field: str, *, least: float | None = None, above: bool = False) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise InvalidField(field, "must be a finite number")
    if least is not None and (value <= least if above else value < least):
        raise InvalidField(field, f"must be {'above' if above else 'at least'} {least:g}")
    return float(value)


def _seconds(value: Any, field: str, *, above_zero: bool) -> float:
    seconds = _number(value, field, least=0.0, above=above_zero)
    if seconds > MAX_SPAN_S:
        raise InvalidField(field, f"must be at most {MAX_SPAN_S:g} s (a day)")
    return seconds


def check_rule(body: Any, base: RuleSpec | None = None) -> RuleSpec:
    """A rule from a JSON object: all of it (`base` None) or the fields that change `base`.
    InvalidField names the first field at fault."""
    if not isinstance(body, Mapping):
        raise InvalidField("body", "must be a JSON object")
    for key in body:
        if key not in FIELDS:
            raise InvalidField(str(key), "unknown field; known: " + ", ".join(FIELDS))
    merged = (base.as_dict() if base else {}) | dict(body)
    metric = merged.get("metric")
    if not isinstance(metric, str) or not METRIC.fullmatch(metric):
        raise InvalidField("metric", "must be a metric name like pressure_kpa (a-z, 0-9, _)")
    kind = merged.get("kind")
    if kind not in KINDS:
        raise InvalidField("kind", f"{kind!r} is not one of: {', '.join(KINDS)}")
    severity = merged.get("severity")
    if severity not in SEVERITIES:
        raise InvalidField("severity", f"{severity!r} is not one of: {', '.join(SEVERITIES)}")
    station, station_kind = merged.get("station"), merged.get("station_kind")
    if station is not None and (not isinstance(station, str) or not STATION_ID.fullmatch(station)):
        raise InvalidField("station", "must be a station id like S-000004, or null")
    if station_kind is not None and station_kind not in STATION_KINDS:
        raise InvalidField(
            "station_kind", f"{station_kind!r} is not one of: {', '.join(STATION_KINDS)}"
        )
    if station is not None and station_kind is not None:
        raise InvalidField("station_kind", "give a station or a station kind, not both")
    enabled = merged.get("enabled", True)
    if not isinstance(enabled, bool):
        raise InvalidField("enabled", "must be true or false")
    delay_s = _seconds(merged.get("delay_s", 0.0), "delay_s", above_zero=False)

    # What each kind needs, and what it must not be given (a stray field is a misunderstanding).
    needs = {
        "low": ("threshold",),
        "high": ("threshold",),
        "rate": ("threshold",),
        "stale": ("stale_after_s",),
    }[kind]
    takes = {
        "low": ("threshold", "deadband"),
        "high": ("threshold", "deadband"),
        "rate": ("threshold", "deadband", "window_s"),
        "stale": ("stale_after_s",),
    }[kind]
    # Only what the body itself sent is refused (a PATCH changing the kind drops the rest),
    # and a deadband of 0, which every rule shows, is no deadband.
    for name in ("threshold", "deadband", "window_s", "stale_after_s"):
        sent = body.get(name)
        if name not in takes and sent is not None and not (name == "deadband" and sent == 0):
            raise InvalidField(name, f"does not apply to a {kind} rule")
    for name in needs:
        if merged.get(name) is None:
            raise InvalidField(name, f"is required for a {kind} rule")
    threshold = deadband = None
    window_s = stale_after_s = None
    if "threshold" in takes:
        threshold = _number(
            merged["threshold"], "threshold", least=0.0 if kind == "rate" else None, above=True
        )
        deadband = _number(merged.get("deadband") or 0.0, "deadband", least=0.0)
        if kind == "rate" and deadband >= threshold:
            raise InvalidField("deadband", "must be below the threshold of a rate rule")
    if kind == "rate":
        window = merged.get("window_s")
        window = DEFAULT_WINDOW_S if window is None else window
        window_s = _seconds(window, "window_s", above_zero=True)
    if kind == "stale":
        stale_after_s = _seconds(merged["stale_after_s"], "stale_after_s", above_zero=True)
    return RuleSpec(
        metric=metric,
        kind=kind,
        severity=severity,
        station=station,
        station_kind=station_kind,
        threshold=threshold,
        deadband=deadband or 0.0,
        window_s=window_s,
        stale_after_s=stale_after_s,
        delay_s=delay_s,
        enabled=enabled,
    )


# -- the setting's syntax --------------------------------------------------------------------

_TEST = re.compile(
    r"(?:(?P<fn>rate|stale)\((?P<fmetric>[^()\s]+)\)\s*>\s*(?P<fvalue>\S+)"
    r"|(?P<metric>[^<>\s]+)\s*(?P<op>[<>])\s*(?P<value>\S+))"
)
_DURATION = re.compile(r"(?P<number>[0-9]+(?:\.[0-9]+)?)\s*(?P<unit>[smh]?)")
_UNITS = {"": 1.0, "s": 1.0, "m": 60.0, "h": 3600.0}
_OPTIONS = {"deadband": "deadband", "delay": "delay_s", "window": "window_s"}


def duration_s(text: str) -> float:
    """`90`, `90s`, `15m`, `1h` in seconds; ValueError otherwise."""
    match = _DURATION.fullmatch(text.strip())
    if match is None:
        raise ValueError(f"{text!r} is not a duration like 90s, 15m or 1h")
    return float(match["number"]) * _UNITS[match["unit"]]


def _float(text: str, what: str) -> float:
    try:
        return float(text)
    except ValueError:
        raise ValueError(f"{what} {text!r} is not a number") from None


def parse_term(term: str) -> RuleSpec:
    """One term of the setting as a rule; ValueError names the term and what is wrong."""
    try:
        return _parse_term(term)
    except InvalidField as exc:
        raise ValueError(f"{term!r}: {exc.field} {exc.detail}") from None
    except ValueError as exc:
        raise ValueError(f"{term!r}: {exc}") from None


def _parse_term(term: str) -> RuleSpec:
    head, *options = (part.strip() for part in term.split(":"))
    if not options:
        raise ValueError("missing ':SEVERITY'")
    severity, options = options[0], options[1:]
    scope, _, test = head.rpartition("/")
    body: dict[str, Any] = {"severity": severity}
    if scope:
        body["station_kind" if scope in STATION_KINDS else "station"] = scope
    match = _TEST.fullmatch(test.strip())
    if match is None:
        raise ValueError(f"{test!r} is not METRIC<N, METRIC>N, rate(METRIC)>N or stale(METRIC)>T")
    if match["fn"] == "rate":
        body |= {"kind": "rate", "metric": match["fmetric"]}
        body["threshold"] = _float(match["fvalue"], "rate")
    elif match["fn"] == "stale":
        body |= {"kind": "stale", "metric": match["fmetric"]}
        body["stale_after_s"] = duration_s(match["fvalue"])
    else:
        body |= {"kind": "low" if match["op"] == "<" else "high", "metric": match["metric"]}
        body["threshold"] = _float(match["value"], "threshold")
    for option in options:
        name, sep, value = (piece.strip() for piece in option.partition("="))
        if not sep or name not in _OPTIONS:
            raise ValueError(f"{option!r} is not one of deadband=, delay=, window=")
        body[_OPTIONS[name]] = _float(value, name) if name == "deadband" else duration_s(value)
    return check_rule(body)


def parse_rules(value: str) -> list[tuple[str, RuleSpec]]:
    """FIELDLINE_ALARM_RULES_DEFAULT as (normalised term, rule) pairs; ValueError names the
    term at fault. The term, normalised, is the rule's key: the same term twice is an error."""
    found: dict[str, RuleSpec] = {}
    for term in (term.strip() for term in value.split(",") if term.strip()):
        spec = parse_term(term)
        key = format_term(spec)
        if key in found:
            raise ValueError(f"{term!r} is given twice")
        found[key] = spec
    return list(found.items())


def _g(value: float) -> str:
    return f"{value:g}"


def _duration(seconds: float) -> str:
    for unit, size in (("h", 3600), ("m", 60)):
        if seconds >= size and seconds % size == 0:
            return f"{seconds / size:g}{unit}"
    return f"{seconds:g}s"


def format_term(spec: RuleSpec) -> str:
    """The rule in the setting's syntax, normalised (its defaults written out)."""
    if spec.kind == "rate":
        test = f"rate({spec.metric})>{_g(spec.threshold or 0.0)}"
    elif spec.kind == "stale":
        test = f"stale({spec.metric})>{_duration(spec.stale_after_s or 0.0)}"
    else:
        test = f"{spec.metric}{'<' if spec.kind == 'low' else '>'}{_g(spec.threshold or 0.0)}"
    scope = spec.station or spec.station_kind
    parts = [f"{scope}/{test}" if scope else test, spec.severity]
    if spec.kind in ("low", "high", "rate") and spec.deadband:
        parts.append(f"deadband={_g(spec.deadband)}")
    if spec.delay_s:
        parts.append(f"delay={_duration(spec.delay_s)}")
    if spec.kind == "rate" and spec.window_s is not None:
        parts.append(f"window={_duration(spec.window_s)}")
    return ":".join(parts)


def describe(spec: RuleSpec) -> str:
    """In words, for the alarm list: `pressure_kpa below 250 (clears above 270)`."""
    deadband = spec.deadband
    threshold = spec.threshold or 0.0
    if spec.kind == "low":
        text = f"{spec.metric} below {_g(threshold)}"
        clears = f" (clears above {_g(threshold + deadband)})" if deadband else ""
    elif spec.kind == "high":
        text = f"{spec.metric} above {_g(threshold)}"
        clears = f" (clears below {_g(threshold - deadband)})" if deadband else ""
    elif spec.kind == "rate":
        window = _duration(spec.window_s or DEFAULT_WINDOW_S)
        text = f"{spec.metric} changing faster than {_g(threshold)}/min over {window}"
        clears = f" (clears below {_g(threshold - deadband)}/min)" if deadband else ""
    else:
        text = f"no {spec.metric} reading for {_duration(spec.stale_after_s or 0.0)}"
        clears = ""
    delay = f" for {_duration(spec.delay_s)}" if spec.delay_s else ""
    return text + delay + clears
