"""Sparkplug B (Eclipse Sparkplug 3.0, payload `spBv1.0`) from SCADA edge nodes.

Two layers:

- `parse(topic, payload)` is pure: it reads the topic and the protobuf payload (the official
  `sparkplug_b.proto`, see `proto/README.md`) and raises `DecodeError` for what is unusable.
- `SparkplugSession` holds what Sparkplug makes a host remember per edge node: the metric names,
  aliases and datatypes announced by NBIRTH/DBIRTH, the NBIRTH's `bdSeq` and the last `seq`
  (0-255, wrapping, one counter per edge node for all its messages). Its `decode(topic, payload)`
  returns plain messages like every other decoder.

The session never guesses: data before a birth it saw, with an alias it does not know, or after
a gap in `seq` is dropped and answered with a `DeviceEvent(kind="rebirth_needed")` whose detail
holds the NCMD topic and payload to publish (QoS 0, not retained). Under a round-robin shared
subscription a worker sees only part of an edge node's messages and would ask for rebirths over
and over, so each edge node's messages should reach one worker (EMQX/HiveMQ sticky or client-id
hash strategies, or a plain subscription in one worker); requests are rate-limited in any case.

Readings carry the Sparkplug identity, `station_id="spb:{group}/{edge}"` or
`"spb:{group}/{edge}/{device}"` and `metric` the Sparkplug metric name: binding them to a GIS
station (`S-000003`) and a unit-named metric happens later in the pipeline.
"""

from __future__ import annotations

import json
import math
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy
from google.protobuf.message import DecodeError as ProtobufDecodeError

from fieldline.device_gateway.decoders.proto import sparkplug_b_pb2 as pb
from fieldline.device_gateway.messages import DecodeError, DeviceEvent, Message, Reading

NAMESPACE = "spBv1.0"
NODE_TYPES = frozenset({"NBIRTH", "NDATA", "NDEATH", "NCMD"})
DEVICE_TYPES = frozenset({"DBIRTH", "DDATA", "DDEATH", "DCMD"})
REBIRTH_METRIC = "Node Control/Rebirth"
BDSEQ_METRIC = "bdSeq"
# Protocol metrics of the birth, not measurements.
CONTROL_PREFIXES = ("Node Control/", "Device Control/")
SEQ_MODULUS = 256

Metric = pb.Payload.Metric
DataType = pb.DataType

# Signed integers travel as two's complement in uint32/uint64; the width says where the sign is.
SIGNED_BITS = {DataType.Int8: 8, DataType.Int16: 16, DataType.Int32: 32, DataType.Int64: 64}
UNSIGNED_BITS = {DataType.UInt8: 8, DataType.UInt16: 16, DataType.UInt32: 32, DataType.UInt64: 64}


@dataclass(frozen=True)
class SparkplugTopic:
    group: str
    message_type: str  # NBIRTH, NDATA, NDEATH, NCMD, DBIRTH, DDATA, DDEATH, DCMD
    edge: str
    device: str | None = None

    @property
    def source(self) -> str:
        """The Sparkplug identity used as `station_id`/`source`; bound to stations later."""
        tail = f"/{self.device}" if self.device is not None else ""
        return f"spb:{self.group}/{self.edge}{tail}"

    @property
    def node_source(self) -> str:
        return f"spb:{self.group}/{self.edge}"

    @property
    def command_topic(self) -> str:
        return f"{NAMESPACE}/{self.group}/NCMD/{self.edge}"


@dataclass(frozen=True)
class SparkplugMessage:
    topic: SparkplugTopic
    payload: pb.Payload


@dataclass(frozen=True)
class HostState:
    """A host application's STATE: `STATE/{host}` (text, before 3.0) or `spBv1.0/STATE/{host}`
    (JSON, 3.0). It says nothing about stations; `online` is None for unreadable legacy text."""

    host: str
    online: bool | None


def parse_topic(topic: str) -> SparkplugTopic | str:
    """A Sparkplug topic, or the host id of a STATE topic."""
    parts = topic.split("/")
    if len(parts) == 2 and parts[0] == "STATE" and parts[1]:
        return parts[1]
    if parts[0] != NAMESPACE:
        raise DecodeError("bad_topic", f"not a {NAMESPACE} topic: {topic!r}")
    if len(parts) == 3 and parts[1] == "STATE" and parts[2]:
        return parts[2]
    if len(parts) < 4 or not all(parts[1:]):
        raise DecodeError("bad_topic", f"expected {NAMESPACE}/group/type/edge[/device]: {topic!r}")
    message_type = parts[2]
    if message_type in NODE_TYPES and len(parts) == 4:
        return SparkplugTopic(parts[1], message_type, parts[3])
    if message_type in DEVICE_TYPES and len(parts) == 5:
        return SparkplugTopic(parts[1], message_type, parts[3], parts[4])
    raise DecodeError("bad_topic", f"unknown message type or wrong depth: {topic!r}")


