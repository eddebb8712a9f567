"""The device gateway against a bare MQTT subscriber, and its latency at a steady rate.

Builds a scratch database (`fieldline_bench_gateway`) with crews, starts a private Mosquitto (so
that the flood reaches no other subscriber of the machine's broker) and, from a publisher in a
process of its own, sends own-JSON fixes on `fieldline/crews/{crew_id}/position`, spread over
the crews, one second apart per crew so that every GPS filter (all of them on) accepts them.

Throughput, QoS 0 and QoS 1, the publisher sending as fast as it can:
  baseline  a bare paho subscriber (MQTT 5, the gateway's topic filter, shared subscription
            and receive maximum) that only counts, until the last message arrives
  ours      `fieldline gateway`, one worker and then two on one shared subscription, until the
            last row is committed (rows counted in `positions`)
  msgs/s = messages / (last arrival or commit - first publish)
The publisher writes MQTT packets built beforehand straight to its socket, so that it takes
little of the two cores the broker, PostgreSQL, Redis and the consumers share.

Latency, QoS 1, one worker and then two: the publisher paced to a steady rate, keeping the
wall time of every publish call. A fix counts as committed when the gateway's live event for it
arrives on Redis: the gateway publishes it after the commit, so the figure includes the fan-out
and bounds publish-to-commit from above. The listener only stamps what it reads from its
socket and parses it after the run.

Usage: python bench/bench_gateway.py [--messages N] [--latency-seconds S]
(or BENCH_GATEWAY_MESSAGES / BENCH_GATEWAY_LATENCY_S in the environment, for `make bench`).
The database is left in place afterwards; the broker and the gateways are always stopped.
"""

from __future__ import annotations

import argparse
import bisect
import contextlib
import getpass
import itertools
import json
import multiprocessing as mp
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import psycopg
import redis
from common import create_database, exit_on_sigterm, ms, percentile

from fieldline.device_gateway.worker import INFLIGHT_BATCHES
from fieldline.settings import Settings

BENCH_DB = "fieldline_bench_gateway"
BENCH_DSN = f"postgresql://localhost/{BENCH_DB}"
BENCH_URL = f"postgresql+psycopg://localhost/{BENCH_DB}"
REDIS_URL = "redis://localhost:6379/0"
PREFIX = "gwbench"
CREWS = 200
TOPIC = "fieldline/crews/{}/position"
FILTER = "fieldline/crews/+/position"
# The gateway's window of unacknowledged messages, with its default batch size.
RECEIVE_MAXIMUM = INFLIGHT_BATCHES * Settings.model_fields["gateway_batch_size"].default
LATENCY_RATE = 5000
GOAL_ONE_WORKER = 0.7  # of the bare subscriber's rate
GOAL_TWO_WORKERS = 1.6  # of one worker's rate
GOAL_P99_MS = 250.0
STALL_S = 30.0  # no progress for this long: the run is given up


def now_s() -> float:
    return time.time()  # wall time: the processes compare their clocks


# --- scratch database -----------------------------------------------------------------------


def prepare_database(crews: int) -> list[str]:
    """A fresh, migrated database holding `crews` vehicle crews; their public ids."""
    from fieldline.gis.db import make_engine, make_sessionmaker
    from fieldline.server.crews.services import create_crew

    create_database(BENCH_DB)
    engine = make_engine(BENCH_URL)
    try:
        with make_sessionmaker(engine)() as session:
            ids = [
                create_crew(session, f"Bench crew {n}", "vehicle").public_id for n in range(crews)
            ]
            session.commit()
    finally:
        engine.dispose()
    return ids


def empty_tables() -> None:
    with psycopg.connect(BENCH_DSN, autocommit=True) as conn:
        conn.execute("TRUNCATE positions, quarantined_fixes, dead_letters")


