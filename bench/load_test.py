"""The whole system under a utility's load for a few minutes: devices, SCADA and dispatchers.

Builds a scratch database (`fieldline_load`, migrated, the fixture city imported) and provisions
10,000 crews, each with its handheld bound as an `own` device and a shift covering the run, and
1,000 SCADA stations (the fixture's and synthetic ones). Starts a private Mosquitto (as
bench_gateway.py does, so the flood reaches no other subscriber of the machine's broker), then
`fieldline serve`, `fieldline gateway` (`--workers` processes on one shared subscription) and
`fieldline scheduler` as subprocesses, with their own Redis prefix, share group and client ids.

First the dispatchers alone (`--idle-seconds`): a few threads using the API at a person's pace
(crews list, a crew's track, tasks list, create and assign a task, OGC items, map tiles); their
latencies are the idle baseline. Then for `--seconds` a publisher process sends, evenly spread
rather than in bursts, one own-JSON fix every 5 s per device (2,000/s) and one SCADA message a
second per station (1,000/s), at QoS 1, each stamped with its send time, while the dispatchers
go on. After a drain period it reports, and writes to bench/LOAD_TEST.md:

- published (acknowledged by the broker), stored, quarantined, dead-lettered and lost messages
  per kind (lost: published and none of the three; must be 0), throughput per second;
- gateway lag: the payload's send time to the gateway's live event on Redis (published after
  the commit, so an upper bound of publish-to-commit), and to the gateway's received time;
- dead letters and quarantined fixes by reason;
- API requests, errors and p50/p95/p99 per endpoint, idle and under load;
- CPU seconds and peak memory (proportional set size) of the gateway, web server, scheduler,
  PostgreSQL, Mosquitto and Redis (PostgreSQL and Redis serve the whole machine: their figures
  include other work).

Usage: python bench/load_test.py [--devices N] [--stations N] [--seconds S] [--workers N]
It takes 5 minutes and more, so it is not one of the bench_*.py files `make bench` runs. The
database is left in place afterwards; the servers and the broker are always stopped.
"""

from __future__ import annotations

import argparse
import array
import contextlib
import math
import multiprocessing as mp
import os
import random
import re
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter, defaultdict
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import psycopg
import requests
from bench_gateway import (
    GOAL_P99_MS,
    clear_redis,
    machine_busy_s,
    mqtt_packet,
    mqtt_string,
    private_broker,
    process_cpu_s,
)
from common import ADMIN_DSN, exit_on_sigterm, free_port, ms, percentile, stop, wait_until_ready
from psycopg import sql

from fieldline.settings import Settings

HERE = Path(__file__).resolve().parent
CITY = HERE.parent / "fixtures" / "city"
REPORT = HERE / "LOAD_TEST.md"
REDIS_URL = "redis://localhost:6379/0"
FIX_PERIOD_S = 5.0  # one fix per device every 5 s
SCADA_PERIOD_S = 1.0  # one message per station every second
METRICS = ("pressure_kpa", "flow_lps")
SKILLS = ["pipe_repair", "valve_operation", "leak_detection", "inspection"]
THINK_S = (0.5, 2.0)  # a dispatcher's pause between two actions
STALL_S = 20.0  # the drain ends early when nothing more is stored for this long
SLOT_S = 0.005  # the publisher sends what falls due every 5 ms


def now_s() -> float:
    return time.time()  # wall time: the processes compare their clocks


# --- scratch database ---------------------------------------------------------------------


def database_urls(name: str) -> tuple[str, str]:
    return f"postgresql+psycopg://localhost/{name}", f"postgresql://localhost/{name}"


def prepare_database(name: str, devices: int, stations: int) -> tuple[list[str], list[str]]:
    """A fresh, migrated database with the fixture city, `devices` crews each with a bound
    handheld and a shift, and `stations` stations; (crew ids, station ids)."""
    from fieldline.gis.db import make_engine, make_sessionmaker, upgrade
    from fieldline.gis.importer import find_sources, import_path
    from fieldline.local_services import ensure_database

    url, dsn = database_urls(name)
    start = time.perf_counter()
    with psycopg.connect(ADMIN_DSN, autocommit=True) as admin:
        admin.execute(
            sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
        )
    ensure_database(url, report=lambda line: None)  # with PostGIS and pgRouting
    upgrade(url)
    engine = make_engine(url)
    try:
        with make_sessionmaker(engine)() as session:
            import_path(session, find_sources(CITY))
            session.commit()
    finally:
        engine.dispose()
    with psycopg.connect(dsn) as conn:
        crews = provision_crews(conn, devices)
        station_ids = provision_stations(conn, stations)
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("VACUUM ANALYZE")
    print(
        f"load: {name} with the fixture city, {len(crews):,} crews with handhelds and "
        f"{len(station_ids):,} stations in {time.perf_counter() - start:.1f} s",
        flush=True,
    )
    return crews, station_ids


def city_box(conn: psycopg.Connection[Any]) -> tuple[float, float, float, float]:
    row = conn.execute(
        "SELECT ST_XMin(e), ST_YMin(e), ST_XMax(e), ST_YMax(e)"
        " FROM (SELECT ST_Extent(geom) AS e FROM roads) AS extent"
    ).fetchone()
    assert row is not None
    return float(row[0]), float(row[1]), float(row[2]), float(row[3])