def parse(topic: str, payload: bytes) -> SparkplugMessage | HostState:
    """Pure parsing of one MQTT message; raises `DecodeError`."""
    parsed = parse_topic(topic)
    if isinstance(parsed, str):
        return _parse_state(parsed, payload, legacy=not topic.startswith(NAMESPACE))
    message = pb.Payload()
    try:
        message.ParseFromString(payload)
        _touch_strings(message)
    except (ProtobufDecodeError, UnicodeDecodeError, ValueError) as exc:
        raise DecodeError("bad_protobuf", str(exc)[:200]) from exc
    return SparkplugMessage(parsed, message)


def _touch_strings(message: pb.Payload) -> None:
    # proto2 does not check UTF-8 while parsing; reading a bad string raises later, so read the
    # ones the session uses now, while a failure is still a DecodeError.
    for metric in message.metrics:
        _ = metric.name
        if metric.WhichOneof("value") == "string_value":
            _ = metric.string_value


def _parse_state(host: str, payload: bytes, *, legacy: bool) -> HostState:
    if legacy:
        # Tolerated whatever it says: another host application's business, never an error.
        text = payload.decode("utf-8", errors="replace").strip().upper()
        return HostState(host, {"ONLINE": True, "OFFLINE": False}.get(text))
    try:
        body = json.loads(payload)
    except (ValueError, UnicodeDecodeError) as exc:
        raise DecodeError("bad_state", "STATE payload is not JSON") from exc
    if not isinstance(body, dict) or not isinstance(body.get("online"), bool):
        raise DecodeError("bad_state", "STATE payload needs a boolean 'online'")
    return HostState(host, body["online"])


class NotNumeric(Exception):
    """A metric that is valid Sparkplug but not a number to store; `reason` is counted."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def numeric_value(metric: Metric, datatype: int) -> float | None:
    """The metric's value as a float (booleans 0/1), None when it is null."""
    if metric.is_null:
        return None
    kind = metric.WhichOneof("value")
    if datatype in SIGNED_BITS or datatype in UNSIGNED_BITS:
        if kind not in ("int_value", "long_value"):
            raise NotNumeric("value_type_mismatch")
        raw: int = getattr(metric, kind)
        bits = SIGNED_BITS.get(datatype) or UNSIGNED_BITS[datatype]
        raw &= (1 << bits) - 1
        if datatype in SIGNED_BITS and raw >= 1 << (bits - 1):
            raw -= 1 << bits
        return float(raw)
    if datatype in (DataType.Float, DataType.Double):
        if kind == "float_value":
            # The shortest decimal that is this float32 (12.1, not 12.100000381469727).
            return float(str(numpy.float32(metric.float_value)))
        if kind != "double_value":
            raise NotNumeric("value_type_mismatch")
        return metric.double_value
    if datatype == DataType.Boolean:
        if kind != "boolean_value":
            raise NotNumeric("value_type_mismatch")
        return 1.0 if metric.boolean_value else 0.0
    if datatype in DataType.values():
        raise NotNumeric(f"not_numeric:{DataType.Name(datatype)}")
    raise NotNumeric("unknown_datatype")


def epoch_ms_to_utc(ms: int) -> datetime:
    try:
        return datetime(1970, 1, 1, tzinfo=UTC) + timedelta(milliseconds=ms)
    except OverflowError as exc:
        raise NotNumeric("bad_timestamp") from exc


def rebirth_request(now: datetime) -> bytes:
    """An NCMD payload asking an edge node for NBIRTH and all DBIRTHs again (no `seq`: NCMD
    must not carry one)."""
    now_ms = int(now.timestamp() * 1000)
    payload = pb.Payload(timestamp=now_ms)
    payload.metrics.add(
        name=REBIRTH_METRIC, timestamp=now_ms, datatype=DataType.Boolean, boolean_value=True
    )
    return payload.SerializeToString()


@dataclass(frozen=True)
class MetricDefinition:
    name: str
    datatype: int


