"""The rule checks and the setting's syntax (no database)."""

from __future__ import annotations

import pytest

from fieldline.gis.errors import InvalidField
from fieldline.server.alarms.rules import check_rule, describe, format_term, parse_rules
from fieldline.settings import SettingsError, load_settings


def test_the_setting_syntax_round_trips() -> None:
    text = (
        "pressure_kpa<250:high:deadband=20:delay=60s, pressure_kpa>700:medium,"
        "quality/chlorine_mgl<0.2:high,rate(flow_lps)>30:low:window=2m:deadband=5,"
        "S-000004/stale(pressure_kpa)>15m:critical:delay=30"
    )
    rules = parse_rules(text)
    kinds = [(spec.kind, spec.station, spec.station_kind) for _, spec in rules]
    assert kinds == [
        ("low", None, None),
        ("high", None, None),
        ("low", None, "quality"),
        ("rate", None, None),
        ("stale", "S-000004", None),
    ]
    low = rules[0][1]
    assert (low.threshold, low.deadband, low.delay_s) == (250, 20, 60)
    assert rules[3][1].window_s == 120 and rules[4][1].stale_after_s == 900
    again = parse_rules(",".join(format_term(spec) for _, spec in rules))
    assert [spec for _, spec in again] == [spec for _, spec in rules]
    assert describe(low) == "pressure_kpa below 250 for 1m (clears above 270)"


@pytest.mark.parametrize(
    ("value", "says"),
    [
        ("pressure_kpa<250", "SEVERITY"),
        ("pressure_kpa<abc:high", "not a number"),
        ("pressure_kpa=250:high", "is not METRIC<N"),
        ("pressure_kpa<250:loud", "severity"),
        ("pressure_kpa<250:high:hysteresis=2", "deadband="),
        ("stale(pressure_kpa)>10x:high", "duration"),
        ("rate(flow_lps)>5:low:deadband=5", "deadband"),
        ("S 1/pressure_kpa<1:low", "station"),
        ("pressure_kpa<250:high,pressure_kpa<250.0:high", "twice"),
    ],
)
def test_a_bad_default_stops_start_up_naming_the_term(value: str, says: str) -> None:
    with pytest.raises(SettingsError) as caught:
        load_settings(alarm_rules_default=value)
    assert "FIELDLINE_ALARM_RULES_DEFAULT" in str(caught.value) and says in str(caught.value)


LOW = {"metric": "p", "kind": "low", "threshold": 1, "severity": "low"}
STALE = {"metric": "p", "kind": "stale", "stale_after_s": 60, "severity": "low"}
RATE = {"metric": "p", "kind": "rate", "threshold": 5, "severity": "low"}


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"kind": "low", "threshold": 1, "severity": "high"}, "metric"),
        (LOW | {"metric": "Pressure kPa"}, "metric"),
        (LOW | {"kind": "between"}, "kind"),
        ({"metric": "p", "kind": "low", "severity": "high"}, "threshold"),
        (LOW | {"threshold": "1"}, "threshold"),
        (LOW | {"severity": "urgent"}, "severity"),
        (LOW | {"deadband": -1}, "deadband"),
        ({"metric": "p", "kind": "stale", "severity": "low"}, "stale_after_s"),
        (STALE | {"threshold": 3}, "threshold"),
        (RATE | {"window_s": 0}, "window_s"),
        (LOW | {"delay_s": -5}, "delay_s"),
        (LOW | {"station": "S-1", "station_kind": "flow"}, "station_kind"),
        (LOW | {"colour": "red"}, "colour"),
    ],
)
def test_a_bad_rule_names_the_field(body: dict[str, object], field: str) -> None:
    with pytest.raises(InvalidField) as caught:
        check_rule(body)
    assert caught.value.field == field


def test_a_change_of_kind_drops_what_the_old_kind_needed() -> None:
    low = check_rule(
        {"metric": "p", "kind": "low", "threshold": 1, "deadband": 2, "severity": "low"}
    )
    stale = check_rule({"kind": "stale", "stale_after_s": 300}, low)
    assert (stale.kind, stale.threshold, stale.deadband, stale.stale_after_s) == (
        "stale", None, 0.0, 300
    )  # fmt: skip