def table_counts(conn: psycopg.Connection[Any]) -> tuple[int, int, int]:
    row = conn.execute(
        "SELECT (SELECT count(*) FROM positions), (SELECT count(*) FROM quarantined_fixes),"
        " (SELECT count(*) FROM dead_letters)"
    ).fetchone()
    assert row is not None
    return int(row[0]), int(row[1]), int(row[2])


def clear_redis(prefix: str) -> None:
    client = redis.Redis.from_url(REDIS_URL)
    try:
        keys = list(client.scan_iter(f"{prefix}:*"))
        if keys:
            client.delete(*keys)
    finally:
        client.close()


# --- a private Mosquitto ----------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@contextlib.contextmanager
def private_broker() -> Iterator[tuple[int, int]]:
    """Mosquitto on a free loopback port with the queue limit `fieldline services up` sets on
    the machine's broker; yields (port, pid)."""
    folder = Path(tempfile.mkdtemp(prefix="gwbench-broker-"))
    port = free_port()
    conf = folder / "mosquitto.conf"
    conf.write_text(
        f"listener {port} 127.0.0.1\n"
        "allow_anonymous true\n"
        # Running as root, Mosquitto would switch to its own user, who cannot write here.
        f"user {getpass.getuser()}\n"
        "persistence false\n"
        "max_queued_messages 1000000\n"
        f"log_dest file {folder / 'mosquitto.log'}\n"
    )
    process = subprocess.Popen(
        ["mosquitto", "-c", str(conf)], stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT
    )
    try:
        deadline = time.monotonic() + 10
        while True:
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.5):
                break
            if time.monotonic() > deadline or process.poll() is not None:
                raise RuntimeError("the private Mosquitto did not start")
            time.sleep(0.05)
        yield port, process.pid
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        shutil.rmtree(folder, ignore_errors=True)


# --- CPU accounting ---------------------------------------------------------------------------


def process_cpu_s(pid: int) -> float | None:
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None  # gone
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def with_children(pids: list[int]) -> list[int]:
    """The processes and their children (a gateway worker receives in a process of its own)."""
    found = list(pids)
    for pid in pids:
        with contextlib.suppress(OSError):
            children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
            found += [int(child) for child in children]
    return found


def postgres_pids() -> list[int]:
    pids = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            with contextlib.suppress(OSError):
                if (entry / "comm").read_text().strip() == "postgres":
                    pids.append(int(entry.name))
    return pids


def machine_busy_s() -> tuple[float, float]:
    """(busy, total) CPU seconds of the whole machine since boot."""
    values = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = values[3] + values[4]
    total = sum(values[:8])
    tick = os.sysconf("SC_CLK_TCK")
    return (total - idle) / tick, total / tick


@dataclass
class CpuMeter:
    """CPU seconds used during a run by named groups of processes, by PostgreSQL (every
    backend, ours or not) and by the whole machine (other work on it included)."""

    groups: dict[str, list[int]]
    start: dict[int, float] = field(default_factory=dict)
    machine: tuple[float, float] = (0.0, 0.0)

    def _pids(self) -> dict[str, list[int]]:
        groups = {name: with_children(pids) for name, pids in self.groups.items()}
        return groups | {"postgres": postgres_pids()}

    def begin(self) -> None:
        self.start = {
            p: seconds
            for pids in self._pids().values()
            for p in pids
            if (seconds := process_cpu_s(p)) is not None
        }
        self.machine = machine_busy_s()

    def end(self, reported: dict[str, float]) -> str:
        """`reported`: CPU seconds that processes which may have ended gave themselves."""
        used = dict(reported)
        for name, pids in self._pids().items():
            # Per process, from its value at the start (0 for one started since).
            now = {p: process_cpu_s(p) for p in pids}
            used[name] = sum(s - self.start.get(p, 0.0) for p, s in now.items() if s is not None)
        busy, total = machine_busy_s()
        share = (busy - self.machine[0]) / max(total - self.machine[1], 1e-9)
        parts = ", ".join(f"{name} {seconds:.1f} s" for name, seconds in used.items())
        return f"cpu: {parts}; machine busy {100 * share:.0f}% of {os.cpu_count()} cores"


