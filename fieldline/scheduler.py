"""`fieldline scheduler`: the periodic jobs, in one process.

Each job is a named function with an interval, run again that long after its previous run
ended. Only one scheduler acts at a time: it holds a PostgreSQL advisory lock on a connection
of its own for as long as it leads, and any other scheduler started beside it (another machine,
a second replica) waits as a hot standby, trying the lock every few seconds, and takes over
within that time when the leader stops or dies (the database frees a session's locks when its
connection ends). A leader whose lock connection fails stops acting at once and goes back to
waiting, so two schedulers never act together.

A failing job is logged and counted (`fieldline_scheduler_job_failures_total`); the loop goes
on and runs it again at its next time. SIGTERM and SIGINT stop the loop after the job in hand.

Jobs beyond the built-in ones are added with `register(name, interval_s, run)` from a module
listed in JOB_MODULES, or as a row of `builtin_jobs`.
"""

from __future__ import annotations

import importlib
import logging
import signal
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from types import FrameType
from typing import Any

import sqlalchemy as sa
from prometheus_client import Counter, Gauge, Histogram
from sqlalchemy.orm import Session, sessionmaker

from fieldline.gis.db import make_engine, make_sessionmaker
from fieldline.server.live.services import Live
from fieldline.server.notices import services as notices
from fieldline.server.notices.backends import Notifier, notifiers
from fieldline.server.service_levels import services as service_levels
from fieldline.server.service_levels.services import CrewInbox
from fieldline.server.tasks.inbox import process_inbox
from fieldline.server.tasks.status_events import replay_pending_status_events
from fieldline.server.telemetry.services import ensure_partitions, prune
from fieldline.settings import Settings

log = logging.getLogger(__name__)

# The advisory lock of Fieldline's scheduler (any constant no other part uses): "fl-sched".
LOCK_KEY = int.from_bytes(b"fl-sched", "big")
STANDBY_POLL_S = 5.0  # how often a standby tries the lock: the longest takeover
LOCK_CHECK_S = 10.0  # how often the leader makes sure its lock connection is alive
# Modules that register jobs of their own when imported.
JOB_MODULES: tuple[str, ...] = (
    "fieldline.server.dispatch.jobs",
    "fieldline.server.verification.jobs",
    "fieldline.server.alarms.jobs",
    "fieldline.server.incidents.jobs",
    "fieldline.server.telemetry.jobs",
)

JOB_RUNS = Counter("fieldline_scheduler_job_runs_total", "Job runs that succeeded", ["job"])
JOB_FAILURES = Counter("fieldline_scheduler_job_failures_total", "Job runs that failed", ["job"])
JOB_SECONDS = Histogram("fieldline_scheduler_job_seconds", "Time a job run took", ["job"])
LEADER = Gauge("fieldline_scheduler_leader", "1 while this process holds the scheduler lock")


def utc_now() -> datetime:
    return datetime.now(UTC)


@dataclass
class JobContext:
    """What jobs work with, made once per process."""

    settings: Settings
    engine: sa.Engine
    live: Live
    channels: dict[str, Notifier]
    inbox: CrewInbox | None = None
    clock: Callable[[], datetime] = utc_now
    sessions: sessionmaker[Session] = field(init=False)

    def __post_init__(self) -> None:
        self.sessions = make_sessionmaker(self.engine)

    def now(self) -> datetime:
        return self.clock()


@dataclass(frozen=True)
class Job:
    name: str
    interval_s: float
    run: Callable[[JobContext], object]  # what it returns is logged at DEBUG
    # The setting that gives the interval instead, when there is one (`all_jobs(settings)`).
    interval_setting: str | None = None


JOBS: dict[str, Job] = {}


def register(
    name: str,
    interval_s: float,
    run: Callable[[JobContext], object],
    *,
    interval_setting: str | None = None,
) -> Job:
    """Add a job to every scheduler started afterwards; names are unique. `interval_setting`
    names the setting that overrides `interval_s` when the scheduler starts."""
    if name in JOBS:
        raise ValueError(f"a job named {name!r} is registered already")
    if interval_s <= 0:
        raise ValueError("interval_s must be positive")
    job = Job(name, interval_s, run, interval_setting)
    JOBS[name] = job
    return job


