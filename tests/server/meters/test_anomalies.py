"""Meter anomalies against the real database: hourly register readings inserted as the gateway
stores them (`meter_readings`, `ON CONFLICT DO NOTHING`) for households that behave in known
ways, then the API asked what it finds. The readings lead up to the real clock, since the view
judges the latest days before today."""

from __future__ import annotations

import math
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from flask.testing import FlaskClient
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.orm import Session

from fieldline.server.meters.services import AnomalyQuery, find_anomalies
from fieldline.server.telemetry.models import MeterReading
from fieldline.settings import Settings

HOUR = timedelta(hours=1)
# Meters of the fixture city: serials, accounts and addresses come from the asset.
STEADY, SPIKE, LEAK, STUCK, REVERSED, SILENT, NEW, REPLACED = (f"M-{n:06d}" for n in range(1, 9))

Use = Callable[[datetime, datetime], float]  # m3 used in the hour starting at (utc, local)


def household(daily_m3: float = 0.3) -> Use:
    """Nothing between midnight and six, the day's use spread over the other hours; days
    vary by up to 10 %."""

    def use(_: datetime, local: datetime) -> float:
        if local.hour < 6:
            return 0.0
        return daily_m3 * (1 + 0.1 * math.sin(local.toordinal())) / 18

    return use


class Street:
    def __init__(self, session: Session, settings: Settings) -> None:
        self.session, self.zone = session, ZoneInfo(settings.timezone)
        self.now = datetime.now(UTC)
        self.today = self.now.astimezone(self.zone).date()

    def midnight(self, days_ago: int) -> datetime:
        day = self.today - timedelta(days=days_ago)
        return datetime.combine(day, datetime.min.time(), self.zone).astimezone(UTC)

    def local(self, days_ago: int, hour: int) -> datetime:
        return self.midnight(days_ago).astimezone(self.zone).replace(hour=hour).astimezone(UTC)

    def meter(
        self,
        meter_id: str,
        use: Use,
        *,
        from_days_ago: int = 34,
        until: datetime | None = None,
        register_at: dict[datetime, float] | None = None,
        every: timedelta = HOUR,
    ) -> None:
        """Readings of a cumulative register, hourly unless `every` says otherwise;
        `register_at` sets it at given hours (a roll-back, a new meter)."""
        at = self.midnight(from_days_ago)
        end = until or self.now  # a reading after today's midnight, whatever the hour
        register = 1234.0
        rows: list[dict[str, Any]] = []
        while at <= end:
            register = (register_at or {}).get(at, register)
            if (at - self.midnight(from_days_ago)) % every == timedelta(0):
                rows.append({"meter_id": meter_id, "ts": at, "volume_m3": register})
            register += use(at, at.astimezone(self.zone))
            at += HOUR
        self.session.execute(insert(MeterReading).values(rows).on_conflict_do_nothing())
        self.session.flush()


@pytest.fixture
def street(session: Session, settings: Settings) -> Street:
    street = Street(session, settings)
    base = household()
    burst = street.local(1, 14)

    def spike(utc: datetime, local: datetime) -> float:
        return base(utc, local) + (1.0 if burst <= utc < burst + 2 * HOUR else 0.0)

    def leak(utc: datetime, local: datetime) -> float:
        return base(utc, local) + 0.006  # 6 L/h, day and night

    stuck_from = street.midnight(3)

    def stuck(utc: datetime, local: datetime) -> float:
        return 0.0 if utc >= stuck_from else base(utc, local)

    street.meter(STEADY, base)
    street.meter(SPIKE, spike)
    street.meter(LEAK, leak)
    street.meter(STUCK, stuck)
    street.meter(REVERSED, base, register_at={street.local(1, 12): 1200.0})
    street.meter(SILENT, base, until=street.midnight(10))
    street.meter(NEW, base, from_days_ago=3)
    street.meter(REPLACED, base, register_at={street.local(1, 12): 0.0})
    return street


def anomalies(client: FlaskClient, query: str = "") -> list[dict[str, Any]]:
    response = client.get(f"/api/v1/meters/anomalies{query}")
    assert response.status_code == 200, response.json
    found: list[dict[str, Any]] = response.json["anomalies"]
    return found


def kinds_by_meter(found: list[dict[str, Any]]) -> dict[str, set[str]]:
    kinds: dict[str, set[str]] = {}
    for finding in found:
        kinds.setdefault(finding["meter_id"], set()).add(finding["kind"])
    return kinds


def test_each_household_is_found_as_what_it_is(street: Street, client: FlaskClient) -> None:
    found = anomalies(client, "?limit=1000")
    kinds = kinds_by_meter(found)
    assert STEADY not in kinds
    assert kinds[SPIKE] == {"spike"}
    assert kinds[LEAK] == {"continuous_flow"}
    assert kinds[STUCK] == {"zero"}
    assert kinds[REVERSED] == {"reverse"}
    assert kinds[SILENT] == {"no_readings"}
    assert kinds[NEW] == {"not_enough_history"}
    assert kinds[REPLACED] == {"replaced"}
    assert set(kinds) == {SPIKE, LEAK, STUCK, REVERSED, SILENT, NEW, REPLACED}
    scores = [finding["score"] for finding in found]
    assert scores == sorted(scores, reverse=True)


