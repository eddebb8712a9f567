"""Two gateway workers share the load (same share group, their own client ids) and one of them
is killed with SIGKILL mid-stream: every message is still stored exactly once, each crew's
latest position in Redis is its newest fix, and every task ends in the state its crew reported
last, whichever worker handled which report.

What Mosquitto 2.0 does with a killed member of a shared subscription is part of what is
tested: it keeps the member's persistent session, with the messages in flight to it and those
queued for it, and goes on handing that session its round-robin share of new messages while
it is away; none goes to the surviving member. Only the killed worker, started again under the
same client id, gets them (docs/scaling.md, "Gateway workers"). So the test restarts it, as
its supervisor would.

The private Mosquitto and the gateway processes are those of workers.py.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
import pytest
import sqlalchemy as sa
from paho.mqtt.enums import CallbackAPIVersion

from fieldline.gis.db import make_sessionmaker
from fieldline.server.crews.services import create_crew
from fieldline.server.live.services import Live
from fieldline.server.tasks import events, services
from fieldline.server.tasks.status_events import REPLAY_AFTER, replay_pending_status_events
from fieldline.settings import Settings
from tests.conftest import load_fixture
from tests.device_gateway.workers import (
    Broker,
    GatewayProcess,
    running,
    wait_for_stall,
    worker_group,
)
from tests.processes import wait_until

pytestmark = pytest.mark.slow

CREWS = 50
FIXES_PER_CREW = 400  # 20,000 fixes in all
# Each crew's task: these reports, at these fix indices of the stream (the last with the
# stream's last fix), sent in the stream between the fixes.
REPORTS = (("accepted", 100), ("en_route", 200), ("on_site", 300), ("completed", 399))
SETTLE_S = 180.0  # the rest of the stream on a busy two-core machine
STALL_S = 3.0  # no row stored for this long: the surviving worker has nothing more to do


@dataclass
class Scene:
    engine: sa.Engine
    crews: list[str]
    tasks: dict[str, str]  # crew -> its task
    start: datetime  # the first fix's time

    def fix_time(self, i: int) -> datetime:
        return self.start + timedelta(seconds=i)

    def stored(self) -> int:
        with self.engine.connect() as connection:
            count = connection.scalar(
                sa.text("SELECT count(*) FROM positions WHERE crew_id = ANY(:c)"),
                {"c": self.crews},
            )
        return int(count or 0)


@pytest.fixture
def scene(engine: sa.Engine) -> Iterator[Scene]:
    tag = uuid.uuid4().hex[:8]
    pipes = load_fixture("pipes")
    now = datetime.now(UTC).replace(microsecond=0)
    with make_sessionmaker(engine)() as session:
        crews = [
            create_crew(session, f"Horizontal crew {i} {tag}", "vehicle") for i in range(CREWS)
        ]
        tasks = {}
        for i, crew in enumerate(crews):
            body = {
                "kind": "repair",
                "priority": "P2",
                "source": "plan",
                "assets": [{"layer": "pipes", "id": pipes[i]["id"]}],
            }
            task = services.create_task(session, body, "test", now - timedelta(hours=1))
            services.transition(
                session,
                task,
                "assign",
                actor="test",
                actor_kind="dispatcher",
                at=now - timedelta(hours=1),
                crew=crew,
            )
            tasks[crew.public_id] = task.public_id
        session.commit()
        events.take(session)
    # One fix a second per crew, the stream ending a minute ago: every fix passes the filters.
    start = now - timedelta(seconds=FIXES_PER_CREW + 60)
    ids = list(tasks)
    try:
        yield Scene(engine, ids, tasks, start)
    finally:
        with engine.begin() as connection:
            for statement in (
                "DELETE FROM positions WHERE crew_id = ANY(:c)",
                "DELETE FROM quarantined_fixes WHERE crew_id = ANY(:c)",
                "DELETE FROM task_status_events WHERE crew_id = ANY(:c)",
                "DELETE FROM dead_letters WHERE split_part(topic, '/', 3) = ANY(:c)",
                "DELETE FROM tasks WHERE public_id = ANY(:t)",
                "DELETE FROM crews WHERE public_id = ANY(:c)",
            ):
                connection.execute(sa.text(statement), {"c": ids, "t": list(tasks.values())})


@pytest.fixture
def workers(settings: Settings, broker: Broker, tmp_path: Path) -> Iterator[list[GatewayProcess]]:
    """Two workers of one share group, each with its own client id (and so its own session)."""
    with worker_group(settings, broker, tmp_path) as started:
        yield started


def publish_stream(broker: Broker, scene: Scene) -> tuple[mqtt.Client, list[Any]]:
    """Every crew's fixes, interleaved, as fast as the broker takes them (QoS 1), and each
    crew's task reports among them; the PUBACK handles."""
    client = mqtt.Client(
        CallbackAPIVersion.VERSION2,
        client_id=f"horizontal-publisher-{uuid.uuid4().hex[:8]}",
        clean_session=False,
    )
    client.max_inflight_messages_set(200)
    client.max_queued_messages_set(0)
    client.connect("127.0.0.1", broker.port)
    client.loop_start()
    reports = {i: status for status, i in REPORTS}
    infos = []
    for i in range(FIXES_PER_CREW):
        at = scene.fix_time(i)
        for n, crew in enumerate(scene.crews):
            # About a metre a second northwards, each crew on a line of its own.
            body = {"ts": at.isoformat(), "lat": 60.16 + i * 1e-5, "lon": 24.90 + n * 1e-3}
            infos.append(
                client.publish(f"fieldline/crews/{crew}/position", json.dumps(body), qos=1)
            )
            if i in reports:
                topic = f"fieldline/crews/{crew}/tasks/{scene.tasks[crew]}/status"
                report = {"status": reports[i], "ts": at.isoformat()}
                infos.append(client.publish(topic, json.dumps(report), qos=1))
    return client, infos


