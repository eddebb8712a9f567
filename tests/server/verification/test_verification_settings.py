"""FIELDLINE_VERIFICATION_* settings: the least dwell per kind, the radius bounds."""

from __future__ import annotations

import pytest

from fieldline.settings import SettingsError, load_settings


def test_least_dwell_per_kind() -> None:
    assert load_settings().verification_min_dwell == {
        "repair": 900,
        "inspection": 300,
        "valve_operation": 120,
        "meter_reading": 30,
        "checkpoint": 30,
    }
    given = "checkpoint=0, repair=600,inspection=60,valve_operation=60,meter_reading=10"
    found = load_settings(verification_min_dwell_s=given)
    assert found.verification_min_dwell["repair"] == 600
    assert found.verification_min_dwell["checkpoint"] == 0


@pytest.mark.parametrize(
    ("value", "complaint"),
    [
        ("repair=900", "missing inspection"),
        (
            "repair=9,inspection=3,valve_operation=1,meter_reading=3,checkpoint=3,patrol=5",
            "'patrol=5' is not NAME=SECONDS",
        ),
        ("repair=9,repair=8", "repair is given twice"),
        ("repair=-1,inspection=3,valve_operation=1,meter_reading=3,checkpoint=3", "repair"),
    ],
)
def test_a_bad_least_dwell_is_refused(value: str, complaint: str) -> None:
    with pytest.raises(SettingsError, match="FIELDLINE_VERIFICATION_MIN_DWELL_S") as caught:
        load_settings(verification_min_dwell_s=value)
    assert complaint in str(caught.value)


def test_a_cap_below_the_floor_is_refused() -> None:
    with pytest.raises(SettingsError, match="FIELDLINE_VERIFICATION_COVERAGE_RADIUS_CAP_M"):
        load_settings(verification_radius_floor_m=40, verification_coverage_radius_cap_m=30)
    with pytest.raises(SettingsError, match="FIELDLINE_VERIFICATION_MAX_QUARANTINED_SHARE"):
        load_settings(verification_max_quarantined_share=1.5)
