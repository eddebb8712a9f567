from __future__ import annotations

from datetime import UTC, datetime

import pytest

from fieldline.device_gateway.decoders import owntracks
from fieldline.device_gateway.messages import DecodeError, DeviceEvent, Fix
from tests.device_gateway.decoders.payloads import sample

TOPIC = "owntracks/anna/pixel7"


def test_android_location_converts_units_and_keeps_both_times() -> None:
    (fix,) = owntracks.decode(TOPIC, sample("owntracks", "location_android.json"))
    assert isinstance(fix, Fix)
    assert fix.crew_id == ""  # bound to a crew later, by the pipeline
    assert fix.device == "owntracks:anna/pixel7"
    assert fix.fix_time == datetime.fromtimestamp(1763899998, UTC)
    assert fix.device_time == datetime.fromtimestamp(1763900000, UTC)  # created_at
    assert (fix.lat, fix.lon, fix.acc_m, fix.alt_m, fix.batt_pct) == (60.1699, 24.9384, 12, 21, 78)
    assert fix.speed_mps == pytest.approx(10.0)  # 36 km/h


def test_ios_location_with_course_and_extended_data() -> None:
    (fix,) = owntracks.decode(TOPIC, sample("owntracks", "location_ios.json"))
    assert isinstance(fix, Fix)
    assert fix.heading_deg == 270
    assert fix.speed_mps == pytest.approx(4 / 3.6)
    assert fix.device_time is None


def test_zero_valued_elements_are_absent_not_zero() -> None:
    # The apps leave out acc, alt, cog, vel when they are zero.
    (fix,) = owntracks.decode(TOPIC, sample("owntracks", "location_minimal.json"))
    assert isinstance(fix, Fix)
    assert (fix.acc_m, fix.speed_mps, fix.heading_deg, fix.alt_m) == (None, None, None, None)


def test_transition_on_the_event_topic() -> None:
    (event,) = owntracks.decode(TOPIC + "/event", sample("owntracks", "transition.json"))
    assert isinstance(event, DeviceEvent)
    assert (event.source, event.kind) == ("owntracks:anna/pixel7", "transition")
    assert event.detail["event"] == "enter" and event.detail["desc"] == "Depot"
    assert event.ts == datetime.fromtimestamp(1763900300, UTC)


def test_last_will_is_an_offline_event() -> None:
    (event,) = owntracks.decode(TOPIC, sample("owntracks", "lwt.json"))
    assert isinstance(event, DeviceEvent)
    assert event.kind == "offline"


def test_card_is_valid_and_carries_nothing_to_store() -> None:
    assert owntracks.decode(TOPIC, sample("owntracks", "card.json")) == []


@pytest.mark.parametrize(
    ("topic", "payload", "reason"),
    [
        (TOPIC, b'{"lat": 60, "lon": 24, "tst": 1}', "missing_field"),
        (TOPIC, b'{"_type": "location", "lat": 60, "lon": 24}', "missing_field"),
        (TOPIC, b'{"_type": "location", "lat": "60", "lon": 24, "tst": 1}', "bad_field"),
        (TOPIC, b'{"_type": "location", "lat": 60, "lon": 24, "tst": "now"}', "bad_time"),
        (TOPIC, b'{"_type": "encrypted", "data": "abc"}', "unsupported_type"),
        (TOPIC, b"[1, 2]", "not_object"),
        (TOPIC, b"\xff\xfe", "not_utf8"),
        ("owntracks/anna", b'{"_type": "lwt", "tst": 1}', "bad_topic"),
    ],
)
def test_unusable_payloads_name_their_reason(topic: str, payload: bytes, reason: str) -> None:
    with pytest.raises(DecodeError) as caught:
        owntracks.decode(topic, payload)
    assert caught.value.reason == reason
