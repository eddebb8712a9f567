"""The alarm evaluation as a pure function: a rule's condition, what was known before, and the
readings of one station's metric that came since, in time order -> what is known now and the
alarms to raise or clear. No database, no clock: `now` comes in.

- low/high: the condition holds below (above) the threshold; once raised, the alarm clears
  only when a reading is above threshold + deadband (below threshold - deadband), so a value
  hovering at the threshold does not raise and clear over and over.
- rate: the change per minute between the oldest reading inside the window and the newest;
  holds when its size exceeds the threshold, clears below threshold - deadband.
- stale: holds from `stale_after_s` after the newest reading with a value, or from a reading
  without one (SCADA's null, Sparkplug's death of the node or device), until a reading with a
  value comes.
- `delay_s`: the condition must hold that long before the alarm is raised: a dip shorter than
  the delay raises nothing. Low/high/rate alarms are raised at the first reading that shows the
  condition has held long enough; a stale one at the moment the delay ran out.

Readings are judged by the time they were measured; one measured at or before the newest one
judged already is a late arrival and is skipped (counted in `skipped`).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, replace
from datetime import datetime, timedelta

from fieldline.server.alarms.rules import DEFAULT_WINDOW_S, RuleSpec


@dataclass(frozen=True)
class Sample:
    ts: datetime
    value: float | None  # None: the source marked the value stale, or died


@dataclass(frozen=True)
class State:
    """What the evaluation remembers of one rule at one station between runs."""

    started_at: datetime  # since when the rule watches this station: a stale rule's baseline
    judged_to: datetime  # readings measured up to here are judged
    alive_at: datetime | None = None  # the newest reading with a value
    dead: bool = False  # the newest reading had none
    since: datetime | None = None  # since when the condition holds; None: it does not
    open: bool = False  # an alarm is raised and not cleared
    recent: tuple[Sample, ...] = ()  # rate: the readings inside the window

    @classmethod
    def start(cls, at: datetime) -> State:
        return cls(started_at=at, judged_to=at)


@dataclass(frozen=True)
class Step:
    action: str  # raise | clear
    at: datetime  # the reading's time (a stale alarm: when its delay ran out)
    value: float | None  # the reading's value
    measured: float | None  # what was compared: the value, the rate per minute, seconds silent
    since: datetime | None = None  # raise: when the condition began to hold


@dataclass(frozen=True)
class Evaluation:
    state: State
    steps: tuple[Step, ...]
    skipped: int  # late readings, measured at or before what was judged already


def evaluate(rule: RuleSpec, state: State, samples: Iterable[Sample], now: datetime) -> Evaluation:
    """Judge `samples` (any order; those after `now` are left for a later run) against `rule`
    from `state`, and the passing of time up to `now` for a stale rule."""
    ordered = sorted(samples, key=lambda sample: sample.ts)
    steps: list[Step] = []
    skipped = 0
    previous: datetime | None = None
    for sample in ordered:
        if sample.ts > now:
            break
        if sample.ts <= state.judged_to or sample.ts == previous:
            skipped += 1
            continue
        previous = sample.ts
        if rule.kind == "stale":
            # The silence before this reading; a reading exactly on time is in time.
            state = _silence(rule, state, sample.ts, steps, in_time=True)
            state = _stale(rule, state, sample, steps)
        elif rule.kind == "rate":
            state = _rate(rule, state, sample, steps)
        else:
            state = _level(rule, state, sample, steps)
        state = replace(state, judged_to=sample.ts)
    if rule.kind == "stale":
        state = _silence(rule, state, now, steps)
    if now > state.judged_to:
        # Nothing measured before `now` is still to come, but for late arrivals.
        state = replace(state, judged_to=now)
    return Evaluation(state, tuple(steps), skipped)


def _holds_long_enough(rule: RuleSpec, since: datetime, at: datetime) -> bool:
    return at - since >= timedelta(seconds=rule.delay_s)


def _judge(
    rule: RuleSpec,
    state: State,
    sample: Sample,
    measured: float,
    breach: bool,
    recovered: bool,
    steps: list[Step],
) -> State:
    """The hysteresis shared by low, high and rate: raise after the delay, clear on recovery."""
    if state.open:
        if recovered:
            steps.append(Step("clear", sample.ts, sample.value, measured))
            return replace(state, open=False, since=None)
        return state
    if not breach:
        return replace(state, since=None)  # a dip shorter than the delay is forgotten
    since = state.since or sample.ts
    if _holds_long_enough(rule, since, sample.ts):
        steps.append(Step("raise", sample.ts, sample.value, measured, since))
        return replace(state, open=True, since=since)
    return replace(state, since=since)


def _level(rule: RuleSpec, state: State, sample: Sample, steps: list[Step]) -> State:
    if sample.value is None:
        return replace(state, dead=True)  # says nothing about the level
    value, threshold, deadband = sample.value, rule.threshold or 0.0, rule.deadband
    if rule.kind == "low":
        breach, recovered = value < threshold, value > threshold + deadband
    else:
        breach, recovered = value > threshold, value < threshold - deadband
    state = replace(state, alive_at=sample.ts, dead=False)
    return _judge(rule, state, sample, value, breach, recovered, steps)


def _rate(rule: RuleSpec, state: State, sample: Sample, steps: list[Step]) -> State:
    if sample.value is None:
        return replace(state, dead=True)
    window = timedelta(seconds=rule.window_s or DEFAULT_WINDOW_S)
    recent = tuple(s for s in (*state.recent, sample) if s.ts >= sample.ts - window)
    state = replace(state, alive_at=sample.ts, dead=False, recent=recent)
    oldest = recent[0]
    minutes = (sample.ts - oldest.ts).total_seconds() / 60
    if minutes <= 0 or oldest.value is None:
        return state  # one reading in the window: no change to measure yet
    per_minute = (sample.value - oldest.value) / minutes
    threshold = rule.threshold or 0.0
    breach = abs(per_minute) > threshold
    recovered = abs(per_minute) < threshold - rule.deadband
    return _judge(rule, state, sample, per_minute, breach, recovered, steps)


def _stale(rule: RuleSpec, state: State, sample: Sample, steps: list[Step]) -> State:
    if sample.value is None:
        since = state.since or sample.ts
        state = replace(state, dead=True, since=since)
        return _raise_stale(rule, state, sample.ts, steps)
    if state.open:
        silent = (sample.ts - (state.alive_at or state.started_at)).total_seconds()
        steps.append(Step("clear", sample.ts, sample.value, silent))
    return replace(state, alive_at=sample.ts, dead=False, since=None, open=False)


def _silence(
    rule: RuleSpec, state: State, until: datetime, steps: list[Step], *, in_time: bool = False
) -> State:
    """Time passing without a reading with a value, up to `until` (`in_time`: a reading
    comes at `until`)."""
    if state.since is None:
        last = state.alive_at or state.started_at
        due = last + timedelta(seconds=rule.stale_after_s or 0.0)
        if until < due or (in_time and until == due):
            return state
        state = replace(state, since=due)
    return _raise_stale(rule, state, until, steps)


def _raise_stale(rule: RuleSpec, state: State, until: datetime, steps: list[Step]) -> State:
    if state.open or state.since is None:
        return state
    at = state.since + timedelta(seconds=rule.delay_s)
    if at > until:
        return state
    silent = (at - (state.alive_at or state.started_at)).total_seconds()
    steps.append(Step("raise", at, None, silent, state.since))
    return replace(state, open=True)
