"""`fieldline gateway`: one MQTT worker, two processes.

The receiving process (receiver.py) holds the MQTT connection: paho's network loop receives and
acknowledges there, and hands the messages over in chunks through a pipe. This, the main
process, decodes and filters batches in its writer thread, and commits and fans them out in its
committer thread, in order, one batch behind (so that a batch's wait on PostgreSQL and Redis
overlaps the next one's decoding), and reports each committed batch back; only then does the
receiving process acknowledge it (paho's manual acknowledgement). The two processes use two
cores, where one process would share one under the GIL.

A crash or a kill loses nothing: the broker keeps the persistent session (clean start off,
session expiry set) and delivers again what was not acknowledged, and the idempotent writes
make the second delivery a no-op. If the receiving process dies, nothing can be acknowledged
any more: the worker stops and exits non-zero (`run`), to be started again by whatever runs it;
if this process dies, the receiving process exits at once.

Keeping the session is right for a restart, and wrong for a worker removed for good: the
broker would go on queueing its share for it. SIGUSR1 (or `fieldline gateway --retire`, for a
worker already stopped) retires the worker: it unsubscribes, stores and acknowledges what its
session still delivers, and once nothing more comes (receiver.RETIRE_QUIET_S) disconnects
with Session Expiry Interval 0, so that the broker discards the session, and exits 0.
"""

from __future__ import annotations

import contextlib
import gc
import logging
import multiprocessing
import queue
import signal
import socket
import threading
import time
from collections import deque
from collections.abc import Callable
from datetime import UTC, datetime
from multiprocessing.connection import wait
from types import FrameType
from typing import Any
from urllib.parse import urlsplit

import psycopg
import sqlalchemy as sa

from fieldline.device_gateway import metrics, receiver
from fieldline.device_gateway.directory import DatabaseDirectory, DirectoryUnavailable
from fieldline.device_gateway.fanout import Fanout
from fieldline.device_gateway.pipeline import Inbound, Outcome, Pipeline
from fieldline.device_gateway.rate_limit import DeviceRateLimit
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
INFLIGHT_BATCHES = 4  # unacknowledged messages the broker may send ahead, in batches
RECEIVER_STOP_S = 10.0  # for the receiving process to disconnect cleanly


Processed = list[tuple[Inbound, Outcome]]  # a batch ready to commit, in arrival order


class ReceiverGone(Exception):
    """The receiving process ended: nothing can be acknowledged any more."""


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


def link(settings: Settings, retire: bool = False) -> receiver.Link:
    url = urlsplit(settings.mqtt_url)
    # Messages stay unacknowledged until their batch commits: let the broker send several
    # batches' worth ahead (its default window of 20 would cap a worker at ~20 per flush),
    # so that the next batch arrives while one is written rather than after its acks.
    window = INFLIGHT_BATCHES * settings.gateway_batch_size
    return receiver.Link(
        client_id=client_id(settings),
        host=url.hostname or "localhost",
        port=url.port or (8883 if url.scheme == "mqtts" else 1883),
        tls=url.scheme == "mqtts",
        username=url.username,
        password=url.password,
        keepalive_s=settings.mqtt_keepalive_s,
        session_expiry_s=settings.mqtt_session_expiry_s,
        receive_maximum=min(65535, max(20, window)),
        topics=tuple(subscriptions(settings.gateway_share_group, settings.gateway_sparkplug)),
        inflight_max=max(20, window),
        log_level=logging.getLogger().getEffectiveLevel(),
        retire=retire,
    )


