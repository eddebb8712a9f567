"""The handlers before the commit, with an in-memory directory of known devices."""

from __future__ import annotations

import json
from datetime import UTC, datetime

from fieldline.device_gateway.pipeline import Inbound, Outcome, Pipeline
from fieldline.settings import load_settings

NOW = datetime(2026, 11, 23, 12, tzinfo=UTC)


class KnownDevices:
    def crew_mode(self, crew_id: str) -> str | None:
        return {"C-000001": "foot"}.get(crew_id)

    def owntracks_crew(self, identifier: str) -> str | None:
        return {"anna/phone": "C-000001"}.get(identifier)

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