# -- the built-in jobs ---------------------------------------------------------------------


def evaluate_service_levels(context: JobContext) -> int:
    with context.sessions() as session:
        raised = service_levels.evaluate(session, context.now(), context.settings)
        session.commit()
        # Announced after the commit: the live stream never shows a warning that is not stored.
        service_levels.announce(session, context.live, context.inbox, context.now())
        session.commit()
    return len(raised)


def deliver_notices(context: JobContext) -> notices.Delivery:
    with context.sessions() as session:
        return notices.deliver_pending(session, context.channels, context.now(), context.settings)


def check_arriving(context: JobContext) -> int:
    with context.sessions() as session:
        written = notices.check_arriving(
            session, context.live.latest(), context.now(), context.settings
        )
        session.commit()
    return written


def write_follow_ups(context: JobContext) -> int:
    with context.sessions() as session:
        written = notices.write_follow_ups(session, context.now(), context.settings)
        session.commit()
    return written


def prune_partitions(context: JobContext) -> list[str]:
    with context.engine.begin() as connection:
        settings = context.settings
        return prune(
            connection,
            settings.retention_days,
            context.now().date(),
            history_retention_days=settings.position_history_retention_days,
        )


def partitions_ahead(context: JobContext) -> int:
    with context.engine.begin() as connection:
        return ensure_partitions(connection, context.now().date())


def replay_status_reports(context: JobContext) -> dict[str, int]:
    """Crews' status reports stored while the tasks could not take them (the database went
    away between the gateway's commit and its hand-over)."""
    with context.sessions() as session:
        return replay_pending_status_events(session, context.now(), context.live)


def builtin_jobs() -> list[Job]:
    return [
        Job("service_levels", 30, evaluate_service_levels),
        Job("notice_delivery", 10, deliver_notices),
        Job("arriving_soon", 60, check_arriving),
        Job("follow_ups", 600, write_follow_ups),
        Job("prune", 86_400, prune_partitions),
        Job("partitions_ahead", 3600, partitions_ahead),
        Job("status_report_replay", 60, replay_status_reports),
    ]


def all_jobs(settings: Settings | None = None) -> list[Job]:
    """Every job; with `settings`, the intervals that settings give."""
    for module in JOB_MODULES:
        importlib.import_module(module)
    jobs = builtin_jobs()
    taken = {job.name for job in jobs}
    clashes = taken & set(JOBS)
    if clashes:
        raise ValueError(f"registered jobs clash with built-in ones: {', '.join(sorted(clashes))}")
    jobs += JOBS.values()
    if settings is None:
        return jobs
    return [
        replace(job, interval_s=float(getattr(settings, job.interval_setting)))
        if job.interval_setting
        else job
        for job in jobs
    ]


# -- the loop --------------------------------------------------------------------------------