def provision_crews(conn: psycopg.Connection[Any], count: int) -> list[str]:
    """`count` crews (one in five on foot) with depots in the city, each with an `own` handheld
    named `load-{crew id}` and a shift from 4 hours ago to 8 hours ahead. One statement per
    table: 10,000 crews one by one through the services would take minutes."""
    box = city_box(conn)
    conn.execute(
        "INSERT INTO crews (name, mode, skills, depot)"
        " SELECT 'Load crew ' || i, CASE WHEN i %% 5 = 0 THEN 'foot' ELSE 'vehicle' END,"
        " %(skills)s::text[], ST_SetSRID(ST_MakePoint("
        "   %(x0)s + (%(x1)s - %(x0)s) * ((hashint8extended(i, 1) & 2147483647) / 2147483648.0),"
        "   %(y0)s + (%(y1)s - %(y0)s) * ((hashint8extended(i, 2) & 2147483647) / 2147483648.0)"
        " ), 4326) FROM generate_series(1, %(count)s::bigint) AS i",
        {"skills": SKILLS, "x0": box[0], "y0": box[1], "x1": box[2], "y1": box[3], "count": count},
    )
    conn.execute(
        "INSERT INTO devices (crew_id, kind, identifier)"
        " SELECT id, 'own', 'load-' || public_id FROM crews"
    )
    conn.execute(
        "INSERT INTO crew_shifts (crew_id, starts_at, ends_at)"
        " SELECT id, now() - interval '4 hours', now() + interval '8 hours' FROM crews"
    )
    rows = conn.execute("SELECT public_id FROM crews ORDER BY id").fetchall()
    return [row[0] for row in rows]


def provision_stations(conn: psycopg.Connection[Any], count: int) -> list[str]:
    """The fixture's stations and synthetic ones up to `count`, spread over the city."""
    row = conn.execute("SELECT count(*) FROM stations").fetchone()
    missing = max(0, count - (int(row[0]) if row else 0))
    box = city_box(conn)
    conn.execute(
        "INSERT INTO stations (geom, name, kind, metrics, source_id)"
        " SELECT ST_SetSRID(ST_MakePoint("
        "   %(x0)s + (%(x1)s - %(x0)s) * ((hashint8extended(i, 3) & 2147483647) / 2147483648.0),"
        "   %(y0)s + (%(y1)s - %(y0)s) * ((hashint8extended(i, 4) & 2147483647) / 2147483648.0)"
        " ), 4326), 'Load station ' || i, 'pressure', %(metrics)s::text[], 'load:' || i"
        " FROM generate_series(1, %(count)s::bigint) AS i",
        {"metrics": list(METRICS), "x0": box[0], "y0": box[1], "x1": box[2], "y1": box[3],
         "count": missing},
    )  # fmt: skip
    rows = conn.execute("SELECT public_id FROM stations ORDER BY id LIMIT %s", (count,))
    return [r[0] for r in rows.fetchall()]


# --- the publisher (a process of its own) ---------------------------------------------------


@dataclass(frozen=True)
class Plan:
    crews: list[str]
    stations: list[str]
    seconds: float
    box: tuple[float, float, float, float]


def schedule(plan: Plan) -> list[tuple[float, int, int]]:
    """One cycle of FIX_PERIOD_S: (offset in s, kind 0 fix / 1 SCADA, index), in time order,
    each device and station at its own phase so the load is even, not in bursts."""
    events = [(i * FIX_PERIOD_S / len(plan.crews), 0, i) for i in range(len(plan.crews))]
    repeats = round(FIX_PERIOD_S / SCADA_PERIOD_S)
    events += [
        (k * SCADA_PERIOD_S + j * SCADA_PERIOD_S / len(plan.stations), 1, j)
        for k in range(repeats)
        for j in range(len(plan.stations))
    ]
    events.sort()
    return events


def publish(port: int, plan: Plan, pipe: Connection) -> None:
    """An MQTT 3.1.1 publisher at QoS 1 that writes its PUBLISH packets straight to its socket
    (a paho client would take as much CPU as the gateway it feeds). Each payload carries the
    wall time it is sent at as `ts`. Says ready once connected; on `go` publishes for
    `plan.seconds`, then reports counts per kind, the broker's acknowledgements and its CPU."""
    sock = socket.create_connection(("127.0.0.1", port))
    connect = b"\x00\x04MQTT\x04\x02\x00\x00" + mqtt_string(f"load-pub-{os.getpid()}")
    sock.sendall(mqtt_packet(0x10, connect))  # clean session, no keep-alive
    if sock.recv(4) != b"\x20\x02\x00\x00":
        raise RuntimeError("the broker refused the publisher")
    acked = 0

    def read_pubacks() -> None:  # all the broker sends back: 4-byte PUBACKs
        nonlocal acked
        received = 0
        while chunk := sock.recv(65536):
            received += len(chunk)
            acked = received // 4

    threading.Thread(target=read_pubacks, daemon=True).start()
    rng = random.Random(7)
    x0, y0, x1, y1 = plan.box
    # Where each crew starts, and its heading: it walks about 1 m/s, well within every filter.
    starts = [(rng.uniform(x0, x1), rng.uniform(y0, y1)) for _ in plan.crews]
    steps = [(rng.uniform(-1, 1) * 1e-5, rng.uniform(-1, 1) * 5e-6) for _ in plan.crews]
    fix_topics = [f"fieldline/crews/{crew}/position".encode() for crew in plan.crews]
    devices = [f"load-{crew}" for crew in plan.crews]
    scada_topics = [f"fieldline/scada/{station}".encode() for station in plan.stations]
    events = schedule(plan)
    pipe.send("ready")
    started: float = pipe.recv()  # go: the wall time to start at
    cpu_at_go = time.process_time()
    sent = [0, 0]
    behind = array.array("d")  # ms each write came after its first message fell due
    packet_id = 0
    cycle, at = 0, 0
    end = started + plan.seconds
    while True:
        due = started + cycle * FIX_PERIOD_S + events[at][0]
        if due >= end:
            break
        wait = due - now_s()
        if wait > 0:
            time.sleep(wait)
        now = now_s()
        behind.append((now - due) * 1000)
        packets = []
        # Everything due within the next slot goes in one write.
        while started + cycle * FIX_PERIOD_S + events[at][0] <= now + SLOT_S:
            _, kind, i = events[at]
            if kind == 0:
                lon = starts[i][0] + steps[i][0] * cycle
                lat = starts[i][1] + steps[i][1] * cycle
                body = (
                    f'{{"ts":{now:.3f},"lat":{lat:.7f},"lon":{lon:.7f},"acc_m":5.0,'
                    f'"speed_mps":1.0,"heading_deg":90.0,"batt_pct":80.0,'
                    f'"device":"{devices[i]}"}}'
                )
                topic = fix_topics[i]
            else:
                pressure = 400.0 + (i * 7 + cycle) % 100
                body = (
                    f'{{"ts":{now:.3f},"metrics":{{"pressure_kpa":{pressure:.1f},'
                    f'"flow_lps":{10 + i % 40:.1f}}}}}'
                )
                topic = scada_topics[i]
            # A packet id is free again once acknowledged: keep fewer than 65,535 in flight.
            while sum(sent) - acked >= 65_000:
                time.sleep(0.001)
            packet_id = packet_id % 65535 + 1
            payload = len(topic).to_bytes(2, "big") + topic + packet_id.to_bytes(2, "big")
            packets.append(mqtt_packet(0x32, payload + body.encode()))
            sent[kind] += 1
            at += 1
            if at == len(events):
                at, cycle = 0, cycle + 1
            if started + cycle * FIX_PERIOD_S + events[at][0] >= end:
                break
        sock.sendall(b"".join(packets))
    last_sent = now_s()
    deadline = time.monotonic() + 60
    while acked < sum(sent) and time.monotonic() < deadline:
        time.sleep(0.05)
    sock.sendall(b"\xe0\x00")  # DISCONNECT
    sock.close()
    pipe.send(
        {
            "fixes": sent[0],
            "scada": sent[1],
            "acked": acked,
            "first": started,
            "last": last_sent,
            "cpu": time.process_time() - cpu_at_go,
            "behind": behind.tobytes(),
        }
    )


