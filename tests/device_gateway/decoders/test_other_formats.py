"""Task status, field reports, SCADA JSON and meter readings."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from fieldline.device_gateway.decoders import meter, report, scada_json, task_status
from fieldline.device_gateway.messages import (
    DecodeError,
    FieldReport,
    MeterReading,
    Reading,
    TaskStatus,
)
from tests.device_gateway.decoders.payloads import sample


def test_task_status_with_and_without_position() -> None:
    topic = "fieldline/crews/C-000002/tasks/T-000031/status"
    (on_site,) = task_status.decode(topic, sample("task_status", "on_site.json"))
    assert on_site == TaskStatus(
        "C-000002",
        "T-000031",
        "on_site",
        datetime(2026, 11, 23, 9, 41, 10, tzinfo=UTC),
        lat=60.1631,
        lon=24.9408,
    )
    (done,) = task_status.decode(topic, sample("task_status", "completed.json"))
    assert isinstance(done, TaskStatus) and done.note and done.lat is None
    with pytest.raises(DecodeError, match="bad_status"):
        task_status.decode(topic, b'{"status": "lost", "ts": 1}')


def test_field_reports() -> None:
    topic = "fieldline/crews/C-000002/reports"
    (leak,) = report.decode(topic, sample("report", "leak.json"))
    assert isinstance(leak, FieldReport)
    assert (leak.kind, leak.asset_id, leak.photos) == ("leak", "P-000164", ("u-8f3a1c",))
    (fix,) = report.decode(topic, sample("report", "correction.json"))
    assert isinstance(fix, FieldReport) and fix.changes == {"condition": "poor"}
    with pytest.raises(DecodeError, match="bad_kind"):
        report.decode(topic, b'{"kind": "flood", "ts": 1, "lat": 1, "lon": 1}')


def test_scada_readings_one_per_metric_with_stale_as_none() -> None:
    topic = "fieldline/scada/S-000001"
    readings = scada_json.decode(topic, sample("scada_json", "flow_station.json"))
    ts = datetime(2026, 11, 23, 10, tzinfo=UTC)
    assert readings == [
        Reading("S-000001", "flow_lps", ts, 41.7),
        Reading("S-000001", "pressure_kpa", ts, 412.5),
    ]
    stale = scada_json.decode(topic, sample("scada_json", "stale_value.json"))
    assert [r.value for r in stale if isinstance(r, Reading)] == [None, 398.0]
    with pytest.raises(DecodeError, match="bad_metric"):
        scada_json.decode(topic, b'{"ts": 1, "metrics": {"Pressure kPa": 1}}')


def test_meter_reading() -> None:
    (reading,) = meter.decode("fieldline/meters/M-000003/reading", sample("meter", "reading.json"))
    assert reading == MeterReading("M-000003", datetime(2026, 11, 23, tzinfo=UTC), 1532.418)
    with pytest.raises(DecodeError, match="bad_field"):
        meter.decode("fieldline/meters/M-000003/reading", b'{"ts": 1, "volume_m3": -1}')
