"""`fieldline gateway`: one MQTT worker.

paho's network loop runs in its own thread and only queues what arrives; a writer thread
decodes, writes batches and acknowledges. A QoS 1 message is acknowledged (paho's manual
acknowledgement) only after what it produced is committed, so a crash or a kill loses nothing:
the broker keeps the persistent session (clean start off, session expiry set) and delivers
again what was not acknowledged, and the idempotent writes make the second delivery a no-op.

`Client.ack` may be called from the writer thread: in paho 2 it queues the PUBACK under the
client's out-packet lock and wakes the network loop, as `publish` does.
"""

from __future__ import annotations

import gc
import logging
import signal
import socket
import threading
import time
from collections import deque
from collections.abc import Sequence
from datetime import UTC, datetime
from types import FrameType
from typing import Any, NamedTuple
from urllib.parse import urlsplit

import paho.mqtt.client as mqtt
import psycopg
import sqlalchemy as sa
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from fieldline.device_gateway import metrics
from fieldline.device_gateway.directory import DatabaseDirectory, DirectoryUnavailable
from fieldline.device_gateway.fanout import Fanout
from fieldline.device_gateway.pipeline import Inbound, Outcome, Pipeline
from fieldline.device_gateway.storage import Store, Written
from fieldline.device_gateway.task_handover import TaskHandover
from fieldline.device_gateway.topics import ROUTES
from fieldline.gis.db import make_engine
from fieldline.server.live.services import Live
from fieldline.server.telemetry.services import ensure_partitions
from fieldline.settings import Settings

log = logging.getLogger(__name__)

PARTITION_CHECK_S = 3600.0
RETRY_MAX_S = 5.0
SESSION_TAKEN_OVER = 0x8E  # MQTT 5 DISCONNECT reason: the same client id connected elsewhere
GC_YOUNG_THRESHOLD = 20_000  # allocations between collections of the youngest objects
INFLIGHT_BATCHES = 4  # unacknowledged messages the broker may send ahead, in batches


class Envelope(NamedTuple):  # a tuple: one is made for every message
    inbound: Inbound
    mid: int
    qos: int
    session: int  # which connection delivered it: a message id means nothing on another


class Inbox:
    """What the network thread received and the writer has not taken yet.

    A deque and an event rather than `queue.Queue`: the network thread appends without a lock,
    and the writer takes a whole batch at once instead of locking for every message.
    """

    def __init__(self) -> None:
        self._items: deque[Envelope] = deque()
        self._arrived = threading.Event()

    def put(self, envelope: Envelope) -> None:
        self._items.append(envelope)
        if not self._arrived.is_set():
            self._arrived.set()

    def empty(self) -> bool:
        return not self._items

    def wait(self, timeout: float) -> bool:
        """Whether something is waiting to be taken, waiting up to `timeout` seconds for it."""
        deadline = time.monotonic() + timeout
        while not self._items:
            # Cleared before looking again: an append after the look sets it again.
            self._arrived.clear()
            if self._items:
                break
            remaining = deadline - time.monotonic()
            if remaining <= 0 or not self._arrived.wait(remaining):
                return bool(self._items)
        return True

    def take(self, limit: int) -> list[Envelope]:
        items = self._items  # only the writer takes, so what it counted stays there
        return [items.popleft() for _ in range(min(limit, len(items)))]


def client_id(settings: Settings) -> str:
    """The worker's MQTT client id, the same across restarts: the broker keeps a persistent
    session, and keeps handing it its share of a shared subscription, while it is away, and
    only a worker with that id gets those messages. An id that changed on every start would
    leave each old session swallowing a share until it expired."""
    return settings.gateway_client_id or f"fieldline-gw-{socket.gethostname()}"