@contextlib.contextmanager
def publisher(port: int, plan: Plan) -> Iterator[Connection]:
    ours, theirs = mp.Pipe()
    process = mp.get_context("spawn").Process(target=publish, args=(port, plan, theirs))
    process.start()
    try:
        if not ours.poll(120) or ours.recv() != "ready":
            raise RuntimeError("the publisher did not get ready")
        yield ours
    finally:
        process.join(timeout=10)  # it ends once it has reported, or never had its `go`
        if process.is_alive():
            process.terminate()
            process.join(timeout=10)


# --- the live listener (a process of its own) -------------------------------------------------

# An event's send time: `fix_time` of a position, `ts` of a telemetry reading (the order
# fanout.py writes their fields in).
EVENT_TIME = re.compile(rb'"type":"(position|telemetry)"[^}]*?"(?:fix_time|ts)":"([^"]+)"')


def listen(channel: str, pipe: Connection) -> None:
    """Subscribed to the gateway's live channel over a plain socket: stamps each read with the
    wall time and takes the send time out of each event whole in it (a regular expression on
    the bytes, cheaper than parsing JSON), keeping only the lag; until told to stop."""
    url = urlsplit(REDIS_URL)
    sock = socket.create_connection((url.hostname or "localhost", url.port or 6379))
    name = channel.encode()
    sock.sendall(b"*2\r\n$9\r\nSUBSCRIBE\r\n$%d\r\n%s\r\n" % (len(name), name))
    sock.settimeout(0.5)
    lags = {b"position": array.array("d"), b"telemetry": array.array("d")}
    tail = b""
    cpu_at_start = time.process_time()
    pipe.send("ready")
    while not pipe.poll():
        try:
            data = sock.recv(1 << 20)
        except TimeoutError:
            continue
        if not data:
            break
        arrived = now_s()
        data = tail + data
        end = data.rfind(b"}\r\n") + 3  # the last event whole in what was read
        tail = data[end:] if end > 2 else data
        for found in EVENT_TIME.finditer(data, 0, end if end > 2 else 0):
            sent = datetime.fromisoformat(found[2].decode()).timestamp()
            lags[found[1]].append((arrived - sent) * 1000)
    sock.close()
    pipe.send(
        {
            "position": lags[b"position"].tobytes(),
            "telemetry": lags[b"telemetry"].tobytes(),
            "cpu": time.process_time() - cpu_at_start,
        }
    )


@contextlib.contextmanager
def live_listener(channel: str) -> Iterator[Connection]:
    ours, theirs = mp.Pipe()
    process = mp.get_context("spawn").Process(target=listen, args=(channel, theirs))
    process.start()
    try:
        if not ours.poll(60) or ours.recv() != "ready":
            raise RuntimeError("the live listener did not get ready")
        yield ours
    finally:
        with contextlib.suppress(OSError):  # told already on the way out without an error
            ours.send("stop")
        process.join(timeout=10)
        if process.is_alive():
            process.terminate()
            process.join(timeout=10)


# --- the system as processes ----------------------------------------------------------------


@dataclass
class System:
    base: str
    web: int
    gateways: list[int]
    scheduler: int
    logs: Path


def service_env(db_url: str, broker_port: int, prefix: str) -> dict[str, str]:
    return os.environ | {
        "FIELDLINE_DATABASE_URL": db_url,
        "FIELDLINE_REDIS_URL": REDIS_URL,
        "FIELDLINE_MQTT_URL": f"mqtt://127.0.0.1:{broker_port}",
        "FIELDLINE_REDIS_PREFIX": prefix,
        "FIELDLINE_GATEWAY_SHARE_GROUP": prefix,
        "FIELDLINE_GATEWAY_METRICS_PORT": "0",
        "FIELDLINE_SCHEDULER_METRICS_PORT": "0",
        "FIELDLINE_MQTT_SESSION_EXPIRY_S": "60",
        # The API as today's default lets anyone use it: set explicitly, as sign-in may come.
        "FIELDLINE_ANONYMOUS_ROLE": "admin",
        "FIELDLINE_LOG_LEVEL": "INFO",
    }


