from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import sqlalchemy as sa

from fieldline.server.telemetry.history import roll_up
from fieldline.server.telemetry.services import ensure_partitions, prune


def _partitions(connection: sa.Connection, table: str) -> set[str]:
    return set(
        connection.execute(
            sa.text(
                "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
                "WHERE i.inhparent = CAST(:t AS regclass)"
            ),
            {"t": table},
        ).scalars()
    )


def test_partitions_are_made_ahead_and_old_ones_dropped(connection: sa.Connection) -> None:
    today = date(2026, 3, 10)
    ensure_partitions(connection, today)
    assert {"positions_p20260309", "positions_p20260317", "telemetry_p20260310"} <= _partitions(
        connection, "positions"
    ) | _partitions(connection, "telemetry")
    old = datetime(2026, 3, 9, 12, tzinfo=UTC)
    connection.execute(
        sa.text(
            "INSERT INTO positions (crew_id, device, fix_time, lat, lon) "
            "VALUES ('C-X', 'handheld', :t, 60, 24), ('C-X', 'handheld', :d, 60, 24)"
        ),
        {"t": old, "d": datetime(2020, 1, 1, tzinfo=UTC)},  # the second goes to DEFAULT
    )
    roll_up(connection, detail_days=30, today=today + timedelta(days=30))  # before prune drops
    dropped = prune(connection, retention_days=30, today=today + timedelta(days=30))
    # Kept: the days from 30 days before `today` on (2026-03-10 and later).
    assert "positions_p20260309" in dropped and "telemetry_p20260309" in dropped
    assert "positions_p20260310" not in dropped
    remaining: int = connection.execute(
        sa.text("SELECT count(*) FROM positions WHERE crew_id = 'C-X'")
    ).scalar_one()
    assert remaining == 0
