"""Field reports as the gateway stores them: rows in `field_reports`, in the test's
transaction."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import sqlalchemy as sa

T0 = datetime(2026, 11, 24, 9, 0, tzinfo=UTC)

StoreReport = Callable[..., str]


@pytest.fixture
def store_report(connection: sa.Connection) -> StoreReport:
    """Store a report as the gateway would (INSERT ... ON CONFLICT DO NOTHING); returns its
    public id."""
    counter = iter(range(10_000))

    def store(
        crew_id: str = "C-REPORTS",
        kind: str = "leak",
        *,
        ts: datetime | None = None,
        asset_id: str | None = None,
        note: str | None = None,
        changes: dict[str, Any] | None = None,
        photos: list[str] | None = None,
        lon: float = 24.94,
        lat: float = 60.17,
    ) -> str:
        at = ts or T0 + timedelta(seconds=next(counter))
        connection.execute(
            sa.text(
                "INSERT INTO field_reports (crew_id, ts, kind, lat, lon, asset_id, note, "
                "changes, photos) VALUES (:crew, :ts, :kind, :lat, :lon, :asset, :note, "
                "CAST(:changes AS jsonb), :photos) ON CONFLICT DO NOTHING"
            ),
            {
                "crew": crew_id,
                "ts": at,
                "kind": kind,
                "lat": lat,
                "lon": lon,
                "asset": asset_id,
                "note": note,
                "changes": json.dumps(changes or {}),
                "photos": photos or [],
            },
        )
        return str(
            connection.execute(
                sa.text(
                    "SELECT public_id FROM field_reports WHERE crew_id = :c AND ts = :t "
                    "AND kind = :k"
                ),
                {"c": crew_id, "t": at, "k": kind},
            ).scalar_one()
        )

    return store
