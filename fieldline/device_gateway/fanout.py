"""The handlers that run after a batch is committed: update the latest positions, publish live
events, announce dead letters, send commands to devices (Sparkplug rebirth requests). The
database is the record; these are best effort, and a failure is logged and counted, never a
reason to hold back the acknowledgement (the rows they would announce are already stored)."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Sequence
from typing import Any

from fieldline.device_gateway import metrics
from fieldline.device_gateway.messages import Fix
from fieldline.device_gateway.pipeline import Outcome
from fieldline.device_gateway.storage import Written, dead_letter_json
from fieldline.server.live.services import Live

log = logging.getLogger(__name__)

DEADLETTER_TOPIC = "fieldline/deadletter"
Announce = Callable[[str, str], None]  # (MQTT topic, payload)
Send = Callable[[str, bytes], None]  # (MQTT topic, payload) of a command to a device


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

    def run(self, outcomes: Sequence[Outcome], written: Written) -> None:
        for name, handler in (
            ("update_latest", self.update_latest),
            ("publish_live", self.publish_live),
            ("announce_deadletter", self.announce_deadletter),
            ("send_commands", self.send_commands),
        ):
            try:
                handler(outcomes, written)
            except Exception:  # stored already; say so loudly and carry on
                log.exception("after-commit handler %s failed", name)
                metrics.HANDLER_FAILURES.labels(name).inc()

    def update_latest(self, outcomes: Sequence[Outcome], written: Written) -> None:
        fixes = sorted((f for o in outcomes for f in o.fixes), key=lambda f: f.fix_time)
        for fix in fixes:
            fix_ms = int(fix.fix_time.timestamp() * 1000)
            self.live.update_latest(fix.crew_id, fix_ms, fix.lon, fix.lat, fix_json(fix))

    def publish_live(self, outcomes: Sequence[Outcome], written: Written) -> None:
        for outcome in outcomes:
            for fix in outcome.fixes:
                if written.is_new("positions", (fix.crew_id, fix.device, fix.fix_time)):
                    self.live.publish({"type": "position", **fix_json(fix)})
            for reading in outcome.readings:
                key = (reading.station_id, reading.metric, reading.ts)
                if written.is_new("telemetry", key):
                    self.live.publish(
                        {
                            "type": "telemetry",
                            "station_id": reading.station_id,
                            "metric": reading.metric,
                            "ts": reading.ts.isoformat(),
                            "value": reading.value,
                        }
                    )

    def announce_deadletter(self, outcomes: Sequence[Outcome], written: Written) -> None:
        for outcome in outcomes:
            for entry in outcome.dead_letters:
                if not written.is_new("dead_letters", (entry.digest,)):
                    continue  # a redelivery, announced the first time
                body = dead_letter_json(entry)
                self.live.add_deadletter(body, self.stream_maxlen)
                self.live.publish({"type": "deadletter", **body})
                self.announce(DEADLETTER_TOPIC, json.dumps(body))

    def send_commands(self, outcomes: Sequence[Outcome], written: Written) -> None:
        for outcome in outcomes:
            for command in outcome.commands:
                self.send(command.topic, command.payload)
                metrics.SPARKPLUG_REBIRTHS.labels(command.reason).inc()
