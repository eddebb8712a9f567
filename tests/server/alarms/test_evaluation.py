"""The pure evaluation: rule, previous state, readings -> new state and steps (no database)."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

from fieldline.server.alarms.evaluation import Sample, State, evaluate
from fieldline.server.alarms.rules import RuleSpec, check_rule

T0 = datetime(2026, 11, 27, 8, 0, tzinfo=UTC)
LOW = check_rule(
    {"metric": "pressure_kpa", "kind": "low", "threshold": 250, "deadband": 20,
     "delay_s": 60, "severity": "high"}
)  # fmt: skip


def series(values: list[float | None], every_s: float = 10, start: datetime = T0) -> list[Sample]:
    return [Sample(start + timedelta(seconds=i * every_s), v) for i, v in enumerate(values)]


def run(rule: RuleSpec, samples: list[Sample], now: datetime | None = None, state=None):  # type: ignore[no-untyped-def]
    state = state or State.start(T0 - timedelta(seconds=1))
    return evaluate(rule, state, samples, now or max(s.ts for s in samples))


def actions(result) -> list[str]:  # type: ignore[no-untyped-def]
    return [step.action for step in result.steps]


def test_low_pressure_raises_once_and_clears_only_above_threshold_plus_deadband() -> None:
    # 300 normal, then 80 s below 250 (raised after 60 s), then 260 (inside the deadband:
    # still raised), then 275 (above 270: cleared).
    values = [300, 300, 240, 235, 230, 230, 232, 231, 240, 238, 260, 262, 265, 275, 280]
    result = run(LOW, series(values))
    assert actions(result) == ["raise", "clear"]
    raised, cleared = result.steps
    assert raised.since == T0 + timedelta(seconds=20)  # the first reading below 250
    assert raised.at == T0 + timedelta(seconds=80)  # 60 s later: the delay ran out
    assert raised.value == 240  # the reading at 80 s
    assert cleared.at == T0 + timedelta(seconds=130) and cleared.value == 275
    assert not result.state.open and result.state.since is None


def test_a_value_inside_the_deadband_does_not_clear() -> None:
    result = run(LOW, series([240] * 8 + [250.5, 265, 270, 269]))
    assert actions(result) == ["raise"]
    assert result.state.open


def test_a_dip_shorter_than_the_delay_raises_nothing() -> None:
    # 50 s below (readings at 20..70 s), then back: the delay of 60 s never ran out.
    result = run(LOW, series([300, 300, 240, 240, 240, 240, 240, 240, 300, 300]))
    assert actions(result) == []
    assert result.state.since is None and not result.state.open


def test_the_condition_coming_back_after_clearing_raises_again() -> None:
    values = [240] * 8 + [300] * 3 + [240] * 8
    assert actions(run(LOW, series(values))) == ["raise", "clear", "raise"]


def test_readings_in_any_order_are_judged_by_their_time() -> None:
    ordered = series([300, 240, 240, 240, 240, 240, 240, 240, 260, 280])
    shuffled = ordered[:]
    random.Random(4).shuffle(shuffled)
    assert run(LOW, shuffled).steps == run(LOW, ordered).steps


def test_split_over_runs_gives_the_same_steps_as_one_run() -> None:
    samples = series([300, 240, 240, 240, 240, 240, 240, 240, 260, 280, 240, 240])
    whole = run(LOW, samples)
    state = State.start(T0 - timedelta(seconds=1))
    steps = []
    for chunk in (samples[:3], samples[3:7], samples[7:]):
        result = evaluate(LOW, state, chunk, chunk[-1].ts)
        state = result.state
        steps += result.steps
    assert steps == list(whole.steps)
    assert state == whole.state


def test_readings_judged_already_are_skipped_redelivery_changes_nothing() -> None:
    samples = series([240] * 10)
    first = run(LOW, samples)
    again = evaluate(LOW, first.state, samples, samples[-1].ts)
    assert actions(first) == ["raise"]
    assert again.steps == () and again.skipped == len(samples)
    assert again.state == first.state


def test_readings_after_now_wait_for_a_later_run() -> None:
    samples = series([240] * 10)
    early = run(LOW, samples, now=T0 + timedelta(seconds=30))
    assert actions(early) == [] and early.state.judged_to == T0 + timedelta(seconds=30)
    later = evaluate(LOW, early.state, samples, samples[-1].ts)
    assert actions(later) == ["raise"]


def test_high_clears_below_threshold_minus_deadband() -> None:
    high = check_rule(
        {"metric": "pressure_kpa", "kind": "high", "threshold": 700, "deadband": 20,
         "severity": "medium"}
    )  # fmt: skip
    result = run(high, series([690, 710, 705, 690, 681, 679]))
    assert actions(result) == ["raise", "clear"]
    assert result.steps[0].value == 710 and result.steps[1].value == 679


def test_null_readings_say_nothing_about_a_level() -> None:
    result = run(LOW, series([240, None, 240, None, 240, 240, 240, 240]))
    assert actions(result) == ["raise"]  # 70 s below, the nulls between change nothing


def test_rate_of_change_per_minute_over_the_window() -> None:
    rate = check_rule(
        {"metric": "pressure_kpa", "kind": "rate", "threshold": 30, "deadband": 10,
         "window_s": 60, "severity": "critical"}
    )  # fmt: skip
    # Steady at 500, then falling 10 kPa every 10 s (60 kPa/min), then steady again.
    values = [500.0] * 7 + [490, 480, 470, 460, 450, 440] + [440.0] * 8
    result = run(rate, series(values))
    assert actions(result) == ["raise", "clear"]
    raised, cleared = result.steps
    # Raised at the first reading whose change over the last minute tops 30/min: at 90 s the
    # window starts at 500 (30 s) and ends at 470, -30/min, which does not top it; at 100 s
    # 500 (40 s) -> 460 is -40/min.
    assert raised.at == T0 + timedelta(seconds=100) and raised.measured == -40
    # Cleared once the change over the window is below 20/min.
    assert abs(cleared.measured or 0) < 20
    assert all(s.ts >= result.state.judged_to - timedelta(seconds=60) for s in result.state.recent)


def test_a_single_reading_in_the_window_measures_no_rate() -> None:
    rate = check_rule(
        {"metric": "flow_lps", "kind": "rate", "threshold": 1, "window_s": 60,
         "severity": "low"}
    )  # fmt: skip
    result = run(rate, series([10, 200, 10], every_s=120))
    assert actions(result) == []


STALE = check_rule(
    {"metric": "pressure_kpa", "kind": "stale", "stale_after_s": 600, "severity": "medium"}
)


def test_stale_after_no_reading_for_the_set_time() -> None:
    samples = series([500, 500])  # the last at T0 + 10 s
    quiet = run(STALE, samples, now=T0 + timedelta(seconds=609))
    assert actions(quiet) == []
    late = evaluate(STALE, quiet.state, [], T0 + timedelta(seconds=615))
    assert actions(late) == ["raise"]
    assert late.steps[0].at == T0 + timedelta(seconds=610)  # when the silence ran out
    assert late.steps[0].measured == 600
    # Nothing is raised twice while it stays quiet; a reading with a value clears it.
    again = evaluate(STALE, late.state, [], T0 + timedelta(seconds=900))
    assert actions(again) == []
    back = evaluate(STALE, again.state, series([500], start=T0 + timedelta(seconds=950)),
                    T0 + timedelta(seconds=960))  # fmt: skip
    assert actions(back) == ["clear"] and back.steps[0].at == T0 + timedelta(seconds=950)


def test_a_station_that_never_reports_is_stale_from_the_start_of_the_watch() -> None:
    state = State.start(T0)
    result = evaluate(STALE, state, [], T0 + timedelta(minutes=11))
    assert actions(result) == ["raise"] and result.steps[0].at == T0 + timedelta(minutes=10)


def test_a_death_makes_it_stale_at_once_and_the_next_value_clears() -> None:
    result = run(STALE, series([500, None]), now=T0 + timedelta(seconds=11))
    assert actions(result) == ["raise"] and result.steps[0].at == T0 + timedelta(seconds=10)
    back = evaluate(STALE, result.state, series([501], start=T0 + timedelta(seconds=30)),
                    T0 + timedelta(seconds=31))  # fmt: skip
    assert actions(back) == ["clear"]


def test_stale_with_a_delay_waits_for_it() -> None:
    delayed = check_rule(
        {"metric": "pressure_kpa", "kind": "stale", "stale_after_s": 600, "delay_s": 120,
         "severity": "medium"}
    )  # fmt: skip
    died = run(delayed, series([500, None]), now=T0 + timedelta(seconds=100))
    assert actions(died) == []
    # Back within the delay: nothing raised at all.
    back = evaluate(delayed, died.state, series([500], start=T0 + timedelta(seconds=110)),
                    T0 + timedelta(seconds=400))  # fmt: skip
    assert actions(back) == []
    # Died again and stayed dead past the delay.
    dead = evaluate(delayed, back.state, series([None], start=T0 + timedelta(seconds=500)),
                    T0 + timedelta(seconds=700))  # fmt: skip
    assert actions(dead) == ["raise"] and dead.steps[0].at == T0 + timedelta(seconds=620)


def test_a_gap_in_a_backlog_raises_and_clears_by_reading_time() -> None:
    samples = series([500]) + series([500], start=T0 + timedelta(minutes=25))
    result = run(STALE, samples, now=T0 + timedelta(minutes=26))
    assert actions(result) == ["raise", "clear"]
    assert [s.at for s in result.steps] == [T0 + timedelta(minutes=10), T0 + timedelta(minutes=25)]
