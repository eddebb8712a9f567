"""Batched, idempotent writes: COPY (binary) into a temporary table, then
`INSERT ... SELECT ... ON CONFLICT DO NOTHING`, all tables of a batch in one transaction.

A redelivered message meets its own rows' keys and writes nothing. The rows that were really
inserted come back (RETURNING), so that only new positions, readings and dead letters are
announced live.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import psycopg
from psycopg import sql
from psycopg.types.json import Jsonb

from fieldline.device_gateway.messages import Fix
from fieldline.device_gateway.pipeline import DeadLetterEntry, Outcome
from fieldline.server.live.services import dead_letter_event

FIX_COLUMNS = (
    ("crew_id", "text"),
    ("device", "text"),
    ("fix_time", "timestamptz"),
    ("lat", "float8"),
    ("lon", "float8"),
    ("acc_m", "float8"),
    ("speed_mps", "float8"),
    ("heading_deg", "float8"),
    ("alt_m", "float8"),
    ("batt_pct", "float8"),
    ("device_time", "timestamptz"),
    ("received_at", "timestamptz"),
)


@dataclass(frozen=True)
class Table:
    name: str
    columns: tuple[tuple[str, str], ...]
    rows: Callable[[Outcome], list[tuple[Any, ...]]]
    returning: tuple[str, ...] = ()  # the key columns of inserted rows to report


def _names(table: Table) -> sql.Composable:
    return sql.SQL(", ").join(sql.Identifier(name) for name, _ in table.columns)


def _incoming(table: Table) -> sql.Identifier:
    return sql.Identifier(f"incoming_{table.name}")


def _fix_row(fix: Fix, received_at: Any) -> tuple[Any, ...]:
    return (
        fix.crew_id,
        fix.device,
        fix.fix_time,
        fix.lat,
        fix.lon,
        fix.acc_m,
        fix.speed_mps,
        fix.heading_deg,
        fix.alt_m,
        fix.batt_pct,
        fix.device_time,
        received_at,
    )


TABLES = (
    Table(
        "positions",
        FIX_COLUMNS,
        lambda o: [_fix_row(f, o.received_at) for f in o.fixes],
        returning=("crew_id", "device", "fix_time"),
    ),
    Table(
        "quarantined_fixes",
        (*FIX_COLUMNS, ("reason", "text")),
        lambda o: [(*_fix_row(f, o.received_at), reason) for f, reason in o.quarantined],
    ),
    Table(
        "telemetry",
        (
            ("station_id", "text"),
            ("metric", "text"),
            ("ts", "timestamptz"),
            ("value", "float8"),
            ("received_at", "timestamptz"),
        ),
        lambda o: [(r.station_id, r.metric, r.ts, r.value, o.received_at) for r in o.readings],
        returning=("station_id", "metric", "ts"),
    ),
    Table(
        "meter_readings",
        (
            ("meter_id", "text"),
            ("ts", "timestamptz"),
            ("volume_m3", "float8"),
            ("received_at", "timestamptz"),
        ),
        lambda o: [(m.meter_id, m.ts, m.volume_m3, o.received_at) for m in o.meter_readings],
    ),
    Table(
        "task_status_events",
        (
            ("crew_id", "text"),
            ("task_id", "text"),
            ("status", "text"),
            ("ts", "timestamptz"),
            ("note", "text"),
            ("lat", "float8"),
            ("lon", "float8"),
            ("received_at", "timestamptz"),
        ),
        lambda o: [
            (t.crew_id, t.task_id, t.status, t.ts, t.note, t.lat, t.lon, o.received_at)
            for t in o.task_events
        ],
        returning=("crew_id", "task_id", "status", "ts"),  # handed over to the tasks if new
    ),
    Table(
        "field_reports",
        (
            ("crew_id", "text"),
            ("ts", "timestamptz"),
            ("kind", "text"),
            ("lat", "float8"),
            ("lon", "float8"),
            ("asset_id", "text"),
            ("note", "text"),
            ("changes", "jsonb"),
            ("photos", "text[]"),
            ("received_at", "timestamptz"),
        ),
        lambda o: [
            (
                r.crew_id,
                r.ts,
                r.kind,
                r.lat,
                r.lon,
                r.asset_id,
                r.note,
                Jsonb(r.changes),
                list(r.photos),
                o.received_at,
            )
            for r in o.reports
        ],
        # The id the new report goes out live under (a redelivery returns nothing).
        returning=("crew_id", "ts", "kind", "public_id"),
    ),
    Table(
        "device_events",
        (
            ("source", "text"),
            ("kind", "text"),
            ("ts", "timestamptz"),
            ("detail", "jsonb"),
            ("received_at", "timestamptz"),
        ),
        lambda o: [
            (e.source, e.kind, e.ts, Jsonb(e.detail), o.received_at) for e in o.device_events
        ],
    ),
    Table(
        "dead_letters",
        (
            ("received_at", "timestamptz"),
            ("topic", "text"),
            ("reason", "text"),
            ("detail", "text"),
            ("payload", "bytea"),
            ("payload_bytes", "int4"),
            ("digest", "text"),
        ),
        lambda o: [
            (d.received_at, d.topic, d.reason, d.detail, d.payload, d.payload_bytes, d.digest)
            for d in o.dead_letters
        ],
        returning=("digest",),
    ),
)


@dataclass
class Written:
    """Keys of the rows a batch really inserted, by table, and rows per table."""

    inserted: dict[str, set[tuple[Any, ...]]] = field(default_factory=dict)
    counts: dict[str, int] = field(default_factory=dict)

    def is_new(self, table: str, key: tuple[Any, ...]) -> bool:
        return key in self.inserted.get(table, set())


def _clean_text(value: Any) -> Any:
    # A dead letter keeps what it can of a topic or detail PostgreSQL text would refuse.
    return value.replace("\x00", "\\0") if isinstance(value, str) else value


class Store:
    """One database connection, used by one thread."""

    def __init__(self, conninfo: str) -> None:
        self.conninfo = conninfo
        self._connection: psycopg.Connection[Any] | None = None

    def connection(self) -> psycopg.Connection[Any]:
        if self._connection is None or self._connection.closed:
            self._connection = psycopg.connect(self.conninfo, options="-c timezone=UTC")
            with self._connection.cursor() as cursor:
                for table in TABLES:
                    # Temporary and per connection; emptied at each commit.
                    cursor.execute(
                        sql.SQL(
                            "CREATE TEMP TABLE {} ON COMMIT DELETE ROWS AS "
                            "SELECT {} FROM {} WITH NO DATA"
                        ).format(_incoming(table), _names(table), sql.Identifier(table.name))
                    )
            self._connection.commit()
        return self._connection

    def close(self) -> None:
        if self._connection is not None:
            self._connection.close()
            self._connection = None

    def write(self, outcomes: Sequence[Outcome]) -> Written:
        """Write every outcome in one transaction; raises psycopg.Error with nothing written."""
        connection = self.connection()
        written = Written()
        try:
            with connection.cursor() as cursor:
                for table in TABLES:
                    rows = [row for outcome in outcomes for row in table.rows(outcome)]
                    if rows:
                        written.counts[table.name] = len(rows)
                        inserted = self._upsert(cursor, table, rows)
                        if table.returning:
                            written.inserted[table.name] = inserted
            connection.commit()
        except psycopg.Error:
            if not connection.closed:
                connection.rollback()
            raise
        return written

    def _upsert(
        self, cursor: psycopg.Cursor[Any], table: Table, rows: list[tuple[Any, ...]]
    ) -> set[tuple[Any, ...]]:
        names = _names(table)
        statement = sql.SQL("COPY {} ({}) FROM STDIN (FORMAT BINARY)")
        # Only text columns can hold a NUL; a row is copied cleaned only when one does.
        texts = [i for i, (_, kind) in enumerate(table.columns) if kind == "text"]
        with cursor.copy(statement.format(_incoming(table), names)) as copy:
            copy.set_types([kind for _, kind in table.columns])
            write_row = copy.write_row
            for row in rows:
                for i in texts:
                    value = row[i]
                    if isinstance(value, str) and "\x00" in value:
                        row = tuple(_clean_text(v) for v in row)
                        break
                write_row(row)
        returning = sql.SQL(" RETURNING {}").format(
            sql.SQL(", ").join(map(sql.Identifier, table.returning))
        )
        cursor.execute(
            sql.SQL("INSERT INTO {} ({}) SELECT {} FROM {} ON CONFLICT DO NOTHING{}").format(
                sql.Identifier(table.name),
                names,
                names,
                _incoming(table),
                returning if table.returning else sql.SQL(""),
            )
        )
        found = set(cursor.fetchall()) if table.returning else set()
        # The temporary table is emptied at commit; a second batch in one transaction (never
        # done today) would need it emptied here.
        return found


def dead_letter_json(entry: DeadLetterEntry) -> dict[str, Any]:
    return dead_letter_event(
        entry.received_at,
        entry.topic,
        entry.reason,
        entry.detail,
        entry.payload,
        entry.payload_bytes,
    )