def start(command: list[str], env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    with log.open("wb") as out:
        # Own session: a Ctrl-C reaches only this script, which then stops them itself.
        return subprocess.Popen(
            command, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )


def wait_for_line(process: subprocess.Popen[bytes], log: Path, text: str, name: str) -> None:
    deadline = time.monotonic() + 60
    while text not in log.read_text(errors="replace"):
        if process.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError(f"{name} did not start:\n{log.read_text()[-2000:]}")
        time.sleep(0.1)


@contextlib.contextmanager
def running_system(
    db_url: str, broker_port: int, prefix: str, workers: int, port: int, folder: Path
) -> Iterator[System]:
    """`fieldline serve`, `workers` x `fieldline gateway` and `fieldline scheduler`; yields
    once each is up, and always stops them (SIGTERM, then SIGKILL to their process groups)."""
    env = service_env(db_url, broker_port, prefix)
    cli = [sys.executable, "-m", "fieldline.cli"]
    processes: list[subprocess.Popen[bytes]] = []
    try:
        web = start(
            [*cli, "serve", "--host", "127.0.0.1", "--port", str(port)], env, folder / "web.log"
        )
        processes.append(web)
        gateways = []
        for k in range(workers):
            log = folder / f"gateway-{k}.log"
            gateway_env = env | {
                "FIELDLINE_GATEWAY_CLIENT_ID": f"{prefix}-gw-{k}",
                "FIELDLINE_GATEWAY_SPARKPLUG": "true" if k == 0 else "false",
            }
            gateways.append(start([*cli, "gateway"], gateway_env, log))
            processes.append(gateways[-1])
        scheduler = start([*cli, "scheduler"], env, folder / "scheduler.log")
        processes.append(scheduler)
        base = f"http://127.0.0.1:{port}"
        wait_until_ready(base + "/healthz", web, timeout_s=60, name="fieldline serve")
        for k, gateway in enumerate(gateways):
            log = folder / f"gateway-{k}.log"
            wait_for_line(gateway, log, "connected (session present", "fieldline gateway")
        wait_for_line(scheduler, folder / "scheduler.log", "leading:", "fieldline scheduler")
        time.sleep(0.5)  # the subscriptions are made on connecting: let their SUBACKs come
        yield System(base, web.pid, [g.pid for g in gateways], scheduler.pid, folder)
    finally:
        for process in processes:
            stop(process)


# --- CPU and memory ---------------------------------------------------------------------------


def children(pid: int) -> list[int]:
    """The process and its descendants (gunicorn's workers, a gateway's receiving process)."""
    found, queue = [], [pid]
    while queue:
        p = queue.pop()
        found.append(p)
        with contextlib.suppress(OSError):
            queue += [int(c) for c in Path(f"/proc/{p}/task/{p}/children").read_text().split()]
    return found


def by_name(name: str) -> list[int]:
    pids = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            with contextlib.suppress(OSError):
                if (entry / "comm").read_text().strip() == name:
                    pids.append(int(entry.name))
    return pids


def memory_bytes(pid: int) -> int:
    """The process's proportional set size: pages shared with other processes (a forked
    server's, PostgreSQL's shared buffers) count divided among them, so a group's sum is
    what it holds."""
    try:
        rollup = Path(f"/proc/{pid}/smaps_rollup").read_text()
    except OSError:
        return 0  # gone, or not ours to read
    for line in rollup.splitlines():
        if line.startswith("Pss:"):
            return int(line.split()[1]) * 1024
    return 0


@dataclass
class Usage:
    cpu_s: float = 0.0
    peak_memory: int = 0


class Sampler:
    """Every `every_s`, the CPU time and memory of named groups of processes. A process's CPU
    counts from the first sample (0 for one started since) to the last it was seen in, so
    processes that end (a web worker, a database backend) are still counted."""

    def __init__(self, groups: dict[str, Any], every_s: float = 2.0) -> None:
        self.groups = groups  # name -> a callable giving the group's pids now
        self.every_s = every_s
        self.first: dict[tuple[str, int], float] = {}
        self.last: dict[tuple[str, int], float] = {}
        self.peak: dict[str, int] = defaultdict(int)
        self.machine = (0.0, 0.0)
        self.machine_share = 0.0
        self.elapsed_s = 0.0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._started = False

    def sample(self) -> None:
        for name, pids_of in self.groups.items():
            held = 0
            for pid in pids_of():
                seconds = process_cpu_s(pid)
                if seconds is None:
                    continue
                key = (name, pid)
                self.first.setdefault(key, seconds if not self._started else 0.0)
                self.last[key] = seconds
                held += memory_bytes(pid)
            self.peak[name] = max(self.peak[name], held)

    def _run(self) -> None:
        while not self._stop.wait(self.every_s):
            self.sample()

    def __enter__(self) -> Sampler:
        self.sample()
        self._started = True
        self.machine = machine_busy_s()
        self.elapsed_s = time.monotonic()
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join()
        self.sample()
        self.elapsed_s = time.monotonic() - self.elapsed_s
        busy, total = machine_busy_s()
        self.machine_share = (busy - self.machine[0]) / max(total - self.machine[1], 1e-9)

    def usage(self) -> dict[str, Usage]:
        found = {name: Usage(peak_memory=self.peak[name]) for name in self.groups}
        for (name, pid), seconds in self.last.items():
            found[name].cpu_s += seconds - self.first[(name, pid)]
        return found


def database_backends(conn: psycopg.Connection[Any], name: str) -> Any:
    """A callable giving the pids of the PostgreSQL backends connected to database `name`
    (the monitoring connection `conn` left out)."""
    lock = threading.Lock()

    def pids() -> list[int]:
        with lock:
            rows = conn.execute(
                "SELECT pid FROM pg_stat_activity WHERE datname = %s AND pid <> pg_backend_pid()",
                (name,),
            ).fetchall()
        return [int(row[0]) for row in rows]

    return pids


# --- the dispatchers ---------------------------------------------------------------------------


@dataclass
class Calls:
    """Latencies in ms and errors per endpoint, shared by the dispatcher threads."""

    latencies: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))
    errors: Counter[str] = field(default_factory=Counter)
    error_samples: dict[str, str] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def record(self, endpoint: str, seconds: float, error: str | None) -> None:
        with self.lock:
            self.latencies[endpoint].append(seconds * 1000)
            if error is not None:
                self.errors[endpoint] += 1
                self.error_samples.setdefault(endpoint, error[:300])


