"""Sparkplug B: payloads built with the official protobuf classes, the committed samples, and
random input that must only ever end in DecodeError."""

from __future__ import annotations

import importlib.util
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fieldline.device_gateway.decoders.proto import sparkplug_b_pb2 as pb
from fieldline.device_gateway.decoders.sparkplug import (
    HostState,
    SparkplugSession,
    SparkplugTopic,
    parse,
    parse_topic,
)
from fieldline.device_gateway.messages import DecodeError, DeviceEvent, Message, Reading

SAMPLES = Path(__file__).resolve().parents[3] / "fixtures" / "payloads" / "sparkplug"
DT = pb.DataType
Metric = pb.Payload.Metric
T0_MS = 1_763_900_000_000
T0 = datetime(2025, 11, 23, 12, 13, 20, tzinfo=UTC)
NODE = "spBv1.0/plant/{}/edge-1"
DEVICE = "spBv1.0/plant/{}/edge-1/rtu-7"


class Clock:
    def __init__(self) -> None:
        self.now = datetime(2026, 1, 5, 8, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now


def payload(seq: int | None, *metrics: Metric, ts_ms: int | None = T0_MS) -> bytes:
    message = pb.Payload(metrics=metrics)
    if ts_ms is not None:
        message.timestamp = ts_ms
    if seq is not None:
        message.seq = seq
    return message.SerializeToString()


def nbirth(bd_seq: int = 1, *extra: Metric) -> bytes:
    return payload(
        0,
        Metric(name="bdSeq", datatype=DT.UInt64, long_value=bd_seq),
        Metric(name="Node Control/Rebirth", datatype=DT.Boolean, boolean_value=False),
        Metric(name="Supply Voltage", alias=1, datatype=DT.Float, float_value=24.0),
        Metric(name="Uptime", alias=2, datatype=DT.UInt64, long_value=3600),
        *extra,
    )


def dbirth(seq: int = 1) -> bytes:
    return payload(
        seq,
        Metric(name="Pressure", alias=10, datatype=DT.Double, double_value=412.5),
        Metric(name="Pump Running", alias=11, datatype=DT.Boolean, boolean_value=True),
        Metric(name="Serial", alias=12, datatype=DT.String, string_value="A-77"),
    )


def born(session: SparkplugSession) -> None:
    session.decode(NODE.format("NBIRTH"), nbirth())
    session.decode(DEVICE.format("DBIRTH"), dbirth())


def readings(messages: list[Message]) -> dict[tuple[str, str], float | None]:
    return {(m.station_id, m.metric): m.value for m in messages if isinstance(m, Reading)}


def events(messages: list[Message], kind: str) -> list[DeviceEvent]:
    return [m for m in messages if isinstance(m, DeviceEvent) and m.kind == kind]


def rebirth_asked(messages: list[Message]) -> DeviceEvent:
    (event,) = events(messages, "rebirth_needed")
    return event


# -- births and data ---------------------------------------------------------------------


def test_nbirth_announces_metrics_and_yields_their_current_values() -> None:
    session = SparkplugSession()
    out = session.decode(NODE.format("NBIRTH"), nbirth(5))
    (birth,) = events(out, "birth")
    assert birth.source == "spb:plant/edge-1"
    assert birth.ts == T0
    assert birth.detail["bd_seq"] == 5
    assert birth.detail["metrics"]["Supply Voltage"] == "Float"
    # bdSeq and Node Control are protocol metrics, not measurements.
    assert readings(out) == {
        ("spb:plant/edge-1", "Supply Voltage"): 24.0,
        ("spb:plant/edge-1", "Uptime"): 3600.0,
    }
    assert session.known_metrics("plant", "edge-1") == {1: "Supply Voltage", 2: "Uptime"}


def test_ndata_with_aliases_only_is_resolved_by_the_birth() -> None:
    session = SparkplugSession()
    session.decode(NODE.format("NBIRTH"), nbirth())
    out = session.decode(
        NODE.format("NDATA"),
        payload(1, Metric(alias=1, timestamp=T0_MS + 2000, float_value=23.5)),
    )
    assert out == [Reading("spb:plant/edge-1", "Supply Voltage", T0 + timedelta(seconds=2), 23.5)]


def test_metric_without_timestamp_takes_the_payload_timestamp() -> None:
    session = SparkplugSession()
    session.decode(NODE.format("NBIRTH"), nbirth())
    out = session.decode(
        NODE.format("NDATA"), payload(1, Metric(alias=2, long_value=7), ts_ms=T0_MS + 500)
    )
    assert out == [Reading("spb:plant/edge-1", "Uptime", T0 + timedelta(milliseconds=500), 7.0)]


def test_data_without_any_timestamp_is_skipped_and_counted() -> None:
    session = SparkplugSession()
    session.decode(NODE.format("NBIRTH"), nbirth())
    assert (
        session.decode(NODE.format("NDATA"), payload(1, Metric(alias=2, long_value=7), ts_ms=None))
        == []
    )
    assert session.skipped["no_timestamp"] == 1


def test_data_by_name_is_accepted_too() -> None:
    session = SparkplugSession()
    session.decode(NODE.format("NBIRTH"), nbirth())
    out = session.decode(NODE.format("NDATA"), payload(1, Metric(name="Uptime", long_value=9)))
    assert readings(out) == {("spb:plant/edge-1", "Uptime"): 9.0}


def test_dbirth_and_ddata_carry_the_device_identity() -> None:
    session = SparkplugSession()
    session.decode(NODE.format("NBIRTH"), nbirth())
    out = session.decode(DEVICE.format("DBIRTH"), dbirth())
    (birth,) = events(out, "birth")
    assert birth.source == "spb:plant/edge-1/rtu-7"
    assert readings(out) == {
        ("spb:plant/edge-1/rtu-7", "Pressure"): 412.5,
        ("spb:plant/edge-1/rtu-7", "Pump Running"): 1.0,
    }
    out = session.decode(
        DEVICE.format("DDATA"),
        payload(2, Metric(alias=10, double_value=398.25), Metric(alias=11, boolean_value=False)),
    )
    assert readings(out) == {
        ("spb:plant/edge-1/rtu-7", "Pressure"): 398.25,
        ("spb:plant/edge-1/rtu-7", "Pump Running"): 0.0,
    }


def test_is_null_gives_a_reading_without_value() -> None:
    session = SparkplugSession()
    born(session)
    out = session.decode(DEVICE.format("DDATA"), payload(2, Metric(alias=10, is_null=True)))
    assert readings(out) == {("spb:plant/edge-1/rtu-7", "Pressure"): None}


def test_string_metric_is_skipped_with_a_counted_reason() -> None:
    session = SparkplugSession()
    born(session)
    out = session.decode(
        DEVICE.format("DDATA"),
        payload(2, Metric(alias=12, string_value="B-1"), Metric(alias=10, double_value=1.5)),
    )
    assert readings(out) == {("spb:plant/edge-1/rtu-7", "Pressure"): 1.5}
    assert session.skipped["not_numeric:String"] == 2  # once in the DBIRTH, once here


@pytest.mark.parametrize(
    ("datatype", "field", "raw", "expected"),
    [
        (DT.Int8, "int_value", (1 << 32) - 5, -5.0),  # two's complement in 32 bits
        (DT.Int8, "int_value", 256 - 5, -5.0),  # ... or in the type's own 8 bits
        (DT.Int8, "int_value", 127, 127.0),
        (DT.Int16, "int_value", (1 << 32) - 300, -300.0),
        (DT.Int32, "int_value", (1 << 32) - 1, -1.0),
        (DT.Int64, "long_value", (1 << 64) - 2, -2.0),
        (DT.UInt8, "int_value", 255, 255.0),
        (DT.UInt16, "int_value", 65535, 65535.0),
        (DT.UInt32, "int_value", (1 << 32) - 1, 4294967295.0),
        (DT.UInt64, "long_value", 1 << 40, float(1 << 40)),
        (DT.Int32, "long_value", 42, 42.0),  # some encoders use long_value for every integer
        (DT.Float, "float_value", 1.5, 1.5),
        (DT.Float, "float_value", 12.1, 12.1),  # read as the float32 the edge node meant
        (DT.Double, "double_value", -0.125, -0.125),
        (DT.Boolean, "boolean_value", True, 1.0),
        (DT.Boolean, "boolean_value", False, 0.0),
    ],
)
def test_numeric_datatypes(datatype: int, field: str, raw: Any, expected: float) -> None:
    session = SparkplugSession()
    session.decode(
        NODE.format("NBIRTH"),
        payload(0, Metric(name="Value", alias=1, datatype=datatype, **{field: raw})),
    )
    out = session.decode(NODE.format("NDATA"), payload(1, Metric(alias=1, **{field: raw})))
    assert readings(out) == {("spb:plant/edge-1", "Value"): expected}


@pytest.mark.parametrize(
    ("metric", "reason"),
    [
        (
            Metric(datatype=DT.DataSet, dataset_value=pb.Payload.DataSet(num_of_columns=0)),
            "not_numeric:DataSet",
        ),
        (
            Metric(datatype=DT.Template, template_value=pb.Payload.Template(version="1")),
            "not_numeric:Template",
        ),
        (Metric(datatype=DT.Bytes, bytes_value=b"\x00"), "not_numeric:Bytes"),
        (Metric(datatype=DT.DateTime, long_value=T0_MS), "not_numeric:DateTime"),
        (Metric(datatype=DT.Float, string_value="1.5"), "value_type_mismatch"),
        (Metric(datatype=99, int_value=1), "unknown_datatype"),
    ],
)
def test_metrics_that_are_not_numbers_are_counted(metric: Metric, reason: str) -> None:
    metric.name = "Odd"
    session = SparkplugSession()
    out = session.decode(NODE.format("NBIRTH"), payload(0, metric))
    assert readings(out) == {}
    assert session.skipped[reason] == 1


# -- sequence numbers and rebirth requests -----------------------------------------------


def test_seq_wraps_from_255_to_0() -> None:
    session = SparkplugSession()
    session.decode(NODE.format("NBIRTH"), nbirth())
    for seq in [*range(1, 256), 0, 1]:
        out = session.decode(NODE.format("NDATA"), payload(seq, Metric(alias=2, long_value=seq)))
        assert readings(out) == {("spb:plant/edge-1", "Uptime"): float(seq)}, seq


def test_seq_gap_asks_for_rebirth_and_trusts_nothing_until_it_comes() -> None:
    clock = Clock()
    session = SparkplugSession(clock=clock, rebirth_holdoff=timedelta(0))
    born(session)
    out = session.decode(DEVICE.format("DDATA"), payload(4, Metric(alias=10, double_value=1.0)))
    event = rebirth_asked(out)
    assert event.source == "spb:plant/edge-1"
    assert event.detail["reason"] == "seq_gap"
    assert (event.detail["expected"], event.detail["got"]) == (2, 4)
    assert readings(out) == {}
    # The next message in order is not trusted either: a lost message may have been a birth.
    out = session.decode(DEVICE.format("DDATA"), payload(5, Metric(alias=10, double_value=2.0)))
    assert readings(out) == {} and rebirth_asked(out).detail["reason"] == "no_birth"
    session.decode(NODE.format("NBIRTH"), nbirth(2))
    session.decode(DEVICE.format("DBIRTH"), dbirth())
    out = session.decode(DEVICE.format("DDATA"), payload(2, Metric(alias=10, double_value=3.0)))
    assert readings(out) == {("spb:plant/edge-1/rtu-7", "Pressure"): 3.0}


def test_unknown_alias_asks_for_rebirth() -> None:
    session = SparkplugSession()
    born(session)
    out = session.decode(
        DEVICE.format("DDATA"),
        payload(2, Metric(alias=10, double_value=1.0), Metric(alias=99, double_value=2.0)),
    )
    assert readings(out) == {}
    assert rebirth_asked(out).detail["reason"] == "unknown_alias"
    assert session.skipped["out_of_sync"] == 2


def test_node_alias_is_unknown_to_a_device() -> None:
    session = SparkplugSession()
    born(session)
    out = session.decode(DEVICE.format("DDATA"), payload(2, Metric(alias=1, float_value=1.0)))
    assert rebirth_asked(out).detail["reason"] == "unknown_alias"


def test_data_before_any_birth_asks_for_a_publishable_rebirth() -> None:
    # A worker of a shared subscription that never saw this edge node's birth.
    clock = Clock()
    session = SparkplugSession(clock=clock)
    out = session.decode(NODE.format("NDATA"), payload(17, Metric(alias=1, float_value=1.0)))
    event = rebirth_asked(out)
    assert readings(out) == {}
    assert event.ts == clock.now
    assert event.detail["reason"] == "no_birth"
    assert event.detail["topic"] == "spBv1.0/plant/NCMD/edge-1"
    request = pb.Payload.FromString(event.detail["payload"])
    assert not request.HasField("seq")  # NCMD must not carry one
    assert request.timestamp == int(clock.now.timestamp() * 1000)
    (metric,) = request.metrics
    assert (metric.name, metric.datatype, metric.boolean_value) == (
        "Node Control/Rebirth",
        DT.Boolean,
        True,
    )


def test_ddata_for_a_device_without_dbirth_asks_for_rebirth() -> None:
    session = SparkplugSession()
    session.decode(NODE.format("NBIRTH"), nbirth())
    out = session.decode(DEVICE.format("DDATA"), payload(1, Metric(alias=10, double_value=1.0)))
    assert rebirth_asked(out).detail["reason"] == "no_birth"


def test_rebirth_requests_are_rate_limited_per_edge_node() -> None:
    clock = Clock()
    session = SparkplugSession(clock=clock, rebirth_holdoff=timedelta(seconds=10))
    ndata = payload(3, Metric(alias=1, float_value=1.0))
    assert events(session.decode(NODE.format("NDATA"), ndata), "rebirth_needed")
    clock.now += timedelta(seconds=9)
    assert session.decode(NODE.format("NDATA"), ndata) == []
    other = "spBv1.0/plant/NDATA/edge-2"
    assert events(session.decode(other, ndata), "rebirth_needed")
    clock.now += timedelta(seconds=2)
    assert events(session.decode(NODE.format("NDATA"), ndata), "rebirth_needed")


# -- deaths ------------------------------------------------------------------------------


def ndeath(bd_seq: int) -> bytes:
    return payload(None, Metric(name="bdSeq", datatype=DT.UInt64, long_value=bd_seq))


def test_ndeath_with_the_birth_bdseq_marks_the_node_and_its_devices_stale() -> None:
    session = SparkplugSession()
    born(session)
    out = session.decode(NODE.format("NDEATH"), ndeath(1))
    (death,) = events(out, "death")
    assert death.source == "spb:plant/edge-1"
    assert death.detail["bd_seq"] == 1 and death.detail["bd_seq_checked"] is True
    assert death.detail["stale"] == {
        "spb:plant/edge-1": ["Node Control/Rebirth", "Supply Voltage", "Uptime", "bdSeq"],
        "spb:plant/edge-1/rtu-7": ["Pressure", "Pump Running", "Serial"],
    }
    # The node is gone: its next data needs a new birth.
    out = session.decode(NODE.format("NDATA"), payload(1, Metric(alias=1, float_value=1.0)))
    assert rebirth_asked(out)


def test_ndeath_of_an_older_connection_is_ignored() -> None:
    session = SparkplugSession()
    session.decode(NODE.format("NBIRTH"), nbirth(4))
    assert session.decode(NODE.format("NDEATH"), ndeath(3)) == []
    assert session.skipped["ndeath_stale_bdseq"] == 1
    out = session.decode(NODE.format("NDATA"), payload(1, Metric(alias=1, float_value=2.0)))
    assert readings(out) == {("spb:plant/edge-1", "Supply Voltage"): 2.0}


def test_ndeath_without_a_known_birth_is_reported_unchecked() -> None:
    (death,) = SparkplugSession().decode(NODE.format("NDEATH"), ndeath(3))
    assert isinstance(death, DeviceEvent) and death.kind == "death"
    assert death.detail == {"bd_seq": 3, "bd_seq_checked": False, "stale": {}}


def test_ddeath_marks_the_device_stale() -> None:
    session = SparkplugSession()
    born(session)
    (death,) = session.decode(DEVICE.format("DDEATH"), payload(2))
    assert isinstance(death, DeviceEvent) and death.kind == "death"
    assert death.detail["stale"] == {
        "spb:plant/edge-1/rtu-7": ["Pressure", "Pump Running", "Serial"]
    }
    out = session.decode(DEVICE.format("DDATA"), payload(3, Metric(alias=10, double_value=1.0)))
    assert rebirth_asked(out).detail["reason"] == "no_birth"


# -- topics and host state ---------------------------------------------------------------


@pytest.mark.parametrize("text", [b"ONLINE", b"OFFLINE", b"", b"\xff\xfe garbage"])
def test_legacy_state_text_is_tolerated(text: bytes) -> None:
    assert SparkplugSession().decode("STATE/scada-host", text) == []
    assert isinstance(parse("STATE/scada-host", text), HostState)


def test_legacy_state_is_read() -> None:
    assert parse("STATE/h1", b"OFFLINE") == HostState("h1", False)
    assert parse("STATE/h1", b"ONLINE\n") == HostState("h1", True)


def test_sparkplug_3_state_json() -> None:
    body = json.dumps({"online": True, "timestamp": T0_MS}).encode()
    assert parse("spBv1.0/STATE/h1", body) == HostState("h1", True)
    assert SparkplugSession().decode("spBv1.0/STATE/h1", body) == []
    with pytest.raises(DecodeError) as error:
        parse("spBv1.0/STATE/h1", b"ONLINE")
    assert error.value.reason == "bad_state"


def test_commands_are_not_data() -> None:
    session = SparkplugSession()
    born(session)
    assert session.decode(NODE.format("NCMD"), payload(None, Metric(name="x", int_value=1))) == []
    # ... and do not disturb the node's sequence.
    out = session.decode(DEVICE.format("DDATA"), payload(2, Metric(alias=10, double_value=1.0)))
    assert readings(out)


def test_topic_parts() -> None:
    assert parse_topic("spBv1.0/g/DDATA/e/d") == SparkplugTopic("g", "DDATA", "e", "d")
    node = parse_topic("spBv1.0/g/NDATA/e")
    assert isinstance(node, SparkplugTopic)
    assert (node.source, node.command_topic) == ("spb:g/e", "spBv1.0/g/NCMD/e")
    assert parse_topic("spBv1.0/STATE/host-1") == "host-1"


@pytest.mark.parametrize(
    "topic",
    [
        "spBv1.0/g/NDATA",
        "spBv1.0/g/NDATA/e/d",  # node messages have no device
        "spBv1.0/g/DDATA/e",  # device messages need one
        "spBv1.0/g/XDATA/e",
        "spBv1.0//NDATA/e",
        "spAv1.0/g/NDATA/e",
        "fieldline/scada/S-000003",
        "STATE/",
    ],
)
def test_bad_topics(topic: str) -> None:
    with pytest.raises(DecodeError) as error:
        SparkplugSession().decode(topic, payload(1))
    assert error.value.reason == "bad_topic"


def test_bad_protobuf() -> None:
    with pytest.raises(DecodeError) as error:
        SparkplugSession().decode(NODE.format("NDATA"), b"\x0a\xff\xff")
    assert error.value.reason == "bad_protobuf"


# -- the committed samples ---------------------------------------------------------------


def load_script() -> ModuleType:
    spec = importlib.util.spec_from_file_location("make_samples", SAMPLES / "make_samples.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_samples_are_what_the_script_makes(tmp_path: Path) -> None:
    load_script().write(tmp_path)
    for made in tmp_path.iterdir():
        assert made.read_bytes() == (SAMPLES / made.name).read_bytes(), made.name


def test_samples_replay_as_one_session() -> None:
    session = SparkplugSession()
    out: list[Message] = []
    for entry in json.loads((SAMPLES / "messages.json").read_text()):
        out += session.decode(entry["topic"], (SAMPLES / entry["file"]).read_bytes())
    node, device = "spb:waterworks/pump-station-3", "spb:waterworks/pump-station-3/pt-101"
    assert [(e.kind, e.source) for e in out if isinstance(e, DeviceEvent)] == [
        ("birth", node),
        ("birth", device),
        ("death", device),
        ("death", node),
    ]
    values = [(r.station_id, r.metric, r.ts, r.value) for r in out if isinstance(r, Reading)]
    t0 = T0
    assert values == [
        (node, "Supply Voltage", t0, 24.25),
        (device, "Outlet Pressure", t0, 412.5),
        (device, "Flow", t0, 18.5),
        (device, "Pump Running", t0, 1.0),
        (device, "Valve Offset", t0, -3.0),
        (device, "Tank Level", t0, 371.0),
        (device, "Outlet Pressure", t0 + timedelta(seconds=2), 409.0),
        (device, "Pump Running", t0 + timedelta(seconds=2), 0.0),
        (device, "Flow", t0 + timedelta(seconds=2), None),
        (node, "Supply Voltage", t0 + timedelta(seconds=3), 23.75),
    ]
    assert session.skipped == {"not_numeric:String": 1}
    assert events(out, "death")[-1].detail["bd_seq_checked"] is True


# -- random input ------------------------------------------------------------------------

message_types = st.sampled_from(
    ["NBIRTH", "NDATA", "NDEATH", "NCMD", "DBIRTH", "DDATA", "DDEATH", "DCMD", "STATE"]
)
ids = st.text(max_size=6)
topics = st.one_of(
    st.text(max_size=40),
    st.builds(lambda t, g, e: f"spBv1.0/{g}/{t}/{e}", message_types, ids, ids),
    st.builds(lambda t, g, e, d: f"spBv1.0/{g}/{t}/{e}/{d}", message_types, ids, ids, ids),
    st.builds(lambda h: f"STATE/{h}", ids),
)


def decode_or_decode_error(session: SparkplugSession, topic: str, body: bytes) -> None:
    try:
        out = session.decode(topic, body)
    except DecodeError as exc:
        assert exc.reason in ("bad_topic", "bad_protobuf", "bad_state")
    else:
        for m in out:
            assert isinstance(m, Reading | DeviceEvent)
            assert m.ts.tzinfo is not None


@settings(max_examples=400, deadline=None)
@given(topics, st.binary(max_size=200))
def test_random_topics_and_bytes(topic: str, body: bytes) -> None:
    decode_or_decode_error(SparkplugSession(), topic, body)


@settings(max_examples=400, deadline=None)
@given(st.sampled_from(["NDATA", "DDATA", "DBIRTH", "NDEATH", "DDEATH"]), st.binary(max_size=200))
def test_random_bytes_after_a_birth(message_type: str, body: bytes) -> None:
    session = SparkplugSession()
    born(session)
    topic = (NODE if message_type[0] == "N" else DEVICE).format(message_type)
    decode_or_decode_error(session, topic, body)


values = st.one_of(
    st.builds(lambda v: {"int_value": v}, st.integers(0, (1 << 32) - 1)),
    st.builds(lambda v: {"long_value": v}, st.integers(0, (1 << 64) - 1)),
    st.builds(lambda v: {"float_value": v}, st.floats(width=32)),
    st.builds(lambda v: {"double_value": v}, st.floats()),
    st.builds(lambda v: {"boolean_value": v}, st.booleans()),
    st.builds(lambda v: {"string_value": v}, st.text(max_size=5)),
    st.builds(lambda v: {"bytes_value": v}, st.binary(max_size=5)),
    st.just({}),
)
metrics = st.builds(
    lambda alias, datatype, ts, null, value: Metric(
        alias=alias, datatype=datatype, timestamp=ts, is_null=null, **value
    ),
    st.integers(0, 20),
    st.integers(0, 40),
    st.integers(0, (1 << 64) - 1),
    st.booleans(),
    values,
)


@settings(max_examples=300, deadline=None)
@given(st.lists(metrics, max_size=6), st.integers(0, 300))
def test_random_well_formed_metrics(data: list[Metric], seq: int) -> None:
    session = SparkplugSession()
    named = [Metric(name=f"m{i}", **_fields(m)) for i, m in enumerate(data)]
    decode_or_decode_error(session, NODE.format("NBIRTH"), payload(0, *named))
    decode_or_decode_error(session, NODE.format("NDATA"), payload(seq, *data))


def _fields(metric: Metric) -> dict[str, Any]:
    return {field.name: value for field, value in metric.ListFields()}