def test_a_finding_names_the_meter_the_days_and_why(
    street: Street, client: FlaskClient, fixture_features: Any
) -> None:
    found = {f["meter_id"]: f for f in anomalies(client, "?kind=spike")}
    spike = found[SPIKE]
    asset = next(f for f in fixture_features("meters") if f["id"] == SPIKE)
    assert spike["serial"] == asset["properties"]["serial"]
    assert spike["customer_account"] == asset["properties"]["customer_account"]
    assert spike["service_address"] == asset["properties"]["service_address"]
    assert [spike["lon"], spike["lat"]] == pytest.approx(asset["geometry"]["coordinates"])
    (day,) = spike["days"]
    yesterday = street.today - timedelta(days=1)
    assert day["day"] == yesterday.isoformat()
    usual = 0.3 * (1 + 0.1 * math.sin(yesterday.toordinal()))
    assert day["consumption_m3"] == pytest.approx(usual + 2.0, abs=1e-3)
    assert day["baseline_median_m3"] == pytest.approx(0.3, rel=0.1)
    assert spike["score"] > 1
    assert "burst" in spike["why"] and yesterday.isoformat() in spike["why"]


def test_daily_consumption_is_the_register_across_local_midnights(
    street: Street, session: Session, settings: Settings
) -> None:
    # The stuck meter's zero days and its baseline of whole days of a household.
    (stuck,) = find_anomalies(session, AnomalyQuery(kinds=("zero",)), settings, street.now)
    assert stuck.meter_id == STUCK
    assert [d.day for d in stuck.days] == [street.today - timedelta(days=n) for n in (3, 2, 1)]
    assert all(d.consumption_m3 == 0 for d in stuck.days)
    baseline_days = [street.today - timedelta(days=n) for n in range(31, 3, -1)]
    expected = sorted(0.3 * (1 + 0.1 * math.sin(d.toordinal())) for d in baseline_days)
    median = (expected[13] + expected[14]) / 2
    assert stuck.days[0].baseline_median_m3 == pytest.approx(median, abs=1e-4)


def test_leak_is_judged_from_night_readings(street: Street, client: FlaskClient) -> None:
    (leak,) = anomalies(client, "?kind=continuous_flow")
    assert leak["meter_id"] == LEAK
    assert len(leak["days"]) == 3
    assert all(day["night_least_lph"] == pytest.approx(6.0, abs=0.01) for day in leak["days"])
    assert leak["score"] == pytest.approx(3.0, abs=0.01)


def test_sparse_readings_cannot_show_night_flow(street: Street, client: FlaskClient) -> None:
    # The same leak read every six hours: nights are not judged, so nothing is claimed.
    def leak(utc: datetime, local: datetime) -> float:
        return household()(utc, local) + 0.006

    sparse = "M-000009"
    street.meter(sparse, leak, every=6 * HOUR)
    found = anomalies(client, "?limit=1000")
    assert sparse not in kinds_by_meter(found)


def test_reverse_and_silence_say_what_happened(street: Street, client: FlaskClient) -> None:
    found = {f["meter_id"]: f for f in anomalies(client, "?kind=reverse,no_readings,replaced")}
    assert "went back" in found[REVERSED]["why"]
    assert found[REVERSED]["days"][0]["day"] == (street.today - timedelta(days=1)).isoformat()
    assert "replaced meter" in found[REPLACED]["why"]
    silent = found[SILENT]
    assert silent["last_reading_at"] == street.midnight(10).isoformat()
    assert silent["score"] == pytest.approx(
        (street.now - street.midnight(10)) / timedelta(days=3), rel=0.01
    )


def test_filters_and_since(street: Street, client: FlaskClient) -> None:
    assert {f["kind"] for f in anomalies(client, "?kind=zero,spike")} == {"zero", "spike"}
    strong = anomalies(client, "?min_score=1")
    assert all(f["score"] >= 1 for f in strong)
    assert NEW not in kinds_by_meter(strong)
    assert len(anomalies(client, "?limit=2")) == 2
    # Judged from yesterday alone, the stuck meter has one day of zero: not enough (two).
    since = (street.today - timedelta(days=1)).isoformat()
    assert STUCK not in kinds_by_meter(anomalies(client, f"?since={since}&kind=zero"))
    since = (street.today - timedelta(days=2)).isoformat()
    assert STUCK in kinds_by_meter(anomalies(client, f"?since={since}&kind=zero"))


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ("since=yesterday", "since"),
        ("since=2026-02-30", "since"),
        ("since=2026-11-01T00:00:00", "since"),
        ("since=2001-01-01", "since"),
        ("since=2999-01-01", "since"),
        ("kind=flood", "kind"),
        ("min_score=-1", "min_score"),
        ("min_score=nan", "min_score"),
        ("min_score=high", "min_score"),
        ("limit=0", "limit"),
        ("limit=ten", "limit"),
    ],
)
def test_bad_parameters_are_named(client: FlaskClient, query: str, field: str) -> None:
    response = client.get(f"/api/v1/meters/anomalies?{query}")
    assert response.status_code == 400
    assert response.mimetype == "application/problem+json"
    assert response.json["field"] == field


def test_since_today_is_refused(client: FlaskClient, settings: Settings) -> None:
    today = datetime.now(ZoneInfo(settings.timezone)).date()
    response = client.get(f"/api/v1/meters/anomalies?since={today.isoformat()}")
    assert response.status_code == 400
    assert response.json["field"] == "since"


def test_meter_anomalies_need_the_permission(settings: Settings, connection: Any) -> None:
    from fieldline.server import create_app
    from fieldline.settings import load_settings

    viewer = load_settings(database_url=settings.database_url, anonymous_role="viewer")
    response = create_app(viewer, bind=connection).test_client().get("/api/v1/meters/anomalies")
    assert response.status_code == 403
    assert response.mimetype == "application/problem+json"
