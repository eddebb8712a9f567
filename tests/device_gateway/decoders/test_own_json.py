from __future__ import annotations

from datetime import UTC, datetime

import pytest

from fieldline.device_gateway.decoders import own_json
from fieldline.device_gateway.messages import DecodeError, Fix
from tests.device_gateway.decoders.payloads import sample

TOPIC = "fieldline/crews/C-000007/position"


def test_single_fix() -> None:
    (fix,) = own_json.decode(TOPIC, sample("own_json", "single.json"))
    assert fix == Fix(
        crew_id="C-000007",
        device="handheld",
        fix_time=datetime(2026, 11, 23, 8, 15, 2, tzinfo=UTC),
        lat=60.16952,
        lon=24.93545,
        acc_m=6.5,
        speed_mps=8.3,
        heading_deg=92,
        alt_m=18,
        batt_pct=81,
    )


def test_backlog_in_any_order_with_both_time_forms() -> None:
    fixes = own_json.decode(TOPIC, sample("own_json", "backlog.json"))
    assert [f.fix_time for f in fixes if isinstance(f, Fix)] == [
        datetime.fromtimestamp(1763885760, UTC),
        datetime(2026, 11, 23, 6, 15, tzinfo=UTC),  # +02:00 read as UTC
        datetime.fromtimestamp(1763885700, UTC),
    ]


def test_empty_backlog_is_nothing() -> None:
    assert own_json.decode(TOPIC, b"[]") == []


@pytest.mark.parametrize(
    ("payload", "reason"),
    [
        (b'{"ts": "2026-11-23T08:00:00", "lat": 60, "lon": 24}', "bad_time"),  # no offset
        (b'{"ts": 1e300, "lat": 60, "lon": 24}', "bad_time"),
        (b'{"ts": true, "lat": 60, "lon": 24}', "bad_time"),
        (b'{"ts": 1, "lat": NaN, "lon": 24}', "bad_json"),
        (b'{"ts": 1, "lon": 24}', "missing_field"),
        (b'[{"ts": 1, "lat": 60, "lon": 24}, 5]', "not_object"),
        (b"", "bad_json"),
    ],
)
def test_unusable_payloads_name_their_reason(payload: bytes, reason: str) -> None:
    with pytest.raises(DecodeError) as caught:
        own_json.decode(TOPIC, payload)
    assert caught.value.reason == reason