@dataclass
class _Scope:
    """The metrics one birth announced: the node's own (NBIRTH) or one device's (DBIRTH)."""

    by_alias: dict[int, MetricDefinition] = field(default_factory=dict)
    by_name: dict[str, MetricDefinition] = field(default_factory=dict)

    def add(self, metric: Metric) -> None:
        if not metric.name:
            return  # a birth metric must be named; nothing could refer to this one
        definition = MetricDefinition(metric.name, metric.datatype)
        self.by_name[metric.name] = definition
        if metric.HasField("alias"):
            self.by_alias[metric.alias] = definition

    def resolve(self, metric: Metric) -> MetricDefinition | None:
        if metric.HasField("alias"):
            return self.by_alias.get(metric.alias)
        return self.by_name.get(metric.name) if metric.name else None


@dataclass
class _Node:
    bd_seq: int | None
    seq: int
    metrics: _Scope
    devices: dict[str, _Scope] = field(default_factory=dict)


def _utc_now() -> datetime:
    return datetime.now(UTC)


class SparkplugSession:
    """What one gateway worker knows of the edge nodes whose messages reach it.

    `skipped` counts metrics left out and why (`not_numeric:String`, `value_type_mismatch`,
    `no_timestamp`, `out_of_sync`, ...), for the worker to export as metrics.
    """

    def __init__(
        self,
        clock: Callable[[], datetime] = _utc_now,
        rebirth_holdoff: timedelta = timedelta(seconds=10),
    ) -> None:
        self._clock = clock
        self._holdoff = rebirth_holdoff
        self._nodes: dict[tuple[str, str], _Node] = {}
        self._rebirth_asked: dict[tuple[str, str], datetime] = {}
        self.skipped: Counter[str] = Counter()

    def decode(self, topic: str, payload: bytes) -> list[Message]:
        parsed = parse(topic, payload)
        if isinstance(parsed, HostState):
            return []  # another host application's state: nothing about our stations
        kind = parsed.topic.message_type
        if kind in ("NCMD", "DCMD"):
            return []  # commands to edge nodes, our own rebirth requests among them
        if kind == "NBIRTH":
            return self._node_birth(parsed)
        if kind == "NDEATH":
            return self._node_death(parsed)
        return self._in_sequence(parsed)

    def known_metrics(self, group: str, edge: str, device: str | None = None) -> dict[int, str]:
        """Alias -> metric name as announced by the last birth (empty when unknown)."""
        node = self._nodes.get((group, edge))
        scope = node and (node.metrics if device is None else node.devices.get(device))
        return {alias: d.name for alias, d in scope.by_alias.items()} if scope else {}

    # -- births and deaths ---------------------------------------------------------------

    def _node_birth(self, message: SparkplugMessage) -> list[Message]:
        topic, payload = message.topic, message.payload
        key = (topic.group, topic.edge)
        scope = _Scope()
        for metric in payload.metrics:
            scope.add(metric)
        bd_seq = _bd_seq(payload.metrics)
        self._nodes[key] = _Node(bd_seq=bd_seq, seq=payload.seq % SEQ_MODULUS, metrics=scope)
        self._rebirth_asked.pop(key, None)
        return [self._birth_event(message, scope, bd_seq), *self._readings(message, scope)]

    def _device_birth(self, message: SparkplugMessage, node: _Node) -> list[Message]:
        assert message.topic.device is not None
        scope = _Scope()
        for metric in message.payload.metrics:
            scope.add(metric)
        node.devices[message.topic.device] = scope
        return [self._birth_event(message, scope, None), *self._readings(message, scope)]

    def _birth_event(
        self, message: SparkplugMessage, scope: _Scope, bd_seq: int | None
    ) -> DeviceEvent:
        metrics = {d.name: _datatype_name(d.datatype) for d in scope.by_name.values()}
        detail: dict[str, Any] = {"seq": message.payload.seq, "metrics": metrics}
        if bd_seq is not None:
            detail["bd_seq"] = bd_seq
        return DeviceEvent(message.topic.source, "birth", self._payload_time(message), detail)

    def _node_death(self, message: SparkplugMessage) -> list[Message]:
        topic = message.topic
        key = (topic.group, topic.edge)
        bd_seq = _bd_seq(message.payload.metrics)
        node = self._nodes.get(key)
        if node is not None and node.bd_seq is not None and bd_seq != node.bd_seq:
            # The will of an older connection, arriving after the node was born again.
            self.skipped["ndeath_stale_bdseq"] += 1
            return []
        stale = {}
        if node is not None:
            stale[topic.node_source] = sorted(node.metrics.by_name)
            for device, scope in node.devices.items():
                stale[f"{topic.node_source}/{device}"] = sorted(scope.by_name)
        self._nodes.pop(key, None)
        detail = {"bd_seq": bd_seq, "bd_seq_checked": node is not None, "stale": stale}
        return [DeviceEvent(topic.source, "death", self._payload_time(message), detail)]

    def _device_death(self, message: SparkplugMessage, node: _Node) -> list[Message]:
        topic = message.topic
        assert topic.device is not None
        scope = node.devices.pop(topic.device, None)
        stale = {topic.source: sorted(scope.by_name)} if scope else {}
        ts = self._payload_time(message)
        return [DeviceEvent(topic.source, "death", ts, {"stale": stale})]

    # -- messages that carry the node's seq ----------------------------------------------

    def _in_sequence(self, message: SparkplugMessage) -> list[Message]:
        topic, payload = message.topic, message.payload
        key = (topic.group, topic.edge)
        node = self._nodes.get(key)
        if node is None:
            return self._drop_and_ask(message, "no_birth")
        expected = (node.seq + 1) % SEQ_MODULUS
        if not payload.HasField("seq") or payload.seq != expected:
            # A lost message may have been a new NBIRTH with other aliases: trust nothing
            # until the node is born again.
            del self._nodes[key]
            got = payload.seq if payload.HasField("seq") else None
            return self._drop_and_ask(message, "seq_gap", expected=expected, got=got)
        node.seq = expected
        if topic.message_type == "DBIRTH":
            return self._device_birth(message, node)
        if topic.message_type == "DDEATH":
            return self._device_death(message, node)
        scope = node.metrics if topic.device is None else node.devices.get(topic.device)
        if scope is None:
            return self._drop_and_ask(message, "no_birth")
        unknown = [m for m in payload.metrics if scope.resolve(m) is None]
        if unknown:
            del self._nodes[key]
            return self._drop_and_ask(message, "unknown_alias")
        return list(self._readings(message, scope))

    def _drop_and_ask(self, message: SparkplugMessage, reason: str, **detail: Any) -> list[Message]:
        topic = message.topic
        key = (topic.group, topic.edge)
        self.skipped["out_of_sync"] += len(message.payload.metrics)
        now = self._clock()
        asked = self._rebirth_asked.get(key)
        if asked is not None and now - asked < self._holdoff:
            return []
        self._rebirth_asked[key] = now
        detail = {
            "reason": reason,
            "topic": topic.command_topic,
            "payload": rebirth_request(now),
            **detail,
        }
        return [DeviceEvent(topic.node_source, "rebirth_needed", now, detail)]

    # -- values --------------------------------------------------------------------------

    def _readings(self, message: SparkplugMessage, scope: _Scope) -> Iterable[Reading]:
        payload = message.payload
        for metric in payload.metrics:
            definition = scope.resolve(metric)
            if definition is None or definition.name.startswith(CONTROL_PREFIXES):
                continue
            if definition.name == BDSEQ_METRIC and message.topic.message_type == "NBIRTH":
                continue
            try:
                value = numeric_value(metric, definition.datatype)
                if metric.HasField("timestamp"):
                    ts = epoch_ms_to_utc(metric.timestamp)
                elif payload.HasField("timestamp"):
                    ts = epoch_ms_to_utc(payload.timestamp)
                else:
                    raise NotNumeric("no_timestamp")
            except NotNumeric as skipped:
                self.skipped[skipped.reason] += 1
                continue
            if value is not None and not math.isfinite(value):
                self.skipped["not_finite"] += 1
                continue
            yield Reading(message.topic.source, definition.name, ts, value)

    def _payload_time(self, message: SparkplugMessage) -> datetime:
        if message.payload.HasField("timestamp"):
            try:
                return epoch_ms_to_utc(message.payload.timestamp)
            except NotNumeric:
                pass
        return self._clock()


def _bd_seq(metrics: Iterable[Metric]) -> int | None:
    for metric in metrics:
        kind = metric.WhichOneof("value")
        if metric.name == BDSEQ_METRIC and kind in ("int_value", "long_value"):
            return int(getattr(metric, kind))
    return None


def _datatype_name(datatype: int) -> str:
    if datatype in DataType.values():
        return DataType.Name(datatype)
    return f"Unknown({datatype})"
