"""The ordered handlers a message goes through, each small and named.

Before the commit (pure but for the directory of known devices and the Sparkplug session):
  check_size -> route -> decode -> bind -> filter (quarantine) -> into the batch
After the commit (`fanout.py`):
  update_latest -> publish_live -> announce_deadletter -> send_commands

A message that cannot be used at any step becomes a dead letter with the step's reason; an
unexpected exception in a step is logged, counted and dead-letters the message with reason
`failed_<step>`, so that no input is ever lost silently and none stops the worker.
"""

from __future__ import annotations

import hashlib
import logging
from collections import Counter
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from functools import cache, lru_cache
from typing import TYPE_CHECKING

from fieldline.device_gateway import filters, metrics
from fieldline.device_gateway.directory import Directory, DirectoryUnavailable
from fieldline.device_gateway.messages import (
    DecodeError,
    DeviceEvent,
    FieldReport,
    Fix,
    Message,
    MeterReading,
    Reading,
    TaskStatus,
)
from fieldline.device_gateway.topics import Route, decoder_of, find_route
from fieldline.settings import Settings

if TYPE_CHECKING:
    from fieldline.device_gateway.decoders.sparkplug import SparkplugSession

SPARKPLUG_PREFIX = "spb:"
# Topics whose route is remembered: one per device and message kind is the common case; the
# bound keeps a flood of made-up topics from growing the memory.
ROUTE_CACHE_SIZE = 16_384

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Inbound:
    topic: str
    payload: bytes
    received_at: datetime


@dataclass(frozen=True)
class DeadLetterEntry:
    topic: str
    reason: str
    detail: str
    payload: bytes  # capped
    payload_bytes: int
    received_at: datetime
    digest: str


@dataclass(frozen=True)
class Command:
    """An MQTT message to send to a device after the commit (a Sparkplug rebirth request)."""

    topic: str
    payload: bytes
    reason: str


@dataclass
class Outcome:
    """What one MQTT message produced, ready to be written in a batch."""

    received_at: datetime
    kind: str = "unknown"
    fixes: list[Fix] = field(default_factory=list)
    quarantined: list[tuple[Fix, str]] = field(default_factory=list)
    readings: list[Reading] = field(default_factory=list)
    meter_readings: list[MeterReading] = field(default_factory=list)
    task_events: list[TaskStatus] = field(default_factory=list)
    reports: list[FieldReport] = field(default_factory=list)
    device_events: list[DeviceEvent] = field(default_factory=list)
    commands: list[Command] = field(default_factory=list)
    dead_letters: list[DeadLetterEntry] = field(default_factory=list)


class Rejected(Exception):
    """The message goes to the dead letter with this reason."""

    def __init__(self, reason: str, detail: str = "") -> None:
        super().__init__(reason)
        self.reason = reason
        self.detail = detail


@lru_cache(maxsize=ROUTE_CACHE_SIZE)
def cached_route(topic: str) -> Route | None:
    # Matching a topic against every pattern costs more than the rest of decoding a fix.
    return find_route(topic)


def dead_letter(inbound: Inbound, reason: str, detail: str, cap: int) -> DeadLetterEntry:
    digest = hashlib.sha256(inbound.topic.encode() + b"\0" + inbound.payload).hexdigest()
    return DeadLetterEntry(
        topic=inbound.topic,
        reason=reason,
        detail=detail[:500],
        payload=inbound.payload[:cap],
        payload_bytes=len(inbound.payload),
        received_at=inbound.received_at,
        digest=digest,
    )