def subscriptions(group: str, sparkplug: bool) -> list[str]:
    """The shared subscriptions of every worker, and the stateful routes (Sparkplug) plainly in
    the one worker that takes them.

    A shared subscription hands each message to one worker of the group, round robin: an edge
    node's NBIRTH would reach one worker and its NDATA others, which know neither its aliases
    nor its `seq`, and would drop the data and ask for rebirths over and over. A plain
    subscription gets every Sparkplug message of the deployment, so exactly one worker may have
    FIELDLINE_GATEWAY_SPARKPLUG on; the others set it false.
    """
    shared = {f"$share/{group}/{route.pattern}" for route in ROUTES if not route.stateful}
    plain = {route.pattern for route in ROUTES if route.stateful and sparkplug}
    return sorted(shared | plain)


class Gateway:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.engine = make_engine(settings.database_url, pool_size=1, max_overflow=1)
        self.store = Store(
            settings.sqlalchemy_url.replace("postgresql+psycopg://", "postgresql://")
        )
        self.pipeline = Pipeline(settings, DatabaseDirectory(self.engine))
        self.live = Live.from_url(settings.redis_url, settings.redis_prefix)
        self.fanout = Fanout(
            self.live, self._announce, settings.deadletter_stream_maxlen, self._send_command
        )
        self.fanout.handover = TaskHandover(self.engine)
        self.inbox = Inbox()
        self.stopping = threading.Event()
        self.connected = threading.Event()
        self._session = 0
        self._received = 0  # messages received (written by the network thread only)
        self._received_counted = 0  # of which the PENDING gauge holds (the writer's)
        self._partitions_checked = float("-inf")
        self.client = self._make_client()
        self.writer = threading.Thread(target=self._write_loop, name="gateway-writer")

    # -- MQTT ---------------------------------------------------------------------------------

    def _make_client(self) -> mqtt.Client:
        client = mqtt.Client(
            CallbackAPIVersion.VERSION2,
            client_id=client_id(self.settings),
            protocol=mqtt.MQTTv5,
            manual_ack=True,
        )
        client.reconnect_delay_set(min_delay=1, max_delay=30)
        client.on_connect = self._on_connect
        client.on_disconnect = self._on_disconnect
        client.on_message = self._on_message
        return client

    def _on_connect(self, client: mqtt.Client, _u: Any, flags: Any, reason: Any, _p: Any) -> None:
        if reason.is_failure:
            log.warning("broker refused the connection: %s", reason)
            return
        self._session += 1
        topics = subscriptions(self.settings.gateway_share_group, self.settings.gateway_sparkplug)
        client.subscribe([(topic, 1) for topic in topics])
        log.info("connected (session present: %s)", flags.session_present)
        self.connected.set()

    def _on_disconnect(self, _c: mqtt.Client, _u: Any, _f: Any, reason: Any, _p: Any) -> None:
        self.connected.clear()
        if getattr(reason, "value", None) == SESSION_TAKEN_OVER:
            log.error(
                "another worker connected as %s and took this session over: give each worker "
                "its own FIELDLINE_GATEWAY_CLIENT_ID",
                client_id(self.settings),
            )
        if not self.stopping.is_set():
            log.warning("disconnected from the broker (%s); reconnecting", reason)

    def _on_message(self, _c: mqtt.Client, _u: Any, message: mqtt.MQTTMessage) -> None:
        inbound = Inbound(message.topic, bytes(message.payload), datetime.now(UTC))
        # Counted before it can be taken: the writer adds the count to the PENDING gauge, a
        # batch at a time, before it acknowledges (and subtracts) what it took.
        self._received += 1
        self.inbox.put(Envelope(inbound, message.mid, message.qos, self._session))

    def _announce(self, topic: str, payload: str) -> None:
        self.client.publish(topic, payload, qos=1)

    def _send_command(self, topic: str, payload: bytes) -> None:
        # Sparkplug: commands are QoS 0 and never retained (a stale rebirth request must not
        # reach an edge node that connects later).
        self.client.publish(topic, payload, qos=0, retain=False)

    def _count_received(self) -> None:
        received = self._received
        metrics.PENDING.inc(received - self._received_counted)
        self._received_counted = received

    def _ack(self, envelopes: Sequence[Envelope]) -> None:
        session, ack = self._session, self.client.ack
        for envelope in envelopes:
            # After a reconnect the broker delivers unacknowledged messages again, under new
            # ids; acknowledging an old id could acknowledge another message.
            if envelope.qos > 0 and envelope.session == session:
                ack(envelope.mid, envelope.qos)
        metrics.PENDING.dec(len(envelopes))

    # -- the writer ---------------------------------------------------------------------------

    def _gather(self) -> list[Envelope]:
        """A batch: up to FIELDLINE_GATEWAY_BATCH_SIZE messages, or what came within
        FIELDLINE_GATEWAY_FLUSH_MS of the first."""
        size = self.settings.gateway_batch_size
        if not self.inbox.wait(0.2):
            return []
        deadline = time.monotonic() + self.settings.gateway_flush_ms / 1000
        batch = self.inbox.take(size)
        while len(batch) < size:
            remaining = deadline - time.monotonic()
            if remaining <= 0 or not self.inbox.wait(remaining):
                break
            batch += self.inbox.take(size - len(batch))
        return batch

    def _write_loop(self) -> None:
        while not (self.stopping.is_set() and self.inbox.empty()):
            self._keep_partitions()
            batch = self._gather()
            self._count_received()
            if not batch:
                continue
            pairs = []
            for entry in batch:
                outcome = self._process_retrying(entry.inbound)
                if outcome is None:
                    log.warning(
                        "stopping with %d messages unwritten; the broker keeps them", len(batch)
                    )
                    return
                pairs.append((entry.inbound, outcome))
            started = time.perf_counter()
            committed = self._commit(pairs)
            if committed is None:
                log.warning(
                    "stopping with %d messages unwritten; the broker keeps them", len(batch)
                )
                return
            written, outcomes = committed
            metrics.COMMIT_SECONDS.observe(time.perf_counter() - started)
            metrics.BATCH_SIZE.observe(len(batch))
            oldest = min(entry.inbound.received_at for entry in batch)
            metrics.LAG_SECONDS.observe((datetime.now(UTC) - oldest).total_seconds())
            for table, count in written.counts.items():
                metrics.STORED.labels(table).inc(count)
            self.fanout.run(outcomes, written)
            self._ack(batch)

    def _commit(self, pairs: list[tuple[Inbound, Outcome]]) -> tuple[Written, list[Outcome]] | None:
        """Commit the batch; None when stopping while the database is away."""
        outcomes = [outcome for _, outcome in pairs]
        try:
            written = self._write_retrying(outcomes)
        except psycopg.Error as exc:
            # The database refuses a row: find the message at fault and dead-letter it, rather
            # than retry the batch forever.
            log.warning("database refused a batch (%s); writing its messages one by one", exc)
            return self._commit_singly(pairs)
        return None if written is None else (written, outcomes)

    def _commit_singly(
        self, pairs: list[tuple[Inbound, Outcome]]
    ) -> tuple[Written, list[Outcome]] | None:
        total, outcomes = Written(), []
        for inbound, outcome in pairs:
            try:
                written = self._write_retrying([outcome])
            except psycopg.Error as exc:
                outcome = self.pipeline.reject(inbound, outcome.kind, "storage_rejected", str(exc))
                written = self._write_retrying([outcome])
            if written is None:
                return None
            outcomes.append(outcome)
            for table, keys in written.inserted.items():
                total.inserted.setdefault(table, set()).update(keys)
            for table, count in written.counts.items():
                total.counts[table] = total.counts.get(table, 0) + count
        return total, outcomes

    def _process_retrying(self, inbound: Inbound) -> Outcome | None:
        """Process one message, waiting while the names it carries cannot be checked; None
        when stopping meantime. The check comes before the GPS filters, so a message that
        waits is filtered once, after it passes."""
        delay = 0.1
        while True:
            try:
                return self.pipeline.process(inbound)
            except DirectoryUnavailable as exc:
                metrics.STORAGE_RETRIES.inc()
                log.warning("database unavailable (%s); retrying in %.1f s", exc, delay)
                if self.stopping.wait(delay):
                    return None
                delay = min(delay * 2, RETRY_MAX_S)

    def _write_retrying(self, outcomes: list[Outcome]) -> Written | None:
        """Write, waiting out an unavailable database with back-off; the batch stays
        unacknowledged meanwhile. Other database errors are raised."""
        delay = 0.1
        while True:
            try:
                return self.store.write(outcomes)
            except psycopg.OperationalError as exc:
                metrics.STORAGE_RETRIES.inc()
                log.warning("database unavailable (%s); retrying in %.1f s", exc, delay)
                self.store.close()
                if self.stopping.wait(delay):
                    return None
                delay = min(delay * 2, RETRY_MAX_S)

    def _keep_partitions(self) -> None:
        if time.monotonic() - self._partitions_checked < PARTITION_CHECK_S:
            return
        try:
            with self.engine.begin() as connection:
                created = ensure_partitions(connection, datetime.now(UTC).date())
            if created:
                log.info("created %d daily partitions", created)
            self._partitions_checked = time.monotonic()
        except sa.exc.SQLAlchemyError as exc:  # rows go to DEFAULT meanwhile; try again later
            log.warning("could not create partitions ahead: %s", exc)

    # -- running ------------------------------------------------------------------------------

    def start(self) -> None:
        url = urlsplit(self.settings.mqtt_url)
        if url.scheme == "mqtts":
            self.client.tls_set()
        if url.username:
            self.client.username_pw_set(url.username, url.password)
        properties = Properties(PacketTypes.CONNECT)
        properties.SessionExpiryInterval = self.settings.mqtt_session_expiry_s
        # Messages stay unacknowledged until their batch commits: let the broker send several
        # batches' worth ahead (its default window of 20 would cap a worker at ~20 per flush),
        # so that the next batch arrives while one is written rather than after its acks.
        window = INFLIGHT_BATCHES * self.settings.gateway_batch_size
        properties.ReceiveMaximum = min(65535, max(20, window))
        self.client.connect_async(
            url.hostname or "localhost",
            url.port or (8883 if url.scheme == "mqtts" else 1883),
            keepalive=30,
            clean_start=False,
            properties=properties,
        )
        self.writer.start()
        self.client.loop_start()

    def stop(self) -> None:
        """Flush what is held, acknowledge it, then disconnect cleanly."""
        self.stopping.set()
        if self.writer.is_alive():
            self.writer.join()
        self.client.disconnect()
        self.client.loop_stop()
        self.store.close()
        self.engine.dispose()
        self.live.client.close()


def run(settings: Settings) -> None:
    """Run until SIGTERM or SIGINT."""
    from prometheus_client import start_http_server

    if settings.gateway_metrics_port:
        start_http_server(settings.gateway_metrics_port)
    gateway = Gateway(settings)
    # Every batch keeps thousands of young objects alive until its commit, so the collector
    # runs often; what start-up loaded (modules, the ORM, settings) lives as long as the
    # process, and scanning it again in every full collection cost about a tenth of a
    # worker's time. Freeze it out of the collections, and collect the young less often.
    gc.freeze()
    gc.set_threshold(GC_YOUNG_THRESHOLD)
    done = threading.Event()

    def _signal(signum: int, _frame: FrameType | None) -> None:
        log.info("signal %d: flushing and stopping", signum)
        done.set()

    signal.signal(signal.SIGTERM, _signal)
    signal.signal(signal.SIGINT, _signal)
    gateway.start()
    log.info(
        "gateway %s subscribed to %s",
        client_id(settings),
        ", ".join(subscriptions(settings.gateway_share_group, settings.gateway_sparkplug)),
    )
    done.wait()
    gateway.stop()