def tile_of(lon: float, lat: float, zoom: int) -> tuple[int, int]:
    n = 2**zoom
    x = int((lon + 180.0) / 360.0 * n)
    y = int((1.0 - math.asinh(math.tan(math.radians(lat))) / math.pi) / 2.0 * n)
    return x, y


class Dispatcher:
    """One person at the dispatcher's map: an action, a pause, another action."""

    ACTIONS = (  # (action, weight)
        ("crews_list", 1),
        ("crew_track", 3),
        ("tasks_list", 2),
        ("task_create_assign", 1),
        ("ogc_items", 2),
        ("tiles", 3),
    )

    def __init__(
        self,
        base: str,
        calls: Calls,
        crews: list[str],
        box: tuple[float, float, float, float],
        seed: int,
    ) -> None:
        self.base = base
        self.calls = calls
        self.crews = crews
        self.box = box
        self.rng = random.Random(seed)
        self.http = requests.Session()

    def call(self, endpoint: str, method: str, path: str, **kwargs: Any) -> Any:
        start = time.perf_counter()
        error = None
        body = None
        try:
            response = self.http.request(method, self.base + path, timeout=60, **kwargs)
            if response.status_code >= 400:
                error = f"{response.status_code} {response.text[:200]}"
            elif response.headers.get("Content-Type", "").endswith("json"):
                body = response.json()
            else:
                _ = response.content
        except requests.RequestException as exc:
            error = f"{type(exc).__name__}: {exc}"
        self.calls.record(endpoint, time.perf_counter() - start, error)
        return body

    def point(self) -> tuple[float, float]:
        x0, y0, x1, y1 = self.box
        return self.rng.uniform(x0, x1), self.rng.uniform(y0, y1)

    def act(self, action: str) -> None:
        rng = self.rng
        if action == "crews_list":
            self.call("crews_list", "GET", "/api/v1/crews")
        elif action == "crew_track":
            since = (datetime.now(UTC) - timedelta(minutes=15)).isoformat()
            crew = rng.choice(self.crews)
            self.call(
                "crew_track", "GET", f"/api/v1/crews/{crew}/positions", params={"since": since}
            )
        elif action == "tasks_list":
            self.call("tasks_list", "GET", "/api/v1/tasks", params={"limit": 50})
        elif action == "task_create_assign":
            lon, lat = self.point()
            task = {
                "kind": "repair",
                "priority": "P3",
                "source": "plan",
                "title": "Load test repair",
                "site": {"lon": lon, "lat": lat},
                "required_skills": ["pipe_repair"],
            }
            created = self.call("task_create", "POST", "/api/v1/tasks", json=task)
            if created is not None:
                crew = rng.choice(self.crews)
                path = f"/api/v1/tasks/{created['id']}/assign"
                self.call("task_assign", "POST", path, json={"crew": crew})
        elif action == "ogc_items":
            lon, lat = self.point()
            bbox = f"{lon - 0.002:.6f},{lat - 0.001:.6f},{lon + 0.002:.6f},{lat + 0.001:.6f}"
            path = "/ogc/collections/pipes/items"
            self.call("ogc_items", "GET", path, params={"bbox": bbox, "limit": 100})
        elif action == "tiles":  # a map view: the four tiles around a point
            lon, lat = self.point()
            zoom = rng.choice([14, 15, 16])
            x, y = tile_of(lon, lat, zoom)
            for dx, dy in ((0, 0), (1, 0), (0, 1), (1, 1)):
                self.call("tiles", "GET", f"/tiles/pipes/{zoom}/{x + dx}/{y + dy}.mvt")

    def run(self, until: threading.Event) -> None:
        actions = [a for a, _ in self.ACTIONS]
        weights = [w for _, w in self.ACTIONS]
        while not until.is_set():
            self.act(self.rng.choices(actions, weights)[0])
            until.wait(self.rng.uniform(*THINK_S))


@contextlib.contextmanager
def dispatchers(
    count: int, base: str, crews: list[str], box: tuple[float, float, float, float]
) -> Iterator[Calls]:
    calls = Calls()
    done = threading.Event()
    threads = [
        threading.Thread(
            target=Dispatcher(base, calls, crews, box, seed).run, args=(done,), daemon=True
        )
        for seed in range(count)
    ]
    for thread in threads:
        thread.start()
    try:
        yield calls
    finally:
        done.set()
        for thread in threads:
            thread.join(timeout=90)


# --- counting what was stored -----------------------------------------------------------------


@dataclass
class Stored:
    fixes: int
    scada: int  # messages: distinct (station, ts)
    telemetry_rows: int
    quarantined: Counter[str]
    dead: dict[str, Counter[str]]  # kind -> reason -> count

    def accounted(self, kind: str) -> int:
        if kind == "fixes":
            return self.fixes + sum(self.quarantined.values()) + sum(self.dead[kind].values())
        return self.scada + sum(self.dead[kind].values())


def topic_kind(topic: str) -> str:
    if topic.startswith("fieldline/crews/"):
        return "fixes"
    if topic.startswith("fieldline/scada/"):
        return "scada"
    return "other"