class Gateway:
    def __init__(self, settings: Settings, retire: bool = False) -> None:
        self.settings = settings
        self.engine = make_engine(settings.database_url, pool_size=1, max_overflow=1)
        self.store = Store(
            settings.sqlalchemy_url.replace("postgresql+psycopg://", "postgresql://")
        )
        self.pipeline = Pipeline(settings, DatabaseDirectory(self.engine))
        self.live = Live.from_url(settings.redis_url, settings.redis_prefix)
        self.rate_limit = DeviceRateLimit.from_url(
            settings.redis_url, settings.redis_prefix, settings.rate_limit_device
        )
        self.fanout = Fanout(
            self.live, self._announce, settings.deadletter_stream_maxlen, self._send_command
        )
        self.fanout.handover = TaskHandover(self.engine)
        self.stopping = threading.Event()
        self.connected = threading.Event()
        self.failed = threading.Event()  # the receiving process or the writer ended unasked
        self.retiring = threading.Event()  # leave the share group for good (SIGUSR1)
        self.retired = threading.Event()  # the session has nothing more: stop, ending it
        if retire:
            self.retiring.set()
        self._held: deque[Inbound] = deque()  # handed over, not in a batch yet
        self._drained = False  # the receiving process hands over nothing more
        self._released = False  # the receiving process is told to stop: its end is expected
        self._partitions_checked = float("-inf")
        # A processed batch waits here for the committer while the next one is processed.
        self._to_commit: queue.Queue[Processed | None] = queue.Queue(maxsize=1)
        self._telling = threading.Lock()
        # Spawned, not forked: the worker may hold threads and connections by now (the tests
        # run it inside pytest), which a fork would copy half-made.
        context = multiprocessing.get_context("spawn")
        self._pipe, far_end = context.Pipe()
        self.receiver = context.Process(
            target=receiver.main, args=(link(settings, retire), far_end), name="gateway-receiver"
        )
        self._far_end = far_end
        self.writer = threading.Thread(target=self._write_loop, name="gateway-writer")
        self.watcher = threading.Thread(
            target=self._watch, name="gateway-receiver-watch", daemon=True
        )

    # -- the receiving process ----------------------------------------------------------------

    def _tell(self, *note: Any) -> None:
        try:
            with self._telling:  # the writer and the committer both tell
                self._pipe.send(note)
        except OSError as exc:
            raise ReceiverGone from exc

    def _announce(self, topic: str, payload: str) -> None:
        self._tell(receiver.PUBLISH, topic, payload, 1, False)

    def _send_command(self, topic: str, payload: bytes) -> None:
        # Sparkplug: commands are QoS 0 and never retained (a stale rebirth request must not
        # reach an edge node that connects later).
        self._tell(receiver.PUBLISH, topic, payload, 0, False)

    def _read(self) -> None:
        """Take one note from the receiving process (waiting for it)."""
        try:
            note = self._pipe.recv()
        except (EOFError, OSError) as exc:
            raise ReceiverGone from exc
        kind = note[0]
        if kind == receiver.MESSAGES:
            self._held.extend(
                Inbound(topic, payload, datetime.fromtimestamp(at, UTC))
                for topic, payload, at in note[1]
            )
            metrics.PENDING.inc(len(note[1]))
        elif kind == receiver.CONNECTED:
            self.connected.set()
        elif kind == receiver.DISCONNECTED:
            self.connected.clear()
        elif kind == receiver.DRAINED:
            self._drained = True
        elif kind == receiver.RETIRED:
            self.retired.set()

    def _wait_held(self, timeout: float) -> bool:
        """Whether messages are held, reading the pipe for up to `timeout` seconds."""
        deadline = time.monotonic() + timeout
        while not self._held and not self._drained:
            if not self._pipe.poll(max(0.0, deadline - time.monotonic())):
                break
            self._read()
        return bool(self._held)

    def _take(self, limit: int) -> list[Inbound]:
        held = self._held
        return [held.popleft() for _ in range(min(limit, len(held)))]

    def _watch(self) -> None:
        wait([self.receiver.sentinel])
        if not self._released:
            log.error(
                "the receiving process ended (exit code %s): stopping; the broker delivers "
                "again what was not acknowledged",
                self.receiver.exitcode,
            )
            self.failed.set()
            self.stopping.set()

    # -- the writer ---------------------------------------------------------------------------

    def _gather(self) -> list[Inbound]:
        """A batch: up to FIELDLINE_GATEWAY_BATCH_SIZE messages, or what came within
        FIELDLINE_GATEWAY_FLUSH_MS of the first."""
        size = self.settings.gateway_batch_size
        if not self._wait_held(0.2):
            return []
        deadline = time.monotonic() + self.settings.gateway_flush_ms / 1000
        batch = self._take(size)
        while len(batch) < size:
            remaining = deadline - time.monotonic()
            if remaining <= 0 or not self._wait_held(remaining):
                break
            batch += self._take(size - len(batch))
        return batch

    def _write_loop(self) -> None:
        self._run_guarded(self._write_batches, "writer")

    def _run_guarded(self, work: Callable[[], None], name: str) -> None:
        try:
            work()
        except ReceiverGone:
            self.failed.set()  # the watcher says why
            self.stopping.set()
        except Exception:  # a bug: stop, and say so by the exit status (`run`)
            log.exception("the %s failed: stopping", name)
            self.failed.set()
            self.stopping.set()

    def _write_batches(self) -> None:
        """Process batches here and commit them in a thread of their own, in order: while one
        batch waits on PostgreSQL and Redis, the next is decoded and filtered."""
        committer = threading.Thread(
            target=self._run_guarded,
            args=(self._commit_batches, "committer"),
            name="gateway-committer",
        )
        committer.start()
        try:
            self._process_batches(committer)
        finally:
            self._hand_to_committer(None, committer)
            committer.join()

    def _hand_to_committer(self, batch: Processed | None, committer: threading.Thread) -> bool:
        """Queue a processed batch (None: no more); False if the committer has ended."""
        while committer.is_alive():
            try:
                self._to_commit.put(batch, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def _process_batches(self, committer: threading.Thread) -> None:
        draining = retire_told = False
        # Stopping, the receiving process first hands over all it holds (`drain`), and every
        # message it handed over is committed and reported before the worker stops.
        while not (self._drained and not self._held):
            if self.retiring.is_set() and not retire_told:
                self._tell(receiver.RETIRE)
                retire_told = True
            if self.stopping.is_set() and not draining:
                if self.failed.is_set():
                    return
                self._tell(receiver.DRAIN)
                draining = True
            self._keep_partitions()
            batch = self._gather()
            if not batch:
                continue
            pairs = []
            over = self.rate_limit.over([inbound.topic for inbound in batch])
            for inbound, limited in zip(batch, over, strict=True):
                if limited:
                    detail = f"more than {self.settings.rate_limit_device} messages a minute"
                    rejected = self.pipeline.reject(inbound, "", "rate_limited", detail)
                    pairs.append((inbound, rejected))
                    continue
                outcome = self._process_retrying(inbound)
                if outcome is None:
                    log.warning(
                        "stopping with %d messages unwritten; the broker keeps them", len(batch)
                    )
                    return
                pairs.append((inbound, outcome))
            if not self._hand_to_committer(pairs, committer):
                return

    def _commit_batches(self) -> None:
        while (pairs := self._to_commit.get()) is not None:
            started = time.perf_counter()
            committed = self._commit(pairs)
            if committed is None:
                log.warning(
                    "stopping with %d messages unwritten; the broker keeps them", len(pairs)
                )
                return
            written, outcomes = committed
            metrics.COMMIT_SECONDS.observe(time.perf_counter() - started)
            metrics.BATCH_SIZE.observe(len(pairs))
            oldest = min(inbound.received_at for inbound, _ in pairs)
            metrics.LAG_SECONDS.observe((datetime.now(UTC) - oldest).total_seconds())
            for table, count in written.counts.items():
                metrics.STORED.labels(table).inc(count)
            self.fanout.run(outcomes, written)
            self._tell(receiver.DONE, len(pairs))  # acknowledged there, in order
            metrics.PENDING.dec(len(pairs))

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
        self.receiver.start()
        self._far_end.close()  # the receiving process holds it: its end closes the pipe
        self.watcher.start()
        self.writer.start()

    def stop(self) -> None:
        """Flush what is held, acknowledge it, then disconnect cleanly."""
        self.stopping.set()
        if self.writer.is_alive():
            self.writer.join()
        self._released = True
        with contextlib.suppress(ReceiverGone):
            self._tell(receiver.STOP)
        self.receiver.join(RECEIVER_STOP_S)
        if self.receiver.is_alive():
            log.warning("the receiving process did not stop; killing it")
            self.receiver.kill()
            self.receiver.join()
        if self.retiring.is_set() and self.receiver.exitcode != 0:
            self.failed.set()  # the session is kept (the receiving process said why)
        self._pipe.close()
        self.store.close()
        self.engine.dispose()
        self.live.client.close()


def run(settings: Settings, retire: bool = False) -> None:
    """Run until SIGTERM or SIGINT, or until retired (SIGUSR1, or `retire` from the start)."""
    from prometheus_client import start_http_server

    if settings.gateway_metrics_port:
        start_http_server(settings.gateway_metrics_port)
    gateway = Gateway(settings, retire)
    # Every batch keeps thousands of young objects alive until its commit, so the collector
    # runs often; what start-up loaded (modules, the ORM, settings) lives as long as the
    # process, and scanning it again in every full collection cost about a tenth of a
    # worker's time. Freeze it out of the collections, and collect the young less often.
    gc.freeze()
    gc.set_threshold(receiver.GC_YOUNG_THRESHOLD)
    done = threading.Event()

    def _signal(signum: int, _frame: FrameType | None) -> None:
        log.info("signal %d: flushing and stopping", signum)
        done.set()

    def _retire(signum: int, _frame: FrameType | None) -> None:
        log.info("signal %d: retiring: unsubscribing, then ending the session", signum)
        gateway.retiring.set()

    signal.signal(signal.SIGTERM, _signal)
    signal.signal(signal.SIGINT, _signal)
    signal.signal(signal.SIGUSR1, _retire)
    gateway.start()
    log.info(
        "gateway %s %s %s",
        client_id(settings),
        "retiring from" if retire else "subscribed to",
        ", ".join(subscriptions(settings.gateway_share_group, settings.gateway_sparkplug)),
    )
    while not (done.wait(0.5) or gateway.failed.is_set() or gateway.retired.is_set()):
        pass
    gateway.stop()
    if gateway.failed.is_set():
        raise SystemExit(1)