# --- the publisher (a process of its own) ---------------------------------------------------


@dataclass(frozen=True)
class Plan:
    crews: list[str]
    count: int
    qos: int
    start: datetime  # the fix time of each crew's first fix
    rate: float = 0.0  # messages a second; 0: as fast as possible


def fix_time(plan: Plan, index: int) -> datetime:
    return plan.start + timedelta(seconds=index // len(plan.crews))


def message(plan: Plan, index: int) -> tuple[str, bytes]:
    """Fix `index`: crews in turn, each crew's fixes a second apart and a metre or so apart
    (so that neither too_frequent nor jump fires)."""
    slot, step = index % len(plan.crews), index // len(plan.crews)
    lat = 60.15 + 0.0005 * (slot % 20) + 0.00001 * step
    lon = 24.85 + 0.001 * (slot // 20)
    body = {
        "ts": fix_time(plan, index).isoformat(),
        "lat": round(lat, 7),
        "lon": lon,
        "acc_m": 5.0,
        "speed_mps": 1.1,
        "heading_deg": 0.0,
        "batt_pct": 80.0,
    }
    return TOPIC.format(plan.crews[slot]), json.dumps(body).encode()


def remaining_length(n: int) -> bytes:
    out = bytearray()
    while True:
        n, digit = divmod(n, 128)
        out.append(digit | (0x80 if n else 0))
        if not n:
            return bytes(out)


def mqtt_packet(kind: int, body: bytes) -> bytes:
    return bytes([kind]) + remaining_length(len(body)) + body


def mqtt_string(text: str) -> bytes:
    raw = text.encode()
    return len(raw).to_bytes(2, "big") + raw


def publish_packet(topic: str, payload: bytes, qos: int, index: int) -> bytes:
    packet_id = (index % 65535 + 1).to_bytes(2, "big") if qos else b""
    return mqtt_packet(0x30 | qos << 1, mqtt_string(topic) + packet_id + payload)


def publish(port: int, plan: Plan, pipe: Connection) -> None:
    """An MQTT 3.1.1 publisher that writes PUBLISH packets built beforehand straight to its
    socket: a paho client would take as much of the two cores as the consumers it feeds.
    Says ready once connected; on `go` sends them all (paced when the plan has a rate), then
    reports the wall time of each send and when the last PUBACK came (QoS 1)."""
    import threading

    packets = [publish_packet(*message(plan, i), plan.qos, i) for i in range(plan.count)]
    sock = socket.create_connection(("127.0.0.1", port))
    connect = b"\x00\x04MQTT\x04\x02\x00\x00" + mqtt_string(f"gwbench-pub-{os.getpid()}")
    sock.sendall(mqtt_packet(0x10, connect))  # clean session, no keep-alive
    if sock.recv(4) != b"\x20\x02\x00\x00":
        raise RuntimeError("the broker refused the publisher")
    acked = 0
    all_acked = threading.Event()

    def read_pubacks() -> None:  # all the broker sends back: 4-byte PUBACKs
        nonlocal acked
        received = 0
        while received < 4 * plan.count:
            chunk = sock.recv(65536)
            if not chunk:
                break
            received += len(chunk)
            acked = received // 4
        all_acked.set()

    if plan.qos:
        threading.Thread(target=read_pubacks, daemon=True).start()
    pipe.send("ready")
    pipe.recv()  # go
    cpu_at_go = time.process_time()
    sent = [0.0] * plan.count
    chunk = max(1, int(plan.rate / 200)) if plan.rate else 500  # paced: every 5 ms
    started = now_s()
    for first in range(0, plan.count, chunk):
        last = min(first + chunk, plan.count)
        if plan.rate:
            time.sleep(max(0.0, started + first / plan.rate - now_s()))
        # A packet id is free again once acknowledged: keep fewer than 65,535 in flight.
        while plan.qos and last - acked >= 65_000:
            time.sleep(0.001)
        at = now_s()
        sock.sendall(b"".join(packets[first:last]))
        sent[first:last] = [at] * (last - first)
    last_sent = now_s()
    if plan.qos:
        all_acked.wait(120)
    acked_at = now_s()
    sock.sendall(b"\xe0\x00")  # DISCONNECT
    sock.close()
    cpu = time.process_time() - cpu_at_go
    pipe.send({"sent": sent, "last": last_sent, "acked": acked, "acked_at": acked_at, "cpu": cpu})


@dataclass
class Publisher:
    process: mp.process.BaseProcess
    pipe: Connection
    plan: Plan

    def go(self) -> None:
        self.pipe.send("go")

    def result(self, timeout: float = 300) -> dict[str, Any]:
        if not self.pipe.poll(timeout):
            raise RuntimeError("the publisher did not finish")
        found: dict[str, Any] = self.pipe.recv()
        self.process.join(timeout=30)
        return found


@contextlib.contextmanager
def publisher(port: int, plan: Plan) -> Iterator[Publisher]:
    ours, theirs = mp.Pipe()
    process = mp.get_context("spawn").Process(target=publish, args=(port, plan, theirs))
    process.start()
    try:
        if not ours.poll(120) or ours.recv() != "ready":
            raise RuntimeError("the publisher did not get ready")
        yield Publisher(process, ours, plan)
    finally:
        if process.is_alive():
            process.terminate()
        process.join(timeout=10)


def publisher_line(result: dict[str, Any], plan: Plan) -> str:
    """What the publisher reached: for QoS 1 until the broker acknowledged the last message,
    for QoS 0 until the last was written to its socket (the broker reading it)."""
    first = result["sent"][0]
    if plan.qos:
        span = max(result["acked_at"] - first, 1e-9)
        done = f"acknowledged {result['acked']:,} by the broker"
    else:
        span = max(result["last"] - first, 1e-9)
        done = "written to the socket"
    return (
        f"publisher: {plan.count:,} at QoS {plan.qos} {done} in {span:.2f} s, "
        f"{plan.count / span:,.0f}/s"
    )


# --- the bare subscriber (a process of its own) ---------------------------------------------


def subscribe(port: int, group: str, expected: int, pipe: Connection) -> None:
    """Count messages until `expected` arrived (or none came for STALL_S); report the count
    and the wall time of the last one."""
    import threading

    import paho.mqtt.client as mqtt
    from paho.mqtt.enums import CallbackAPIVersion
    from paho.mqtt.packettypes import PacketTypes
    from paho.mqtt.properties import Properties

    received, last = 0, 0.0
    done, subscribed = threading.Event(), threading.Event()

    def on_message(*_: Any) -> None:
        nonlocal received, last
        received += 1
        last = now_s()
        if received >= expected:
            done.set()

    client = mqtt.Client(
        CallbackAPIVersion.VERSION2, client_id=f"gwbench-bare-{os.getpid()}", protocol=mqtt.MQTTv5
    )
    client.on_message = on_message
    client.on_subscribe = lambda *_: subscribed.set()
    client.on_connect = lambda c, *_: c.subscribe(f"$share/{group}/{FILTER}", qos=1)
    properties = Properties(PacketTypes.CONNECT)
    properties.ReceiveMaximum = RECEIVE_MAXIMUM
    client.connect("127.0.0.1", port, properties=properties)
    client.loop_start()
    if not subscribed.wait(30):
        raise RuntimeError("the bare subscriber did not subscribe")
    pipe.send("ready")
    cpu_at_ready = time.process_time()
    seen = -1
    while not done.wait(STALL_S) and received != seen:
        seen = received
    client.loop_stop()
    client.disconnect()
    pipe.send({"received": received, "last": last, "cpu": time.process_time() - cpu_at_ready})


# --- the gateway as processes ---------------------------------------------------------------


@contextlib.contextmanager
def gateways(port: int, workers: int, name: str, folder: Path) -> Iterator[list[int]]:
    """`workers` `fieldline gateway` processes on one shared subscription; yields their pids
    once each is connected and subscribed, and stops them (SIGTERM) on the way out."""
    env = os.environ | {
        "FIELDLINE_DATABASE_URL": BENCH_URL,
        "FIELDLINE_REDIS_URL": REDIS_URL,
        "FIELDLINE_MQTT_URL": f"mqtt://127.0.0.1:{port}",
        "FIELDLINE_REDIS_PREFIX": f"{PREFIX}:{name}",
        "FIELDLINE_GATEWAY_SHARE_GROUP": f"{PREFIX}-{name}",
        "FIELDLINE_GATEWAY_METRICS_PORT": "0",
        "FIELDLINE_GATEWAY_SPARKPLUG": "false",
        "FIELDLINE_MQTT_SESSION_EXPIRY_S": "60",
        "FIELDLINE_LOG_LEVEL": "INFO",
        # Counted as always, but a crew here sends a fleet's share of the messages.
        "FIELDLINE_RATE_LIMIT_DEVICE": "100000000",
    }
    processes: list[subprocess.Popen[bytes]] = []
    logs = []
    try:
        for k in range(workers):
            logs.append(folder / f"{name}-{k}.log")
            with logs[-1].open("wb") as out:
                processes.append(
                    subprocess.Popen(
                        [sys.executable, "-m", "fieldline.cli", "gateway"],
                        env=env | {"FIELDLINE_GATEWAY_CLIENT_ID": f"{PREFIX}-{name}-{k}"},
                        stdout=out,
                        stderr=subprocess.STDOUT,
                        start_new_session=True,
                    )
                )
        deadline = time.monotonic() + 60
        for process, log in zip(processes, logs, strict=True):
            while "connected (session present" not in log.read_text(errors="replace"):
                if process.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"gateway did not start:\n{log.read_text()[-2000:]}")
                time.sleep(0.05)
        time.sleep(0.5)  # the subscription is made on connecting: let its SUBACK come back
        yield [p.pid for p in processes]
    finally:
        for process in processes:
            if process.poll() is None:
                process.terminate()
        for process in processes:
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        for log in logs:
            for line in log.read_text(errors="replace").splitlines():
                if " ERROR " in line or " WARNING " in line:
                    print(f"  {log.name}: {line[:300]}", flush=True)


def wait_for_rows(expected: int, started: float) -> tuple[int, float]:
    """Poll `positions` until it holds `expected` rows (or stalls); (rows, wall time seen).
    Polls slowly while far from the end, then every 20 ms, so the count costs little."""
    with psycopg.connect(BENCH_DSN, autocommit=True) as conn:
        before, changed = -1, time.monotonic()
        while True:
            rows, quarantined, dead = table_counts(conn)
            seen = now_s()
            if quarantined or dead:
                raise RuntimeError(f"{quarantined} fixes quarantined, {dead} dead letters")
            if rows >= expected:
                return rows, seen
            if rows != before:
                before, changed = rows, time.monotonic()
            elif time.monotonic() - changed > STALL_S:
                return rows, seen
            rate = rows / max(seen - started, 1e-3)
            remaining_s = (expected - rows) / rate if rate else 1.0
            time.sleep(0.02 if remaining_s < 1.0 else min(0.25, remaining_s / 4))


# --- the runs ---------------------------------------------------------------------------------


@dataclass
class Run:
    rate: float  # messages a second
    received: int


def throughput_plan(crews: list[str], count: int, qos: int) -> Plan:
    per_crew = -(-count // len(crews))
    # Fixes a second apart per crew, the last a minute ago: within every filter's bounds.
    start = datetime.now(UTC).replace(microsecond=0) - timedelta(seconds=per_crew + 60)
    return Plan(crews, count, qos, start)


def bare_run(port: int, plan: Plan, broker_pid: int) -> Run:
    ours, theirs = mp.Pipe()
    group = f"{PREFIX}-bare-q{plan.qos}"
    process = mp.get_context("spawn").Process(
        target=subscribe, args=(port, group, plan.count, theirs)
    )
    process.start()
    try:
        if not ours.poll(60) or ours.recv() != "ready":
            raise RuntimeError("the bare subscriber did not get ready")
        with publisher(port, plan) as pub:
            meter = CpuMeter({"broker": [broker_pid]})
            meter.begin()
            pub.go()
            if not ours.poll(600):
                raise RuntimeError("the bare subscriber did not finish")
            got: dict[str, Any] = ours.recv()
            sent = pub.result()
            cpu = meter.end({"publisher": sent["cpu"], "subscriber": got["cpu"]})
    finally:
        process.join(timeout=30)
        if process.is_alive():
            process.terminate()
    rate = got["received"] / (got["last"] - sent["sent"][0])
    print(f"  bare subscriber, QoS {plan.qos}: {got['received']:,} received, {rate:,.0f}/s",
          flush=True)  # fmt: skip
    print(f"  {publisher_line(sent, plan)}", flush=True)
    print(f"  {cpu}", flush=True)
    return Run(rate, got["received"])


def gateway_run(port: int, plan: Plan, workers: int, broker_pid: int, folder: Path) -> Run:
    name = f"q{plan.qos}-w{workers}"
    empty_tables()
    clear_redis(f"{PREFIX}:{name}")
    try:
        with gateways(port, workers, name, folder) as pids, publisher(port, plan) as pub:
            meter = CpuMeter({"broker": [broker_pid], "gateway": pids})
            meter.begin()
            pub.go()
            rows, seen = wait_for_rows(plan.count, now_s())
            sent = pub.result()
            cpu = meter.end({"publisher": sent["cpu"]})
    finally:
        clear_redis(f"{PREFIX}:{name}")
    rate = rows / (seen - sent["sent"][0])
    lost = f", {plan.count - rows:,} MISSING" if rows < plan.count else ""
    label = "1 worker" if workers == 1 else f"{workers} workers"
    print(f"  gateway, QoS {plan.qos}, {label}: {rows:,} rows committed{lost}, {rate:,.0f}/s",
          flush=True)  # fmt: skip
    print(f"  {publisher_line(sent, plan)}", flush=True)
    print(f"  {cpu}", flush=True)
    return Run(rate, rows)


class LiveListener:
    """Subscribed to the gateway's live channel over a plain socket: it only stamps each chunk
    read with the wall time and keeps it; the events are parsed after the run, so listening
    takes next to nothing of the cores the gateway needs (redis-py would parse each event)."""

    def __init__(self, channel: str) -> None:
        url = urlsplit(REDIS_URL)
        self.sock = socket.create_connection((url.hostname or "localhost", url.port or 6379))
        name = channel.encode()
        self.sock.sendall(b"*2\r\n$9\r\nSUBSCRIBE\r\n$%d\r\n%s\r\n" % (len(name), name))
        self.chunks: list[tuple[float, bytes]] = []
        self.sock.settimeout(1.0)

    def listen(self, expected: int, quiet_s: float) -> None:
        """Until `expected` events came (counted roughly) or none for `quiet_s`."""
        mark = b"$7\r\nmessage\r\n"
        seen, tail, quiet_since = 0, b"", time.monotonic()
        while seen < expected and time.monotonic() - quiet_since < quiet_s:
            try:
                data = self.sock.recv(1 << 20)
            except TimeoutError:
                continue
            if not data:
                break
            self.chunks.append((now_s(), data))
            joined = tail + data  # a mark may straddle two reads
            seen += joined.count(mark)
            tail = joined[-(len(mark) - 1) :]
            quiet_since = time.monotonic()

    def events(self) -> list[tuple[float, bytes]]:
        """(wall time its last byte was read, payload) of each event on the channel."""
        data = b"".join(chunk for _, chunk in self.chunks)
        ends = list(itertools.accumulate(len(chunk) for _, chunk in self.chunks))
        found, at = [], 0
        while at < len(data):  # RESP arrays: [b"message", channel, payload] after the reply
            line_end = data.index(b"\r\n", at)
            items, at = int(data[at + 1 : line_end]), line_end + 2
            parts = []
            for _ in range(items):
                size_end = data.index(b"\r\n", at)
                if data[at : at + 1] == b":":  # an integer (the subscription count)
                    parts.append(data[at + 1 : size_end])
                    at = size_end + 2
                    continue
                size = int(data[at + 1 : size_end])
                parts.append(data[size_end + 2 : size_end + 2 + size])
                at = size_end + 2 + size + 2
            if parts[0] == b"message":
                found.append((self.chunks[bisect.bisect_left(ends, at)][0], parts[2]))
        return found

    def close(self) -> None:
        self.sock.close()


def latency_run(
    port: int,
    crews: list[str],
    rate: float,
    seconds: float,
    workers: int,
    broker_pid: int,
    folder: Path,
) -> list[float]:
    """Publish-to-committed latencies in ms, one per fix, QoS 1."""
    count = int(rate * seconds)
    per_crew = -(-count // len(crews))
    start = datetime.now(UTC).replace(microsecond=0) - timedelta(seconds=per_crew + 60)
    plan = Plan(crews, count, 1, start, rate)
    name = f"latency-w{workers}"
    prefix = f"{PREFIX}:{name}"
    empty_tables()
    clear_redis(prefix)
    live = LiveListener(f"{prefix}:live")
    try:
        with gateways(port, workers, name, folder) as pids, publisher(port, plan) as pub:
            meter = CpuMeter({"broker": [broker_pid], "gateway": pids})
            meter.begin()
            pub.go()
            live.listen(count, quiet_s=10)
            sent = pub.result()
            cpu = meter.end({"publisher": sent["cpu"]})
        with psycopg.connect(BENCH_DSN, autocommit=True) as conn:
            rows, _, _ = table_counts(conn)
    finally:
        live.close()
        clear_redis(prefix)
    arrivals = live.events()
    index = {
        (crew, fix_time(plan, i).isoformat()): i for i, crew in
        ((i, crews[i % len(crews)]) for i in range(count))
    }  # fmt: skip
    latencies = []
    for arrived, data in arrivals:
        event = json.loads(data)
        if event.get("type") == "position":
            i = index[(event["crew_id"], event["fix_time"])]
            latencies.append((arrived - sent["sent"][i]) * 1000)
    span = sent["last"] - sent["sent"][0]
    lag = sorted(
        (sent["sent"][i] - (sent["sent"][0] + i / rate)) * 1000 for i in range(count)
    )  # fmt: skip
    plural = "s" if workers > 1 else ""
    behind = ms(lag[int(0.99 * (count - 1))])
    print(
        f"  latency, {workers} worker{plural}: {count:,} fixes at {count / span:,.0f}/s for "
        f"{span:.1f} s (publisher behind its schedule: p99 {behind} ms); {rows:,} rows "
        f"committed, {len(latencies):,} live events timed",
        flush=True,
    )
    print(f"  {cpu}", flush=True)
    if len(latencies) < count or rows < count:
        print(f"  WARNING: {count - len(latencies):,} fixes not timed", flush=True)
    return latencies


# --- report -----------------------------------------------------------------------------------


def line(name: str, ours: float, baseline: float, note: str = "", digits: int = 0) -> float:
    ratio = ours / baseline
    print(
        f"{name}: ours {ours:,.{digits}f}, baseline {baseline:,.{digits}f}{note}, "
        f"ratio {ratio:.2f}",
        flush=True,
    )
    return ratio


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--messages", type=int, default=int(os.environ.get("BENCH_GATEWAY_MESSAGES", 200_000))
    )
    parser.add_argument(
        "--latency-seconds",
        type=float,
        default=float(os.environ.get("BENCH_GATEWAY_LATENCY_S", 20.0)),
    )
    parser.add_argument("--latency-rate", type=float, default=LATENCY_RATE)
    parser.add_argument("--crews", type=int, default=CREWS)
    parser.add_argument("--qos", type=int, nargs="+", default=[0, 1], choices=[0, 1])
    return parser.parse_args(argv)


def benchmark(args: argparse.Namespace, crews: list[str]) -> list[str]:
    verdicts = []
    folder = Path(tempfile.mkdtemp(prefix="gwbench-logs-"))
    try:
        with private_broker() as (port, broker_pid):
            for qos in args.qos:
                plan = throughput_plan(crews, args.messages, qos)
                bare = bare_run(port, plan, broker_pid)
                one = gateway_run(port, throughput_plan(crews, args.messages, qos), 1,
                                  broker_pid, folder)  # fmt: skip
                two = gateway_run(port, throughput_plan(crews, args.messages, qos), 2,
                                  broker_pid, folder)  # fmt: skip
                base = f"gateway_qos{qos}"
                r1 = line(f"{base}_1worker_msgs_per_s", one.rate, bare.rate, " (bare subscriber)")
                line(f"{base}_2workers_msgs_per_s", two.rate, bare.rate, " (bare subscriber)")
                r2 = line(f"{base}_2workers_vs_1", two.rate, one.rate, " (1 worker)")
                verdicts += [
                    f"QoS {qos} 1 worker {r1:.2f} of bare "
                    f"{'met' if r1 >= GOAL_ONE_WORKER else 'NOT met'}",
                    f"QoS {qos} 2 workers {r2:.2f}x of 1 "
                    f"{'met' if r2 >= GOAL_TWO_WORKERS else 'NOT met'}",
                ]
            for workers in (1, 2) if args.latency_seconds > 0 else ():
                latencies = latency_run(port, crews, args.latency_rate, args.latency_seconds,
                                        workers, broker_pid, folder)  # fmt: skip
                rate = f"{args.latency_rate:.0f}"
                for pct in (50, 95):
                    print(f"  p{pct}: {ms(percentile(latencies, pct))} ms", flush=True)
                print(f"  max: {ms(max(latencies))} ms", flush=True)
                p99 = percentile(latencies, 99)
                label = "1worker" if workers == 1 else f"{workers}workers"
                name = f"gateway_p99_ms_at_{rate}_{label}"
                r = line(name, p99, GOAL_P99_MS, " (goal)", digits=1)
                verdicts.append(
                    f"p99 at {rate}/s with {workers} worker(s) {p99:.0f} ms "
                    f"{'met' if r <= 1 else 'NOT met'}"
                )
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    return verdicts


def main(argv: Sequence[str] | None = None) -> None:
    exit_on_sigterm()
    args = parse_args(argv)
    start = time.perf_counter()
    crews = prepare_database(args.crews)
    print(
        f"machine: {os.cpu_count()} cores (publisher, Mosquitto, PostgreSQL, Redis and the "
        f"consumers share them); {args.messages:,} fixes per throughput run over "
        f"{len(crews)} crews; GPS filters: all on (default FIELDLINE_GPS_FILTERS); latency: "
        "publish call to the gateway's live event on Redis (sent after the commit)",
        flush=True,
    )
    verdicts = benchmark(args, crews)
    print("goals: " + "; ".join(verdicts), flush=True)
    print(f"total: {time.perf_counter() - start:.1f} s", flush=True)


if __name__ == "__main__":
    main()