def task_reports(scene: Scene) -> tuple[list[Any], dict[str, str], int]:
    """The crews' stored reports, the tasks' states, and how many steps a task took twice."""
    with scene.engine.connect() as connection:
        reports = connection.execute(
            sa.text(
                "SELECT crew_id, task_id, status, outcome FROM task_status_events"
                " WHERE crew_id = ANY(:c)"
            ),
            {"c": scene.crews},
        ).all()
        task_ids = list(scene.tasks.values())
        states = connection.execute(
            sa.text("SELECT public_id, state FROM tasks WHERE public_id = ANY(:t)"),
            {"t": task_ids},
        ).all()
        repeated = connection.scalar(
            sa.text(
                "SELECT count(*) FROM (SELECT s.task_id, s.action FROM task_transitions s"
                " JOIN tasks t ON t.id = s.task_id WHERE t.public_id = ANY(:t)"
                " GROUP BY s.task_id, s.action HAVING count(*) > 1) AS twice"
            ),
            {"t": task_ids},
        )
    return list(reports), {r.public_id: r.state for r in states}, int(repeated or 0)


@pytest.mark.timeout(400)
def test_two_workers_one_killed_store_every_message_once_in_order_where_it_matters(
    workers: list[GatewayProcess], broker: Broker, scene: Scene, settings: Settings
) -> None:
    killed, survivor = workers
    total = CREWS * FIXES_PER_CREW
    for worker in workers:
        worker.start()
    started = time.monotonic()
    publisher, infos = publish_stream(broker, scene)
    try:
        wait_until(lambda: scene.stored() >= total // 4, 90, "a quarter of the fixes")
        receiving = killed.receiver_pid()
        killed.kill()
        killed_at = scene.stored()
        assert killed_at < total, "the stream ended before the kill"
        wait_until(lambda: not running(receiving), 10, "the killed receiving process to exit")
        wait_until(lambda: all(i.is_published() for i in infos), 120, "the broker's PUBACKs")

        # Mosquitto keeps the killed worker's share for its session: the survivor stores its
        # own half and then waits, however long.
        stalled_at = wait_for_stall(scene.stored, STALL_S)
        assert survivor.alive()
        assert stalled_at < total, "another member received the killed worker's messages"

        # Its supervisor starts it again under the same client id: it resumes the session.
        killed.start()
        wait_until(lambda: scene.stored() >= total, SETTLE_S, f"{total} rows")
        time.sleep(1.0)  # for anything stored twice to show
        elapsed = time.monotonic() - started
        print(f"{total} fixes in {elapsed:.1f} s; killed at {killed_at}, stalled at {stalled_at}")
        assert "connected (session present: True)" in killed.log_text()

        with scene.engine.connect() as connection:
            rows = connection.execute(
                sa.text(
                    "SELECT crew_id, count(*) AS n, count(DISTINCT fix_time) AS times,"
                    " max(fix_time) AS newest FROM positions WHERE crew_id = ANY(:c)"
                    " GROUP BY crew_id"
                ),
                {"c": scene.crews},
            ).all()
            quarantined = connection.scalar(
                sa.text("SELECT count(*) FROM quarantined_fixes WHERE crew_id = ANY(:c)"),
                {"c": scene.crews},
            )
            dead = connection.scalar(
                sa.text(
                    "SELECT count(*) FROM dead_letters WHERE split_part(topic, '/', 3) = ANY(:c)"
                ),
                {"c": scene.crews},
            )
        # Every fix exactly once, per crew.
        newest = scene.fix_time(FIXES_PER_CREW - 1)
        assert {r.crew_id: (r.n, r.times, r.newest) for r in rows} == {
            crew: (FIXES_PER_CREW, FIXES_PER_CREW, newest) for crew in scene.crews
        }
        assert (quarantined, dead) == (0, 0)

        # The latest position is each crew's newest fix, though the killed worker's share
        # (older fixes among them) was stored last.
        live = Live.from_url(settings.redis_url, killed.env["FIELDLINE_REDIS_PREFIX"])
        try:
            latest = live.latest()
        finally:
            live.client.close()
        assert {crew: latest[crew]["fix_time"] for crew in scene.crews} == {
            crew: newest.isoformat() for crew in scene.crews
        }

        # Each report stored once and handed over once, whatever order the two workers took
        # them in; every task completed, each step taken once.
        # A report the killed worker committed but had not handed over yet keeps a null
        # outcome (its redelivery inserts nothing, so it is not handed over again): the
        # scheduler's replay job hands such reports over once they are a minute old.
        left = sorted(r.status for r in task_reports(scene)[0] if r.outcome is None)
        print(f"reports left for the replay: {left}")
        with make_sessionmaker(scene.engine)() as session:
            replay_pending_status_events(session, datetime.now(UTC) + REPLAY_AFTER)
        reports, tasks, repeated_steps = task_reports(scene)
        assert len(reports) == CREWS * len(REPORTS)
        assert {(r.crew_id, r.task_id, r.status) for r in reports} == {
            (crew, task, status) for crew, task in scene.tasks.items() for status, _ in REPORTS
        }
        assert {r.outcome for r in reports} <= {"applied", "no_change"}
        assert set(tasks.values()) == {"completed"}
        assert repeated_steps == 0
    finally:
        publisher.loop_stop()
        publisher.disconnect()
