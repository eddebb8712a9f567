"""Sparkplug B through the gateway: the pipeline with an in-memory directory, then end to end
against the real Mosquitto and PostGIS (the gateway fixtures of test_gateway.py), each test
with a Sparkplug group id of its own."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import paho.mqtt.client as mqtt
import pytest
import sqlalchemy as sa
from paho.mqtt.enums import CallbackAPIVersion
from prometheus_client import REGISTRY
from sqlalchemy.orm import Session

from fieldline.device_gateway.decoders.proto import sparkplug_b_pb2 as pb
from fieldline.device_gateway.pipeline import Inbound, Outcome, Pipeline
from fieldline.device_gateway.worker import subscriptions
from fieldline.gis.db import make_sessionmaker
from fieldline.gis.errors import Conflict, InvalidField, NotFound
from fieldline.server import create_app
from fieldline.server.telemetry.services import bind_station
from fieldline.settings import load_settings
from tests.device_gateway.test_gateway import Running, running, wait_for

__all__ = ["running"]  # the gateway fixture, used by the end-to-end tests below

Metric = pb.Payload.Metric
DT = pb.DataType
NOW = datetime(2026, 11, 23, 12, tzinfo=UTC)
STATION = "S-000003"


def payload(seq: int | None, *metrics: Metric, ts: datetime | None = None) -> bytes:
    message = pb.Payload(metrics=metrics)
    if ts is not None:
        message.timestamp = int(ts.timestamp() * 1000)
    if seq is not None:
        message.seq = seq
    return message.SerializeToString()


def nbirth(ts: datetime, bd_seq: int = 1) -> bytes:
    return payload(
        0,
        Metric(name="bdSeq", datatype=DT.UInt64, long_value=bd_seq),
        Metric(name="Node Control/Rebirth", datatype=DT.Boolean, boolean_value=False),
        Metric(name="Outlet Pressure", alias=1, datatype=DT.Double, double_value=412.5),
        Metric(name="Pump Running", alias=2, datatype=DT.Boolean, boolean_value=True),
        Metric(name="Firmware", alias=3, datatype=DT.String, string_value="4.2.1"),
        ts=ts,
    )


def ndata(seq: int, ts: datetime, pressure: float) -> bytes:
    return payload(seq, Metric(alias=1, datatype=DT.Double, double_value=pressure), ts=ts)


def ndeath(ts: datetime, bd_seq: int = 1) -> bytes:
    return payload(None, Metric(name="bdSeq", datatype=DT.UInt64, long_value=bd_seq), ts=ts)


def skipped_count(reason: str) -> float:
    labels = {"reason": reason}
    name = "fieldline_gateway_sparkplug_skipped_metrics_total"
    return REGISTRY.get_sample_value(name, labels) or 0.0


def rebirths_sent() -> float:
    name = "fieldline_gateway_sparkplug_rebirth_requests_total"
    return REGISTRY.get_sample_value(name, {"reason": "no_birth"}) or 0.0


# -- the pipeline ------------------------------------------------------------------------------


class BoundEdge:
    """Only `spb:plant/edge-1` is bound (to S-000003)."""

    def crew_mode(self, crew_id: str) -> str | None:
        return None

    def owntracks_crew(self, identifier: str) -> str | None:
        return None

    def handheld_crew(self, identifier: str) -> str | None:
        return None

    def station(self, name: str) -> str | None:
        return {"spb:plant/edge-1": STATION}.get(name)

    def meter(self, meter_id: str) -> bool:
        return False


@pytest.fixture
def pipeline() -> Pipeline:
    return Pipeline(load_settings(), BoundEdge())


def feed(pipeline: Pipeline, topic: str, body: bytes) -> Outcome:
    return pipeline.process(Inbound(topic, body, NOW))


def test_one_session_per_pipeline_keeps_aliases_between_messages(pipeline: Pipeline) -> None:
    feed(pipeline, "spBv1.0/plant/NBIRTH/edge-1", nbirth(NOW))
    outcome = feed(pipeline, "spBv1.0/plant/NDATA/edge-1", ndata(1, NOW, 415.0))
    assert [(r.station_id, r.metric, r.value) for r in outcome.readings] == [
        (STATION, "Outlet Pressure", 415.0)
    ]
    # Another pipeline (another worker) never saw the birth.
    other = Pipeline(load_settings(), BoundEdge())
    late = feed(other, "spBv1.0/plant/NDATA/edge-1", ndata(2, NOW, 416.0))
    assert late.readings == []
    assert [c.topic for c in late.commands] == ["spBv1.0/plant/NCMD/edge-1"]


def test_a_birth_is_stored_as_an_event_and_its_skipped_metrics_are_counted(
    pipeline: Pipeline,
) -> None:
    before = skipped_count("not_numeric:String")
    outcome = feed(pipeline, "spBv1.0/plant/NBIRTH/edge-1", nbirth(NOW))
    assert sorted(r.metric for r in outcome.readings) == ["Outlet Pressure", "Pump Running"]
    (event,) = outcome.device_events
    assert (event.source, event.kind) == ("spb:plant/edge-1", "birth")
    assert skipped_count("not_numeric:String") == before + 1


def test_a_rebirth_request_becomes_a_command_and_an_event_without_bytes(
    pipeline: Pipeline,
) -> None:
    outcome = feed(pipeline, "spBv1.0/plant/NDATA/edge-9", ndata(4, NOW, 1.0))
    (command,) = outcome.commands
    assert (command.topic, command.reason) == ("spBv1.0/plant/NCMD/edge-9", "no_birth")
    request = pb.Payload.FromString(command.payload)
    assert [(m.name, m.boolean_value) for m in request.metrics] == [("Node Control/Rebirth", True)]
    (event,) = outcome.device_events
    assert event.kind == "rebirth_needed"
    json.dumps(event.detail)  # stored as JSON: no bytes left in it
    assert outcome.dead_letters == []


def test_a_death_marks_the_bound_station_metrics_stale(pipeline: Pipeline) -> None:
    feed(pipeline, "spBv1.0/plant/NBIRTH/edge-1", nbirth(NOW))
    died = NOW + timedelta(minutes=1)
    outcome = feed(pipeline, "spBv1.0/plant/NDEATH/edge-1", ndeath(died))
    assert [(e.kind, e.ts) for e in outcome.device_events] == [("death", died)]
    assert sorted((r.station_id, r.metric, r.ts, r.value) for r in outcome.readings) == [
        (STATION, "Firmware", died, None),
        (STATION, "Outlet Pressure", died, None),
        (STATION, "Pump Running", died, None),
    ]


def test_unbound_edges_are_dead_lettered_as_unknown_station(pipeline: Pipeline) -> None:
    for topic, body in (
        ("spBv1.0/plant/NBIRTH/edge-2", nbirth(NOW)),
        ("spBv1.0/plant/NDATA/edge-2", ndata(1, NOW, 3.0)),
        ("spBv1.0/plant/NDEATH/edge-2", ndeath(NOW)),
    ):
        outcome = feed(pipeline, topic, body)
        assert [d.reason for d in outcome.dead_letters] == ["unknown_station"], topic
        assert outcome.readings == [] and outcome.device_events == []


def test_only_the_sparkplug_worker_subscribes_plainly_to_sparkplug() -> None:
    with_sparkplug = subscriptions("g", sparkplug=True)
    without = subscriptions("g", sparkplug=False)
    assert "spBv1.0/#" in with_sparkplug
    assert not any("spBv1.0" in topic for topic in without)
    assert set(with_sparkplug) - set(without) == {"spBv1.0/#"}
    assert all(t.startswith("$share/g/") for t in without)


# -- binding a Sparkplug identity to a station ---------------------------------------------------


def test_bind_station_binds_once_and_refuses_what_it_cannot(session: Session) -> None:
    binding = bind_station(session, STATION, "spb:plant/edge-1")
    assert bind_station(session, STATION, "spb:plant/edge-1") is binding
    with pytest.raises(Conflict):
        bind_station(session, "S-000001", "spb:plant/edge-1")
    with pytest.raises(NotFound):
        bind_station(session, "S-999999", "spb:plant/edge-2")
    with pytest.raises(InvalidField) as error:
        bind_station(session, STATION, " ")
    assert error.value.field == "source"


# -- end to end ----------------------------------------------------------------------------------


@pytest.fixture
def group(engine: sa.Engine) -> Iterator[str]:
    """A Sparkplug group of its own whose `edge-1` is bound to S-000003; bound (committed)
    before the gateway starts, so that its directory knows the binding."""
    name = f"t{uuid.uuid4().hex[:10]}"
    with make_sessionmaker(engine)() as session:
        bind_station(session, STATION, f"spb:{name}/edge-1")
        session.commit()
    try:
        yield name
    finally:
        with engine.begin() as c:
            c.execute(
                sa.text("DELETE FROM station_bindings WHERE source LIKE :s"), {"s": f"spb:{name}/%"}
            )
            c.execute(
                sa.text("DELETE FROM device_events WHERE source LIKE :s"), {"s": f"spb:{name}/%"}
            )
            c.execute(sa.text("DELETE FROM dead_letters WHERE topic LIKE :t"), {"t": f"%/{name}/%"})
            c.execute(
                sa.text("DELETE FROM telemetry WHERE station_id = :s AND received_at >= :t"),
                {"s": STATION, "t": datetime.now(UTC) - timedelta(hours=1)},
            )


def device_events(engine: sa.Engine, group: str) -> list[Any]:
    with engine.connect() as c:
        return list(
            c.execute(
                sa.text("SELECT source, kind, detail FROM device_events WHERE source LIKE :s"),
                {"s": f"spb:{group}/%"},
            )
        )


def test_birth_and_data_of_a_bound_edge_are_station_telemetry(
    group: str, running: Running, engine: sa.Engine, connection: sa.Connection
) -> None:
    born = datetime.now(UTC).replace(microsecond=0) - timedelta(seconds=10)
    later = born + timedelta(seconds=5)
    running.publish(f"spBv1.0/{group}/NBIRTH/edge-1", nbirth(born))
    running.publish(f"spBv1.0/{group}/NDATA/edge-1", ndata(1, later, 415.25))

    app = create_app(running.settings, bind=connection)
    client = app.test_client()

    def readings() -> list[dict[str, Any]]:
        query = {"since": born.isoformat(), "until": (later + timedelta(seconds=1)).isoformat()}
        body = client.get(f"/api/v1/stations/{STATION}/telemetry", query_string=query)
        found: list[dict[str, Any]] = body.get_json()["readings"]
        return found if len(found) == 3 else []

    assert wait_for(readings) == [
        {"metric": "Outlet Pressure", "ts": born.isoformat(), "value": 412.5},
        {"metric": "Pump Running", "ts": born.isoformat(), "value": 1.0},
        {"metric": "Outlet Pressure", "ts": later.isoformat(), "value": 415.25},
    ]
    (birth,) = [e for e in device_events(engine, group) if e.kind == "birth"]
    assert birth.source == f"spb:{group}/edge-1"
    assert birth.detail["metrics"]["Outlet Pressure"] == "Double"


def test_data_before_a_birth_asks_the_edge_node_for_a_rebirth(
    group: str, running: Running, engine: sa.Engine
) -> None:
    commands: list[mqtt.MQTTMessage] = []
    watcher = mqtt.Client(CallbackAPIVersion.VERSION2)
    watcher.on_message = lambda _c, _u, message: commands.append(message)
    watcher.connect("localhost", 1883)
    watcher.subscribe(f"spBv1.0/{group}/NCMD/edge-1", qos=1)
    watcher.loop_start()
    try:
        time.sleep(0.3)  # let the SUBACK come back
        before = rebirths_sent()
        running.publish(f"spBv1.0/{group}/NDATA/edge-1", ndata(7, datetime.now(UTC), 1.0))
        command = wait_for(lambda: commands and commands[0])
    finally:
        watcher.loop_stop()
        watcher.disconnect()
    assert (command.qos, command.retain) == (0, False)
    request = pb.Payload.FromString(command.payload)
    assert [(m.name, m.datatype, m.boolean_value) for m in request.metrics] == [
        ("Node Control/Rebirth", DT.Boolean, True)
    ]
    # Sent by this gateway: recorded, counted.
    (event,) = wait_for(lambda: device_events(engine, group))
    assert (event.kind, event.detail["reason"]) == ("rebirth_needed", "no_birth")
    assert rebirths_sent() == before + 1


def test_an_unbound_edge_is_dead_lettered_as_unknown_station(
    group: str, running: Running, engine: sa.Engine
) -> None:
    topic = f"spBv1.0/{group}/NBIRTH/edge-2"
    running.publish(topic, nbirth(datetime.now(UTC)))

    def dead_letters() -> list[Any]:
        with engine.connect() as c:
            return list(
                c.execute(
                    sa.text("SELECT reason, detail FROM dead_letters WHERE topic = :t"),
                    {"t": topic},
                )
            )

    (letter,) = wait_for(dead_letters)
    assert (letter.reason, letter.detail) == ("unknown_station", f"spb:{group}/edge-2")
    assert device_events(engine, group) == []