def stored(conn: psycopg.Connection[Any]) -> Stored:
    row = conn.execute(
        "SELECT (SELECT count(*) FROM positions),"
        " (SELECT count(*) FROM (SELECT DISTINCT station_id, ts FROM telemetry) AS m),"
        " (SELECT count(*) FROM telemetry)"
    ).fetchone()
    assert row is not None
    quarantined = Counter(
        dict(conn.execute("SELECT reason, count(*) FROM quarantined_fixes GROUP BY 1").fetchall())
    )
    dead: dict[str, Counter[str]] = defaultdict(Counter)
    for topic, reason, count in conn.execute(
        "SELECT topic, reason, count(*) FROM dead_letters GROUP BY 1, 2"
    ).fetchall():
        dead[topic_kind(topic)][reason] += count
    return Stored(int(row[0]), int(row[1]), int(row[2]), quarantined, dead)


def drain(dsn: str, published: dict[str, int], limit_s: float) -> tuple[Stored, float]:
    """Wait until every published message is accounted for, nothing more comes for STALL_S,
    or `limit_s` passed; (what is stored, seconds waited)."""
    start = time.monotonic()
    with psycopg.connect(dsn, autocommit=True) as conn:
        before, changed = -1, time.monotonic()
        while True:
            found = stored(conn)
            if all(found.accounted(kind) >= n for kind, n in published.items()):
                break
            total = found.fixes + found.telemetry_rows + sum(found.quarantined.values())
            if total != before:
                before, changed = total, time.monotonic()
            if time.monotonic() - changed > STALL_S or time.monotonic() - start > limit_s:
                break
            time.sleep(1.0)
    return found, time.monotonic() - start


def received_lags(conn: psycopg.Connection[Any]) -> dict[str, list[float]]:
    """p50/p95/p99 in ms of send time (the payload's) to the gateway's received time."""
    found = {}
    query = sql.SQL(
        "SELECT percentile_cont(ARRAY[0.5, 0.95, 0.99]) WITHIN GROUP"
        " (ORDER BY extract(epoch FROM received_at - {sent}) * 1000) FROM {table}"
    )
    for kind, table, sent in (("fixes", "positions", "fix_time"), ("scada", "telemetry", "ts")):
        row = conn.execute(
            query.format(sent=sql.Identifier(sent), table=sql.Identifier(table))
        ).fetchone()
        found[kind] = list(row[0]) if row and row[0] else []
    return found


def per_second(conn: psycopg.Connection[Any], since: float, until: float) -> dict[str, Any]:
    """Rows the gateway received in each whole second of the load: lowest, median, highest."""
    found: dict[str, Any] = {}
    query = sql.SQL(
        "SELECT count(*) FROM {} WHERE received_at >= to_timestamp(%s)"
        " AND received_at < to_timestamp(%s) GROUP BY date_trunc('second', received_at)"
    )
    for kind, table in (("fixes", "positions"), ("scada rows", "telemetry")):
        window = (math.ceil(since), math.floor(until))
        rows = conn.execute(query.format(sql.Identifier(table)), window).fetchall()
        counts = [int(n) for (n,) in rows]
        seconds = max(0, math.floor(until) - math.ceil(since))
        counts += [0] * (seconds - len(counts))  # seconds in which nothing came
        found[kind] = (min(counts), statistics.median(counts), max(counts)) if counts else None
    return found


# --- report ----------------------------------------------------------------------------------


def pcts(samples: Sequence[float]) -> str:
    if len(samples) < 2:
        return " | ".join([ms(samples[0]) if samples else "-"] * 3)
    return " | ".join(ms(percentile(samples, p)) for p in (50, 95, 99))


def p99(samples: Sequence[float]) -> float | None:
    if not samples:
        return None
    return percentile(samples, 99) if len(samples) > 1 else samples[0]


def line(name: str, ours: float, baseline: float, note: str, digits: int = 1) -> str:
    ratio = f"{ours / baseline:.2f}" if baseline else "n/a"
    text = (
        f"{name}: ours {ours:,.{digits}f}, baseline {baseline:,.{digits}f} ({note}), ratio {ratio}"
    )
    print(text, flush=True)
    return text


@dataclass
class Results:
    args: argparse.Namespace
    published: dict[str, int]
    acked: int
    span_s: float
    found: Stored
    drain_s: float
    live_lags: dict[str, array.array[float]]
    received: dict[str, list[float]]
    rates: dict[str, Any]
    idle: Calls
    loaded: Calls
    usage: dict[str, Usage]
    machine_share: float
    sampled_s: float
    behind: tuple[float, float]  # the publisher behind its schedule: p99 and most, in ms
    helpers_cpu: dict[str, float]


