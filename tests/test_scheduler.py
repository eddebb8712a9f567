"""`fieldline scheduler`: one leader at a time through the advisory lock, jobs isolated from
each other, a clean stop on SIGTERM."""

from __future__ import annotations

import os
import random
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import redis
import sqlalchemy as sa
from prometheus_client import REGISTRY

from fieldline import scheduler as scheduling
from fieldline.gis.db import make_engine
from fieldline.scheduler import Job, JobContext, Scheduler
from fieldline.server.live.services import Live
from fieldline.settings import Settings

pytestmark = pytest.mark.slow


def wait_for(condition: Callable[[], bool], timeout_s: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.02)
    return condition()


@pytest.fixture
def context(settings: Settings, engine: sa.Engine) -> Iterator[JobContext]:
    live = Live(
        redis.Redis.from_url(settings.redis_url, decode_responses=True), "fieldline_test_sla"
    )
    yield JobContext(settings, engine, live, {})
    live.client.close()


@pytest.fixture
def lock_key() -> int:
    return random.randint(1, 2**62)  # a lock of this test's own


class Running:
    """Schedulers in threads, each with its own lock connection, stopped at the end."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.started: list[tuple[threading.Event, threading.Thread, sa.Engine]] = []

    def start(
        self, jobs: list[Job], context: JobContext, lock_key: int, **options: float
    ) -> tuple[Scheduler, threading.Event]:
        lock_engine = make_engine(self.settings.database_url, pool_size=1, max_overflow=0)
        found = Scheduler(
            jobs, context, lock_engine, lock_key=lock_key, standby_poll_s=0.05, **options
        )
        stop = threading.Event()
        thread = threading.Thread(target=found.run, args=(stop,), daemon=True)
        thread.start()
        self.started.append((stop, thread, lock_engine))
        return found, stop

    def close(self) -> None:
        for stop, thread, lock_engine in self.started:
            stop.set()
            thread.join(timeout=10)
            assert not thread.is_alive()
            lock_engine.dispose()


@pytest.fixture
def running(settings: Settings) -> Iterator[Running]:
    found = Running(settings)
    yield found
    found.close()


def test_one_scheduler_acts_the_other_waits_then_takes_over(
    context: JobContext, lock_key: int, running: Running
) -> None:
    runs: list[str] = []

    def job(name: str) -> Job:
        return Job(f"tick-{uuid.uuid4().hex[:6]}", 0.02, lambda _c: runs.append(name))

    first, stop_first = running.start([job("first")], context, lock_key)
    assert wait_for(first.leading.is_set)
    second, _ = running.start([job("second")], context, lock_key)
    time.sleep(0.5)  # ten standby polls
    assert not second.leading.is_set()
    assert "first" in runs and "second" not in runs
    stop_first.set()
    assert wait_for(second.leading.is_set)
    assert wait_for(lambda: "second" in runs)
    assert not first.leading.is_set()
    # Once the second leads, the first never runs again.
    first_runs = runs.count("first")
    time.sleep(0.2)
    assert runs.count("first") == first_runs


def test_a_failing_job_is_counted_and_the_others_keep_running(
    context: JobContext, lock_key: int, running: Running
) -> None:
    name = f"boom-{uuid.uuid4().hex[:6]}"
    good: list[int] = []

    def boom(_context: JobContext) -> None:
        raise RuntimeError("the job broke")

    jobs = [Job(name, 0.02, boom), Job(f"good-{name}", 0.02, lambda _c: good.append(1))]
    leader, _ = running.start(jobs, context, lock_key)
    assert wait_for(
        lambda: (
            (
                REGISTRY.get_sample_value("fieldline_scheduler_job_failures_total", {"job": name})
                or 0
            )
            >= 3
        )
    )
    assert wait_for(lambda: len(good) >= 3)
    assert leader.leading.is_set()
    assert REGISTRY.get_sample_value("fieldline_scheduler_job_runs_total", {"job": name}) is None


def _lock_holder(connection: sa.Connection, key: int) -> int | None:
    # A bigint advisory key is kept as two 32-bit halves in pg_locks.
    return connection.execute(
        sa.text(
            "SELECT pid FROM pg_locks WHERE locktype = 'advisory' AND granted "
            "AND classid::bigint = :hi AND objid::bigint = :lo AND objsubid = 1"
        ),
        {"hi": key >> 32, "lo": key & 0xFFFFFFFF},
    ).scalar()


def test_a_leader_that_loses_its_lock_connection_stands_down_and_retries(
    context: JobContext, engine: sa.Engine, lock_key: int, running: Running
) -> None:
    leader, _ = running.start(
        [Job(f"idle-{uuid.uuid4().hex[:6]}", 60, lambda _c: None)],
        context,
        lock_key,
        lock_check_s=0.05,
    )
    assert wait_for(leader.leading.is_set)
    with engine.connect() as connection:
        holder = _lock_holder(connection, lock_key)
        assert holder is not None
        connection.execute(sa.text("SELECT pg_terminate_backend(:pid)"), {"pid": holder})
        connection.commit()
        # It notices, lets go, and takes the lock again on a new connection.
        assert wait_for(lambda: _lock_holder(connection, lock_key) not in (None, holder))
    assert wait_for(leader.leading.is_set)


def test_job_names_are_unique() -> None:
    name = f"unique-{uuid.uuid4().hex[:6]}"
    scheduling.register(name, 5, lambda _c: None)
    try:
        with pytest.raises(ValueError, match=name):
            scheduling.register(name, 5, lambda _c: None)
        assert name in [job.name for job in scheduling.all_jobs()]
    finally:
        del scheduling.JOBS[name]
    with pytest.raises(ValueError):
        scheduling.register("prune-too-often", 0, lambda _c: None)


def test_the_builtin_jobs_are_all_there() -> None:
    assert {job.name: job.interval_s for job in scheduling.builtin_jobs()} == {
        "service_levels": 30,
        "notice_delivery": 10,
        "arriving_soon": 60,
        "follow_ups": 600,
        "prune": 86_400,
        "partitions_ahead": 3600,
        "status_report_replay": 60,
    }


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def _metric(port: int, line_start: str) -> float | None:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=2) as response:
            text = response.read().decode()
    except OSError:
        return None
    for line in text.splitlines():
        if line.startswith(line_start + " "):
            return float(line.split()[-1])
    return None


def test_the_command_runs_every_builtin_job_and_stops_on_sigterm(settings: Settings) -> None:
    port = _free_port()
    env = {
        **os.environ,
        "FIELDLINE_DATABASE_URL": settings.database_url,
        "FIELDLINE_REDIS_PREFIX": f"fieldline_test_sla_{uuid.uuid4().hex[:6]}",
        "FIELDLINE_SCHEDULER_METRICS_PORT": str(port),
        "FIELDLINE_NOTICE_BACKENDS": "recording",
    }
    command = [str(Path(sys.executable).with_name("fieldline")), "scheduler"]
    process = subprocess.Popen(command, env=env, stderr=subprocess.PIPE, text=True)
    try:
        assert wait_for(lambda: _metric(port, "fieldline_scheduler_leader") == 1.0, 20)
        for job in scheduling.builtin_jobs():
            assert wait_for(
                lambda job=job: (
                    _metric(port, f'fieldline_scheduler_job_runs_total{{job="{job.name}"}}') == 1.0
                )
            ), job.name
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=15) == 0
        assert process.stderr is not None
        log = process.stderr.read()
        assert "scheduler stopped" in log and "failed" not in log
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
        if process.stderr is not None:
            process.stderr.close()
