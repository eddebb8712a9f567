"""The handlers before the commit, with an in-memory directory of known devices."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime

import pytest
import sqlalchemy as sa

from fieldline.device_gateway.directory import DatabaseDirectory, DirectoryUnavailable
from fieldline.device_gateway.pipeline import Inbound, Outcome, Pipeline
from fieldline.gis.db import make_sessionmaker
from fieldline.server.crews.services import create_crew
from fieldline.settings import load_settings

NOW = datetime(2026, 11, 23, 12, tzinfo=UTC)


class KnownDevices:
    def crew_mode(self, crew_id: str) -> str | None:
        return {"C-000001": "foot"}.get(crew_id)

    def owntracks_crew(self, identifier: str) -> str | None:
        return {"anna/phone": "C-000001"}.get(identifier)

    def handheld_crew(self, identifier: str) -> str | None:
        return {"tablet-1": "C-000001"}.get(identifier)

    def station(self, name: str) -> str | None:
        return {"S-000001": "S-000001", "PS-KAMPPI": "S-000001"}.get(name)

    def meter(self, meter_id: str) -> bool:
        return meter_id == "M-000001"


def run(topic: str, payload: bytes | str, **overrides: object) -> Outcome:
    settings = load_settings(**overrides)
    body = payload.encode() if isinstance(payload, str) else payload
    return Pipeline(settings, KnownDevices()).process(Inbound(topic, body, NOW))


def reasons(outcome: Outcome) -> list[str]:
    return [d.reason for d in outcome.dead_letters]


def test_owntracks_fix_is_bound_to_its_crew() -> None:
    payload = json.dumps({"_type": "location", "lat": 60.17, "lon": 24.94, "tst": 1795435200})
    outcome = run("owntracks/anna/phone", payload)
    (fix,) = outcome.fixes
    assert (fix.crew_id, fix.device) == ("C-000001", "owntracks:anna/phone")


def test_what_cannot_be_used_is_dead_lettered_with_a_reason() -> None:
    assert reasons(run("owntracks/bob/phone", '{"_type": "lwt", "tst": 1}')) == ["unknown_device"]
    assert reasons(run("fieldline/crews/C-000404/position", '{"ts": 1, "lat": 1, "lon": 1}')) == [
        "unknown_crew"
    ]
    assert reasons(run("fieldline/scada/S-404", '{"ts": 1, "metrics": {"a_kpa": 1}}')) == [
        "unknown_station"
    ]
    assert reasons(run("fieldline/elsewhere", "{}")) == ["unknown_topic"]
    assert reasons(run("owntracks/anna/phone", b"\xff")) == ["not_utf8"]


def test_a_fix_naming_another_crews_handheld_is_dead_lettered() -> None:
    topic = "fieldline/crews/C-000001/position"
    own = run(topic, '{"ts": 1795435200, "lat": 60.17, "lon": 24.94, "device": "tablet-1"}')
    assert [fix.crew_id for fix in own.fixes] == ["C-000001"]
    for field in ("device", "tid"):
        payload = json.dumps({"ts": 1795435200, "lat": 60.17, "lon": 24.94, field: "tablet-9"})
        outcome = run(topic, payload)
        assert outcome.fixes == []
        (letter,) = outcome.dead_letters
        assert letter.reason == "device_not_bound"
        assert "tablet-9 is not bound to C-000001" in letter.detail


def test_oversized_payloads_are_refused_and_kept_capped() -> None:
    outcome = run(
        "owntracks/anna/phone",
        b"x" * 5000,
        gateway_max_payload_bytes=1024,
        deadletter_payload_bytes=100,
    )
    (letter,) = outcome.dead_letters
    assert (letter.reason, len(letter.payload), letter.payload_bytes) == (
        "payload_too_large",
        100,
        5000,
    )


def test_a_station_bound_by_its_scada_name_reads_as_the_station() -> None:
    outcome = run("fieldline/scada/PS-KAMPPI", '{"ts": 1, "metrics": {"pressure_kpa": 401}}')
    assert [r.station_id for r in outcome.readings] == ["S-000001"]


def test_a_filtered_fix_is_quarantined_not_dropped() -> None:
    outcome = run(
        "fieldline/crews/C-000001/position",
        json.dumps({"ts": NOW.isoformat(), "lat": 60.17, "lon": 24.94, "acc_m": 900}),
    )
    assert outcome.fixes == []
    assert [reason for _, reason in outcome.quarantined] == ["accuracy"]


def test_an_unreachable_database_makes_a_message_wait_not_a_dead_letter() -> None:
    # Nothing listens on port 1 of the loopback: the directory cannot load.
    engine = sa.create_engine("postgresql+psycopg://127.0.0.1:1/none", poolclass=sa.NullPool)
    pipeline = Pipeline(load_settings(), DatabaseDirectory(engine))
    fix = json.dumps({"ts": "2026-11-23T11:59:00Z", "lat": 60.17, "lon": 24.94})
    with pytest.raises(DirectoryUnavailable):
        pipeline.process(Inbound("fieldline/crews/C-000001/position", fix.encode(), NOW))


def test_known_names_stay_good_while_the_database_is_away(engine: sa.Engine) -> None:
    with make_sessionmaker(engine)() as session:
        crew = create_crew(session, f"Directory test {uuid.uuid4().hex[:8]}")
        session.commit()
        known = crew.public_id
    try:
        directory = DatabaseDirectory(engine, refresh_s=0.0)
        assert directory.crew_mode(known) == "vehicle"
        directory.engine = sa.create_engine("postgresql+psycopg://127.0.0.1:1/none")
        assert directory.crew_mode(known) == "vehicle"  # a failed refresh keeps what was known
        with pytest.raises(DirectoryUnavailable):
            directory.crew_mode("C-999999")  # an unknown name cannot be judged now
    finally:
        with engine.begin() as connection:
            connection.execute(sa.text("DELETE FROM crews WHERE public_id = :id"), {"id": known})