def render(r: Results, lines: list[str]) -> str:
    a = r.args
    flush_ms = os.environ.get(
        "FIELDLINE_GATEWAY_FLUSH_MS", Settings.model_fields["gateway_flush_ms"].default
    )
    lost = {kind: r.published[kind] - r.found.accounted(kind) for kind in r.published}
    out = [
        "# Load test",
        "",
        f"Written by `python bench/load_test.py` on {datetime.now(UTC):%Y-%m-%d %H:%M} UTC: "
        f"{a.devices:,} devices (one fix every {FIX_PERIOD_S:g} s each), {a.stations:,} SCADA "
        f"stations (one message every {SCADA_PERIOD_S:g} s, {len(METRICS)} metrics each), "
        f"{a.dispatchers} dispatchers, {a.seconds:g} s of load after {a.idle_seconds:g} s of the "
        f"dispatchers alone; {a.workers} gateway worker(s), QoS 1, a private Mosquitto; "
        f"{os.cpu_count()} cores, busy {100 * r.machine_share:.0f}% during the load (other work "
        "on the machine included).",
        "",
        "## Results",
        "",
        *(f"- `{text}`" for text in lines),
        "",
        "## Messages",
        "",
        "| kind | published | stored | quarantined | dead letters | lost |",
        "|---|---|---|---|---|---|",
    ]
    for kind in r.published:
        quarantined = sum(r.found.quarantined.values()) if kind == "fixes" else 0
        stored_n = r.found.fixes if kind == "fixes" else r.found.scada
        out.append(
            f"| {kind} | {r.published[kind]:,} | {stored_n:,} | {quarantined:,} | "
            f"{sum(r.found.dead[kind].values()):,} | {lost[kind]:,} |"
        )
    other = sum(r.found.dead["other"].values())
    out += [
        "",
        f"Acknowledged by the broker: {r.acked:,} of {sum(r.published.values()):,}. SCADA rows "
        f"in `telemetry`: {r.found.telemetry_rows:,}. Dead letters on other topics: {other:,}. "
        f"Drained in {r.drain_s:.1f} s after the last publish. Lost = published - stored - "
        "quarantined - dead-lettered.",
        "",
        "## Throughput",
        "",
        f"Published {sum(r.published.values()) / r.span_s:,.0f} messages/s over {r.span_s:.1f} s "
        f"({r.published['fixes'] / r.span_s:,.0f} fixes/s, "
        f"{r.published['scada'] / r.span_s:,.0f} SCADA/s), in writes every {SLOT_S * 1000:g} ms; "
        f"the publisher was behind its schedule by p99 {ms(r.behind[0])} ms, at most "
        f"{ms(r.behind[1])} ms. Rows received by the gateway per whole second of the load "
        "(lowest / median / highest):",
        "",
    ]
    for kind, spread in r.rates.items():
        text = "-" if spread is None else " / ".join(f"{v:,.0f}" for v in spread)
        out.append(f"- {kind}: {text}")
    out += [
        "",
        "## Gateway lag (ms)",
        "",
        "| kind | measured to | events | p50 | p95 | p99 |",
        "|---|---|---|---|---|---|",
    ]
    for kind, label in (("position", "fixes"), ("telemetry", "scada")):
        lags = r.live_lags[kind]
        out.append(f"| {label} | live event | {len(lags):,} | {pcts(lags)} |")
        received = r.received[label]
        text = " | ".join(ms(v) for v in received) if received else "- | - | -"
        out.append(f"| {label} | gateway's received time | all stored | {text} |")
    out += [
        "",
        "Live event: the gateway's event on Redis, published after the commit, as a listener "
        "process reads it (its own delay included). Received time: the gateway's `received_at` "
        "of every stored row. A SCADA message makes one event per metric. The gateway writes "
        f"a batch at {flush_ms} ms after its first message unless it fills first "
        "(`FIELDLINE_GATEWAY_FLUSH_MS`), which the lag to the live event includes.",
        "",
        "## Dead letters and quarantine",
        "",
    ]
    reasons = [
        *(f"- quarantined fix, {reason}: {n:,}" for reason, n in r.found.quarantined.items()),
        *(
            f"- dead letter on {kind}, {reason}: {n:,}"
            for kind, counts in r.found.dead.items()
            for reason, n in counts.items()
        ),
    ]
    out += reasons or ["None."]
    out += [
        "",
        "## API (ms)",
        "",
        "| endpoint | idle requests | idle p50 | p95 | p99 | load requests | errors | "
        "load p50 | p95 | p99 |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for endpoint in sorted(set(r.idle.latencies) | set(r.loaded.latencies)):
        idle, loaded = r.idle.latencies[endpoint], r.loaded.latencies[endpoint]
        errors = r.idle.errors[endpoint] + r.loaded.errors[endpoint]
        out.append(
            f"| {endpoint} | {len(idle):,} | {pcts(idle)} | {len(loaded):,} | {errors:,} | "
            f"{pcts(loaded)} |"
        )
    samples = {**r.idle.error_samples, **r.loaded.error_samples}
    out += [f"\nFirst error of {e}: `{text}`" for e, text in samples.items()]
    out += [
        "",
        "## CPU and memory",
        "",
        "| process | CPU s | share of one core | peak memory (MiB) |",
        "|---|---|---|---|",
    ]
    for name, used in r.usage.items():
        out.append(
            f"| {name} | {used.cpu_s:,.1f} | {100 * used.cpu_s / r.sampled_s:.0f}% | "
            f"{used.peak_memory / 2**20:,.0f} |"
        )
    for name, seconds in r.helpers_cpu.items():
        out.append(f"| {name} (load test) | {seconds:,.1f} | {100 * seconds / r.span_s:.0f}% | - |")
    out += [
        "",
        "CPU over the load and the drain, and its share of one core over that time. Memory: "
        "proportional set size (pages shared between processes divided among them) summed "
        "over a group's processes, the highest of samples every 2 s. `postgresql (ours)` is "
        "the backends connected to the scratch database; `postgresql (all)` and `redis` serve "
        "the whole machine.",
        "",
    ]
    return "\n".join(out)


# --- the run -------------------------------------------------------------------------------


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--devices", type=int, default=10_000)
    parser.add_argument("--stations", type=int, default=1_000)
    parser.add_argument("--seconds", type=float, default=300.0, help="of load")
    parser.add_argument("--idle-seconds", type=float, default=60.0, help="dispatchers alone")
    parser.add_argument("--drain-seconds", type=float, default=120.0, help="at most")
    parser.add_argument("--workers", type=int, default=1, help="gateway processes")
    parser.add_argument("--dispatchers", type=int, default=3)
    parser.add_argument("--database", default="fieldline_load")
    parser.add_argument("--port", type=int, default=0, help="the web server's (0: a free one)")
    parser.add_argument("--report", type=Path, default=REPORT)
    args = parser.parse_args(argv)
    if args.devices < 1 or args.stations < 1 or args.seconds <= 0 or args.workers < 1:
        parser.error("--devices, --stations, --seconds and --workers must be positive")
    return args


def run(args: argparse.Namespace) -> Results:
    url, dsn = database_urls(args.database)
    crews, stations = prepare_database(args.database, args.devices, args.stations)
    with psycopg.connect(dsn) as conn:
        box = city_box(conn)
    prefix = f"load-{args.database}"
    clear_redis(prefix)
    folder = Path(tempfile.mkdtemp(prefix="fieldline-load-"))
    port = args.port or free_port()
    try:
        with (
            private_broker() as (broker_port, broker_pid),
            running_system(url, broker_port, prefix, args.workers, port, folder) as system,
        ):
            print(f"system up: {system.base}, broker on {broker_port}", flush=True)
            with dispatchers(args.dispatchers, system.base, crews, box) as idle:
                time.sleep(args.idle_seconds)
            print(f"idle: {sum(map(len, idle.latencies.values())):,} API requests", flush=True)
            plan = Plan(crews, stations, args.seconds, box)
            with psycopg.connect(dsn, autocommit=True) as monitor:
                groups = {
                    "gateway": lambda: [p for g in system.gateways for p in children(g)],
                    "web": lambda: children(system.web),
                    "scheduler": lambda: children(system.scheduler),
                    "postgresql (ours)": database_backends(monitor, args.database),
                    "postgresql (all)": lambda: by_name("postgres"),
                    "mosquitto": lambda: [broker_pid],
                    "redis": lambda: by_name("redis-server"),
                }
                published, sent, found, drain_s, heard, loaded, sampler = loaded_run(
                    args, plan, dsn, prefix, broker_port, system, groups
                )
        with psycopg.connect(dsn) as conn:
            received = received_lags(conn)
            rates = per_second(conn, sent["first"] + 1, sent["last"])
        for log in sorted(folder.glob("*.log")):
            for text in log.read_text(errors="replace").splitlines():
                if " ERROR " in text or "Traceback" in text:
                    print(f"  {log.name}: {text[:300]}", flush=True)
    finally:
        clear_redis(prefix)
        shutil.rmtree(folder, ignore_errors=True)
    behind = list(array.array("d", sent["behind"]))
    results = Results(
        args=args,
        published=published,
        acked=sent["acked"],
        span_s=sent["last"] - sent["first"],
        found=found,
        drain_s=drain_s,
        live_lags={kind: array.array("d", heard[kind]) for kind in ("position", "telemetry")},
        received=received,
        rates=rates,
        idle=idle,
        loaded=loaded,
        usage=sampler.usage(),
        machine_share=sampler.machine_share,
        sampled_s=sampler.elapsed_s,
        behind=(p99(behind) or 0.0, max(behind, default=0.0)),
        helpers_cpu={"publisher": sent["cpu"], "live listener": heard["cpu"]},
    )
    lines = result_lines(results)
    args.report.write_text(render(results, lines))
    print(f"report written to {args.report}", flush=True)
    return results


def loaded_run(
    args: argparse.Namespace,
    plan: Plan,
    dsn: str,
    prefix: str,
    broker_port: int,
    system: System,
    groups: dict[str, Any],
) -> tuple[dict[str, int], dict[str, Any], Stored, float, dict[str, Any], Calls, Sampler]:
    """The publisher and the dispatchers together, then the drain."""
    with (
        live_listener(f"{prefix}:live") as listener,
        publisher(broker_port, plan) as pub,
        Sampler(groups) as sampler,
        dispatchers(args.dispatchers, system.base, plan.crews, plan.box) as loaded,
    ):
        pub.send(now_s() + 0.2)
        print(
            f"load: {len(plan.crews):,} devices and {len(plan.stations):,} stations for "
            f"{args.seconds:g} s",
            flush=True,
        )
        if not pub.poll(args.seconds + 120):
            raise RuntimeError("the publisher did not finish")
        sent: dict[str, Any] = pub.recv()
        published = {"fixes": sent["fixes"], "scada": sent["scada"]}
        print(f"published: {published}, acknowledged {sent['acked']:,}", flush=True)
        found, drain_s = drain(dsn, published, args.drain_seconds)
        print(f"drained in {drain_s:.1f} s", flush=True)
        time.sleep(2.0)  # the last live events after the last commit
        listener.send("stop")
        heard: dict[str, Any] = listener.recv()
    return published, sent, found, drain_s, heard, loaded, sampler


def result_lines(r: Results) -> list[str]:
    """The `name: ours X, baseline Y, ratio Z` lines, printed, and the goals line."""
    lines, goals = [], []
    span = r.span_s
    for kind in ("fixes", "scada"):
        stored_n = r.found.fixes if kind == "fixes" else r.found.scada
        lines.append(
            line(f"load_{kind}_stored_per_s", stored_n / span, r.published[kind] / span,
                 "published per s")
        )  # fmt: skip
        lost = r.published[kind] - r.found.accounted(kind)
        goals.append(f"{kind} lost {lost:,} {'met' if lost == 0 else 'NOT met'}")
    lag = p99(list(r.live_lags["position"]) + list(r.live_lags["telemetry"]))
    if lag is not None:
        lines.append(
            line("load_gateway_lag_p99_ms", lag, GOAL_P99_MS,
                 "goal of bench_gateway.py at 5,000/s")
        )  # fmt: skip
        goals.append(f"gateway lag p99 {lag:.0f} ms {'met' if lag <= GOAL_P99_MS else 'NOT met'}")
    for endpoint in sorted(r.loaded.latencies):
        ours, idle = p99(r.loaded.latencies[endpoint]), p99(r.idle.latencies[endpoint])
        if ours is not None and idle is not None:
            lines.append(line(f"load_api_{endpoint}_p99_ms", ours, idle, "idle, same run"))
    errors = sum(r.loaded.errors.values()) + sum(r.idle.errors.values())
    goals.append(f"API errors {errors:,} {'met' if errors == 0 else 'NOT met'}")
    text = "goals: " + "; ".join(goals)
    print(text, flush=True)
    return [*lines, text]


def main(argv: Sequence[str] | None = None) -> None:
    exit_on_sigterm()
    args = parse_args(argv)
    start = time.perf_counter()
    results = run(args)
    print(f"total: {time.perf_counter() - start:.1f} s", flush=True)
    lost = sum(n - results.found.accounted(kind) for kind, n in results.published.items())
    if lost:
        sys.exit(f"{lost:,} messages lost")


if __name__ == "__main__":
    main()