class Pipeline:
    def __init__(self, settings: Settings, directory: Directory) -> None:
        self.settings = settings
        self.directory = directory
        self.enabled_filters = settings.gps_filter_names
        self.limits = filters.FilterLimits(
            max_accuracy_m=settings.gps_max_accuracy_m,
            max_future=timedelta(seconds=settings.gps_max_future_s),
            max_age=timedelta(seconds=settings.gps_max_age_s),
            max_speed_mps={
                "vehicle": settings.gps_max_speed_vehicle_mps,
                "foot": settings.gps_max_speed_foot_mps,
            },
            min_period=timedelta(seconds=settings.gps_min_period_s),
        )
        # The last accepted fix per (crew, device), for the stateful filters. Per worker: with
        # several workers a device's fixes may be split between them, and each judges the fixes
        # it sees; the database keys still make every write idempotent.
        self.previous: dict[tuple[str, str], Fix] = {}
        # What Sparkplug makes a host remember per edge node (aliases, seq), made on the first
        # Sparkplug message; `_skipped_seen` is how much of its `skipped` is exported already.
        self._sparkplug: SparkplugSession | None = None
        self._skipped_seen: Counter[str] = Counter()
        self._messages_in = cache(metrics.MESSAGES_IN.labels)  # one child per topic kind

    def process(self, inbound: Inbound) -> Outcome:
        outcome = Outcome(received_at=inbound.received_at)
        step = "check_size"
        try:
            self.check_size(inbound)
            step = "route"
            route = self.route(inbound)
            outcome.kind = route.kind
            self._messages_in(route.kind).inc()
            step = "decode"
            decoded = self.decode(inbound, route)
            step = "bind"
            bound = [self.bind(message) for message in decoded]
            bound += [reading for message in bound for reading in self.stale_readings(message)]
            step = "filter"
            self.collect(bound, outcome, inbound.received_at)
        except Rejected as exc:
            return self.reject(inbound, outcome.kind, exc.reason, exc.detail)
        except DirectoryUnavailable:
            raise  # the database is away: the caller waits and processes the message again
        except Exception as exc:  # a bug in a handler must not lose the message or the worker
            log.exception("handler %s failed on a message on %s", step, inbound.topic[:200])
            metrics.HANDLER_FAILURES.labels(step).inc()
            detail = f"{type(exc).__name__}: {exc}"
            return self.reject(inbound, outcome.kind, f"failed_{step}", detail)
        return outcome

    def reject(self, inbound: Inbound, kind: str, reason: str, detail: str) -> Outcome:
        """An outcome holding only the message as a dead letter (what else it produced is
        dropped with it: the dead letter keeps the whole message)."""
        outcome = Outcome(received_at=inbound.received_at, kind=kind)
        cap = self.settings.deadletter_payload_bytes
        outcome.dead_letters.append(dead_letter(inbound, reason, detail, cap))
        metrics.REJECTED.labels(reason).inc()
        log.info("dead letter from %s: %s %s", inbound.topic[:200], reason, detail[:200])
        return outcome

    # -- the handlers, in order ---------------------------------------------------------------

    def check_size(self, inbound: Inbound) -> None:
        limit = self.settings.gateway_max_payload_bytes
        if len(inbound.payload) > limit:
            raise Rejected("payload_too_large", f"{len(inbound.payload)} bytes > {limit}")

    def route(self, inbound: Inbound) -> Route:
        route = cached_route(inbound.topic)
        if route is None:
            raise Rejected("unknown_topic", inbound.topic[:200])
        return route

    def decode(self, inbound: Inbound, route: Route) -> list[Message]:
        try:
            if route.stateful:
                return self.decode_sparkplug(inbound)
            return decoder_of(route)(inbound.topic, inbound.payload)
        except DecodeError as exc:
            raise Rejected(exc.reason, exc.detail) from None

    def decode_sparkplug(self, inbound: Inbound) -> list[Message]:
        if self._sparkplug is None:
            try:
                from fieldline.device_gateway.decoders.sparkplug import SparkplugSession
            except ImportError as exc:
                raise DecodeError("decoder_unavailable", f"sparkplug: {exc}") from None
            self._sparkplug = SparkplugSession()
        session = self._sparkplug
        try:
            return session.decode(inbound.topic, inbound.payload)
        finally:
            for reason, count in session.skipped.items():
                if count > self._skipped_seen[reason]:
                    metrics.SPARKPLUG_SKIPPED.labels(reason).inc(count - self._skipped_seen[reason])
                    self._skipped_seen[reason] = count

    def bind(self, message: Message) -> Message:
        """The message with its source resolved to a known crew, station or meter."""
        directory = self.directory
        if isinstance(message, Fix):
            if message.device.startswith("owntracks:"):
                crew_id = directory.owntracks_crew(message.device.removeprefix("owntracks:"))
                if crew_id is None:
                    raise Rejected("unknown_device", message.device)
                return replace(message, crew_id=crew_id)
            if directory.crew_mode(message.crew_id) is None:
                raise Rejected("unknown_crew", message.crew_id)
            named = message.named_device
            if named is not None and directory.handheld_crew(named) != message.crew_id:
                raise Rejected(
                    "device_not_bound", f"handheld {named} is not bound to {message.crew_id}"
                )
        elif isinstance(message, TaskStatus | FieldReport):
            if directory.crew_mode(message.crew_id) is None:
                raise Rejected("unknown_crew", message.crew_id)
        elif isinstance(message, Reading):
            station_id = directory.station(message.station_id)
            if station_id is None:
                raise Rejected("unknown_station", message.station_id)
            return replace(message, station_id=station_id)
        elif isinstance(message, MeterReading):
            if not directory.meter(message.meter_id):
                raise Rejected("unknown_meter", message.meter_id)
        elif (
            isinstance(message, DeviceEvent)
            and message.source.startswith("owntracks:")
            and directory.owntracks_crew(message.source.removeprefix("owntracks:")) is None
        ):
            raise Rejected("unknown_device", message.source)
        elif (
            isinstance(message, DeviceEvent)
            and message.kind in ("birth", "death")
            and message.source.startswith(SPARKPLUG_PREFIX)
        ):
            # A node's death speaks for its devices too: known if any of them is bound.
            sources = [message.source, *message.detail.get("stale", {})]
            if all(directory.station(source) is None for source in sources):
                raise Rejected("unknown_station", message.source)
        return message

    def stale_readings(self, message: Message) -> list[Reading]:
        """A Sparkplug death makes the last values of its bound stations stale: a reading
        without value (as SCADA JSON reports a stale value) for each metric, at the death."""
        if not (
            isinstance(message, DeviceEvent)
            and message.kind == "death"
            and message.source.startswith(SPARKPLUG_PREFIX)
        ):
            return []
        from fieldline.device_gateway.decoders.sparkplug import BDSEQ_METRIC, CONTROL_PREFIXES

        readings = []
        for source, names in message.detail.get("stale", {}).items():
            station_id = self.directory.station(source)
            if station_id is None:
                continue
            readings += [
                Reading(station_id, name, message.ts, None)
                for name in names
                if name != BDSEQ_METRIC and not name.startswith(CONTROL_PREFIXES)
            ]
        return readings

    def collect(self, messages: list[Message], outcome: Outcome, now: datetime) -> None:
        # A backlog arrives in any order: judge its fixes in the order they were measured.
        fixes = [m for m in messages if isinstance(m, Fix)]
        if len(fixes) > 1:
            fixes.sort(key=lambda f: f.fix_time)
        for fix in fixes:
            reason = self.filter(fix, now)
            if reason is None:
                outcome.fixes.append(fix)
            else:
                outcome.quarantined.append((fix, reason))
                metrics.REJECTED.labels(reason).inc()
                log.info("fix of %s/%s quarantined: %s", fix.crew_id, fix.device, reason)
        for message in messages:
            if isinstance(message, Fix):
                continue  # judged above
            if isinstance(message, Reading):
                outcome.readings.append(message)
            elif isinstance(message, MeterReading):
                outcome.meter_readings.append(message)
            elif isinstance(message, TaskStatus):
                outcome.task_events.append(message)
            elif isinstance(message, FieldReport):
                outcome.reports.append(message)
            elif isinstance(message, DeviceEvent) and message.kind == "rebirth_needed":
                # The command is sent after the commit; the event is kept without its bytes.
                detail = dict(message.detail)
                payload: bytes = detail.pop("payload")
                outcome.commands.append(Command(detail["topic"], payload, detail["reason"]))
                outcome.device_events.append(replace(message, detail=detail))
            elif isinstance(message, DeviceEvent):
                outcome.device_events.append(message)

    def filter(self, fix: Fix, now: datetime) -> str | None:
        key = (fix.crew_id, fix.device)
        previous = self.previous.get(key)
        mode = self.directory.crew_mode(fix.crew_id) or "vehicle"
        candidate = filters.FilterInput(fix, now, mode, previous, self.limits)
        reason = filters.first_rejection(candidate, self.enabled_filters)
        if reason is None and (previous is None or fix.fix_time > previous.fix_time):
            self.previous[key] = fix
        return reason
