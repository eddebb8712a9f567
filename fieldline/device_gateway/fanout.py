"""The handlers that run after a batch is committed: update the latest positions, publish live
events, announce dead letters, send commands to devices (Sparkplug rebirth requests). The
database is the record; these are best effort, and a failure is logged and counted, never a
reason to hold back the acknowledgement (the rows they would announce are already stored).

The Redis commands of a batch go in one pipeline, sent once the handlers have run: one round
trip per batch instead of one per fix; the latest positions of a batch are one script call.
The live events of a batch go in one command too, a script that publishes them one by one, so
subscribers still get one message per event. orjson encodes them (compact, as Live.publish
does, at a fraction of the standard library's cost: this runs for every fix)."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Sequence
from dataclasses import asdict
from typing import Any

import orjson

from fieldline.device_gateway import metrics
from fieldline.device_gateway.messages import Fix
from fieldline.device_gateway.pipeline import Outcome
from fieldline.device_gateway.storage import Written, dead_letter_json
from fieldline.device_gateway.task_handover import TaskHandover
from fieldline.server.live.services import Live
from fieldline.server.reports.services import report_event
from fieldline.server.tasks.services import publish_live

log = logging.getLogger(__name__)

DEADLETTER_TOPIC = "fieldline/deadletter"
Announce = Callable[[str, str], None]  # (MQTT topic, payload)
Send = Callable[[str, bytes], None]  # (MQTT topic, payload) of a command to a device
PUBLISH_EACH = "for i = 1, #ARGV do redis.call('PUBLISH', KEYS[1], ARGV[i]) end return #ARGV"


def fix_json(fix: Fix) -> dict[str, Any]:
    return {
        "crew_id": fix.crew_id,
        "device": fix.device,
        "fix_time": fix.fix_time.isoformat(),
        "lat": fix.lat,
        "lon": fix.lon,
        "acc_m": fix.acc_m,
        "speed_mps": fix.speed_mps,
        "heading_deg": fix.heading_deg,
    }


class Fanout:
    def __init__(self, live: Live, announce: Announce, stream_maxlen: int, send: Send) -> None:
        self.live = live
        self.announce = announce
        self.stream_maxlen = stream_maxlen
        self.send = send
        self.handover: TaskHandover | None = None  # the worker sets it
        # The handlers queue their Redis commands here; `run` sends them in one round trip.
        self._pipe = live.client.pipeline(transaction=False)
        self._queued = Live(self._pipe, live.keys.prefix)
        self._publish_each = live.client.register_script(PUBLISH_EACH)

    def run(self, outcomes: Sequence[Outcome], written: Written) -> None:
        queued: list[tuple[str, int]] = []  # (handler, Redis commands it queued), in order
        for name, handler in (
            ("update_latest", self.update_latest),
            ("publish_live", self.publish_live),
            ("announce_deadletter", self.announce_deadletter),
            ("send_commands", self.send_commands),
            ("hand_over_tasks", self.hand_over_tasks),
        ):
            before = len(self._pipe)
            try:
                handler(outcomes, written)
            except Exception:  # stored already; say so loudly and carry on
                log.exception("after-commit handler %s failed", name)
                metrics.HANDLER_FAILURES.labels(name).inc()
            queued.append((name, len(self._pipe) - before))
        self._send_queued(queued)

    def _send_queued(self, queued: list[tuple[str, int]]) -> None:
        """Send the queued Redis commands; a failure counts against the handler that queued
        the command (all of them that queued any when Redis cannot be reached)."""
        if not len(self._pipe):
            return
        try:
            results = self._pipe.execute(raise_on_error=False)
        except Exception:
            log.exception("after-commit Redis commands failed")
            for name, count in queued:
                if count:
                    metrics.HANDLER_FAILURES.labels(name).inc()
            return
        start = 0
        for name, count in queued:
            errors = [r for r in results[start : start + count] if isinstance(r, Exception)]
            start += count
            if errors:
                log.error("after-commit handler %s failed: %s", name, errors[0])
                metrics.HANDLER_FAILURES.labels(name).inc()

    def update_latest(self, outcomes: Sequence[Outcome], written: Written) -> None:
        # Only the newest fix of each crew can win Redis's compare (it keeps the later fix
        # time in ms, the first of equals): the others would be refused there, one by one.
        newest: dict[str, tuple[int, Fix]] = {}
        for outcome in outcomes:
            for fix in outcome.fixes:
                fix_ms = int(fix.fix_time.timestamp() * 1000)
                held = newest.get(fix.crew_id)
                if (
                    held is None
                    or fix_ms > held[0]
                    or (fix_ms == held[0] and fix.fix_time < held[1].fix_time)
                ):
                    newest[fix.crew_id] = (fix_ms, fix)
        if newest:
            self._queued.update_latest_many(
                [
                    (fix.crew_id, fix_ms, fix.lon, fix.lat, orjson.dumps(fix_json(fix)))
                    for fix_ms, fix in newest.values()
                ]
            )

    def publish_live(self, outcomes: Sequence[Outcome], written: Written) -> None:
        events: list[dict[str, Any]] = []
        for outcome in outcomes:
            for fix in outcome.fixes:
                if written.is_new("positions", (fix.crew_id, fix.device, fix.fix_time)):
                    events.append({"type": "position", **fix_json(fix)})
            for reading in outcome.readings:
                key = (reading.station_id, reading.metric, reading.ts)
                if written.is_new("telemetry", key):
                    events.append(
                        {
                            "type": "telemetry",
                            "station_id": reading.station_id,
                            "metric": reading.metric,
                            "ts": reading.ts.isoformat(),
                            "value": reading.value,
                        }
                    )
        # A report's key with the id the database gave it; only new ones came back.
        report_ids = {key[:3]: key[3] for key in written.inserted.get("field_reports", ())}
        for outcome in outcomes:
            for report in outcome.reports:
                public_id = report_ids.get((report.crew_id, report.ts, report.kind))
                if public_id is not None:
                    fields = asdict(report) | {"public_id": public_id}
                    events.append(report_event(fields | {"received_at": outcome.received_at}))
        if events:
            texts = [orjson.dumps(event) for event in events]
            self._publish_each(keys=[self.live.keys.channel], args=texts, client=self._pipe)

    def announce_deadletter(self, outcomes: Sequence[Outcome], written: Written) -> None:
        for outcome in outcomes:
            for entry in outcome.dead_letters:
                if not written.is_new("dead_letters", (entry.digest,)):
                    continue  # a redelivery, announced the first time
                body = dead_letter_json(entry)
                self._queued.add_deadletter(body, self.stream_maxlen)
                self._queued.publish({"type": "deadletter", **body})
                self.announce(DEADLETTER_TOPIC, json.dumps(body))

    def send_commands(self, outcomes: Sequence[Outcome], written: Written) -> None:
        for outcome in outcomes:
            for command in outcome.commands:
                self.send(command.topic, command.payload)
                metrics.SPARKPLUG_REBIRTHS.labels(command.reason).inc()

    def hand_over_tasks(self, outcomes: Sequence[Outcome], written: Written) -> None:
        """The crews' new status reports to their tasks (task_handover.py); the changes go
        out live, the refused reports as dead letters."""
        if self.handover is None:
            return
        handed = self.handover(outcomes, written)
        publish_live(self._queued, handed.events)
        for body in handed.dead_letters:
            self._queued.add_deadletter(body, self.stream_maxlen)
            self._queued.publish({"type": "deadletter", **body})
            self.announce(DEADLETTER_TOPIC, json.dumps(body))