class Scheduler:
    def __init__(
        self,
        jobs: Sequence[Job],
        context: JobContext,
        lock_engine: sa.Engine,
        *,
        lock_key: int = LOCK_KEY,
        standby_poll_s: float = STANDBY_POLL_S,
        lock_check_s: float = LOCK_CHECK_S,
    ) -> None:
        names = [job.name for job in jobs]
        if len(set(names)) != len(names):
            raise ValueError("job names must be unique")
        self.jobs = list(jobs)
        self.context = context
        self.lock_engine = lock_engine
        self.lock_key = lock_key
        self.standby_poll_s = standby_poll_s
        self.lock_check_s = lock_check_s
        self.leading = threading.Event()  # set while this scheduler holds the lock

    def run(self, stop: threading.Event) -> None:
        """Wait for the lock, lead until stopped or the lock is lost, and again."""
        while not stop.is_set():
            lock = self._acquire(stop)
            if lock is None:
                return
            try:
                self._lead(lock, stop)
            finally:
                self._release(lock)

    def _acquire(self, stop: threading.Event) -> sa.Connection | None:
        waiting_logged = False
        while not stop.is_set():
            try:
                lock = self.lock_engine.connect().execution_options(isolation_level="AUTOCOMMIT")
            except sa.exc.SQLAlchemyError as exc:
                log.warning("database unavailable, cannot try the scheduler lock: %s", exc)
            else:
                held: bool | None = False
                try:
                    held = lock.execute(
                        sa.text("SELECT pg_try_advisory_lock(:key)"), {"key": self.lock_key}
                    ).scalar()
                except sa.exc.SQLAlchemyError as exc:
                    log.warning("cannot try the scheduler lock: %s", exc)
                    held = False
                if held:
                    return lock
                lock.invalidate()
                lock.close()
                if not waiting_logged:
                    log.info("another scheduler leads; waiting as standby")
                    waiting_logged = True
            stop.wait(self.standby_poll_s)
        return None

    def _release(self, lock: sa.Connection) -> None:
        # Invalidated rather than returned to the pool: closing the session frees the lock
        # even when the unlock cannot be sent.
        try:
            lock.execute(sa.text("SELECT pg_advisory_unlock(:key)"), {"key": self.lock_key})
        except sa.exc.SQLAlchemyError:
            pass
        finally:
            lock.invalidate()
            lock.close()

    def _holds(self, lock: sa.Connection) -> bool:
        """The lock lives as long as its session: a working connection still holds it."""
        try:
            lock.execute(sa.text("SELECT 1"))
        except sa.exc.SQLAlchemyError as exc:
            log.error("lost the scheduler lock's connection, standing down: %s", exc)
            return False
        return True

    def _lead(self, lock: sa.Connection, stop: threading.Event) -> None:
        log.info("leading: %s", ", ".join(f"{j.name} every {j.interval_s:g} s" for j in self.jobs))
        LEADER.set(1)
        self.leading.set()
        try:
            started = time.monotonic()
            due = {job.name: started for job in self.jobs}
            next_check = started + self.lock_check_s
            while not stop.is_set():
                if time.monotonic() >= next_check:
                    if not self._holds(lock):
                        return
                    next_check = time.monotonic() + self.lock_check_s
                for job in self.jobs:
                    if stop.is_set():
                        return
                    if due[job.name] <= time.monotonic():
                        run_job(job, self.context)
                        due[job.name] = time.monotonic() + job.interval_s
                stop.wait(max(0.0, min([*due.values(), next_check]) - time.monotonic()))
        finally:
            self.leading.clear()
            LEADER.set(0)


def run_job(job: Job, context: JobContext) -> bool:
    """Run one job; a failure is logged and counted, never raised. True when it succeeded."""
    started = time.perf_counter()
    try:
        result: Any = job.run(context)
    except Exception:
        log.exception("job %s failed", job.name)
        JOB_FAILURES.labels(job.name).inc()
        return False
    finally:
        JOB_SECONDS.labels(job.name).observe(time.perf_counter() - started)
    JOB_RUNS.labels(job.name).inc()
    log.debug("job %s: %s", job.name, result)
    return True


def run(settings: Settings) -> None:
    """`fieldline scheduler`: until SIGTERM or SIGINT."""
    from prometheus_client import start_http_server

    if settings.scheduler_metrics_port:
        start_http_server(settings.scheduler_metrics_port)
    engine = make_engine(settings.database_url, pool_size=2, max_overflow=2)
    lock_engine = make_engine(settings.database_url, pool_size=1, max_overflow=0)
    live = Live.from_url(settings.redis_url, settings.redis_prefix)
    inbox = process_inbox(settings.mqtt_url, settings.inbox_timeout_s)
    context = JobContext(
        settings,
        engine,
        live,
        notifiers(settings),
        inbox=lambda crew, message: inbox.send(crew, message).delivered,
    )
    scheduler = Scheduler(all_jobs(settings), context, lock_engine)
    stop = threading.Event()

    def _signal(signum: int, _frame: FrameType | None) -> None:
        log.info("signal %d: stopping after the job in hand", signum)
        stop.set()

    signal.signal(signal.SIGTERM, _signal)
    signal.signal(signal.SIGINT, _signal)
    try:
        scheduler.run(stop)
    finally:
        engine.dispose()
        lock_engine.dispose()
        live.client.close()
        inbox.close()
    log.info("scheduler stopped")
