"""Dispatchers' screens on the live stream: how many open `/api/v1/live` streams one
`fieldline serve` holds, and how fast events reach them.

Ours is `fieldline serve` as it runs by default (FIELDLINE_WEB_SERVER=asgi: the streams are
served by each worker's event loop through one Redis subscription per worker). The baseline is
the same server with FIELDLINE_WEB_SERVER=gthread, where each open stream holds one of
gunicorn's threads. Both run with the same workers and threads (`--workers`, `--threads`; the
threads default to the most the setting allows, as a deployment sized for streams would set it),
on a scratch database (`fieldline_bench_live`, only migrated), loopback only.

For each step of N clients (`--steps`, in order, up to `--max-clients`): N asyncio clients
open the stream at once (raw sockets); those that see `: connected` within `--connect-s` are
connected. Then events are published to Redis at `--rate` per second for `--duration` seconds,
each carrying the time it was published; every client records each event's delivery latency.
A step holds when every client connected, got every event, and the p99 latency is at most
`--p99-limit-ms`. The steps stop for a side at its first step that does not hold. Printed:

  live_clients_held            the largest N that held
  live_p99_ms_at_<N>           delivery latency p99 at each N both sides held
  live_server_rss_mb_at_<N>    the server's resident memory (master and workers) at the end
  live_server_cpu_pct_at_<N>   the server's CPU while events flowed (100 = one core)

Everything is bounded: each step by its connect and publish time, the run by `--time-limit-s`;
the servers are always stopped. Usage:

  python bench/bench_live.py [--steps 25,50,100,250,500,1000,2000] [--rate 20] [--duration 10]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field

import redis.asyncio as aioredis
from common import (
    create_database,
    exit_on_sigterm,
    free_port,
    ms,
    percentile,
    stop,
    wait_until_ready,
)

from fieldline.gis.db import upgrade
from fieldline.settings import load_settings

BENCH_DB = "fieldline_bench_live"
BENCH_DSN = f"postgresql://localhost/{BENCH_DB}"
BENCH_URL = f"postgresql+psycopg://localhost/{BENCH_DB}"
EVENT = re.compile(rb'"seq":(\d+),"sent":([0-9.]+)')
SIDES = {"ours": "asgi", "baseline": "gthread"}


@dataclass
class Client:
    connected: bool = False
    ended: bool = False
    latencies_ms: list[float] = field(default_factory=list)
    seen: set[int] = field(default_factory=set)


@dataclass
class Step:
    clients: int
    connected: int
    complete: int  # clients that got every event
    p50_ms: float
    p99_ms: float
    rss_mb: float
    cpu_pct: float
    holds: bool
    why: str


# --- the server ---------------------------------------------------------------------------


@dataclass
class Server:
    process: subprocess.Popen[bytes]
    port: int
    channel: str

    def pids(self) -> list[int]:
        found = [self.process.pid]
        with contextlib.suppress(OSError):
            path = f"/proc/{self.process.pid}/task/{self.process.pid}/children"
            with open(path) as children:
                found += [int(pid) for pid in children.read().split()]
        return found

    def rss_mb(self) -> float:
        total = 0
        for pid in self.pids():
            with contextlib.suppress(OSError), open(f"/proc/{pid}/statm") as statm:
                total += int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
        return total / 2**20

    def cpu_s(self) -> float:
        ticks = 0
        for pid in self.pids():
            with contextlib.suppress(OSError), open(f"/proc/{pid}/stat") as stat:
                fields = stat.read().rsplit(")", 1)[1].split()
                ticks += int(fields[11]) + int(fields[12])  # utime, stime
        return ticks / os.sysconf("SC_CLK_TCK")


@contextlib.contextmanager
def running(side: str, args: argparse.Namespace) -> Iterator[Server]:
    port = free_port()
    prefix = f"fieldline-bench-live-{os.getpid()}-{side}"
    env = os.environ | {
        "FIELDLINE_DATABASE_URL": BENCH_URL,
        "FIELDLINE_REDIS_PREFIX": prefix,
        "FIELDLINE_WEB_SERVER": SIDES[side],
        "FIELDLINE_WEB_WORKERS": str(args.workers),
        "FIELDLINE_WEB_THREADS": str(args.threads),
        "FIELDLINE_ANONYMOUS_ROLE": "viewer",
        "FIELDLINE_LOG_LEVEL": "WARNING",
    }
    command = [sys.executable, "-m", "fieldline.cli", "serve", "--host", "127.0.0.1"]
    process = subprocess.Popen(
        [*command, "--port", str(port)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        wait_until_ready(f"http://127.0.0.1:{port}/healthz", process, 60, f"{side} server")
        yield Server(process, port, f"{prefix}:live")
    finally:
        stop(process)


# --- the clients --------------------------------------------------------------------------


async def listen(port: int, client: Client, connected: asyncio.Event, done: asyncio.Event) -> None:
    """One dispatcher's screen: open the stream, note when each event arrives."""
    writer = None
    try:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(
            b"GET /api/v1/live?heartbeat=30 HTTP/1.1\r\nHost: 127.0.0.1\r\n"
            b"Accept: text/event-stream\r\n\r\n"
        )
        buffer = b""
        while not done.is_set():
            chunk = await reader.read(65536)
            if not chunk:
                client.ended = True
                return
            now = time.monotonic()
            buffer += chunk
            if not client.connected:
                if b": connected" not in buffer:
                    continue
                client.connected = True
                connected.set()
            # Frames may be cut between reads: keep the tail after the last complete event.
            cut = buffer.rfind(b"\n\n")
            if cut < 0:
                continue
            whole, buffer = buffer[:cut], buffer[cut:]
            for match in EVENT.finditer(whole):
                client.seen.add(int(match[1]))
                client.latencies_ms.append((now - float(match[2])) * 1000)
    except (OSError, asyncio.IncompleteReadError):
        client.ended = True
    finally:
        if writer is not None:
            writer.close()
            with contextlib.suppress(OSError):
                await writer.wait_closed()


async def publish(channel: str, redis_url: str, rate: float, duration: float) -> int:
    client = aioredis.Redis.from_url(redis_url)
    sent = 0
    started = time.monotonic()
    try:
        while (at := started + sent / rate) < started + duration:
            await asyncio.sleep(max(0.0, at - time.monotonic()))
            event = {"type": "position", "crew_id": "BENCH", "seq": sent, "sent": time.monotonic()}
            await client.publish(channel, json.dumps(event, separators=(",", ":")))
            sent += 1
    finally:
        await client.aclose()
    return sent


async def subscribed(server: Server, redis_url: str, expected: int) -> None:
    """Until `expected` subscriptions listen: gunicorn's threads subscribe once per stream,
    after `: connected` is sent; the fan-out before it, once per worker."""
    client = aioredis.Redis.from_url(redis_url)
    try:
        async with asyncio.timeout(10):
            while (await client.pubsub_numsub(server.channel))[0][1] < expected:
                await asyncio.sleep(0.05)
    finally:
        await client.aclose()


async def run_step(
    server: Server, side: str, clients: int, args: argparse.Namespace, redis_url: str
) -> Step:
    done = asyncio.Event()
    screens = [Client() for _ in range(clients)]
    events = [asyncio.Event() for _ in range(clients)]
    tasks = [
        asyncio.create_task(listen(server.port, screen, event, done))
        for screen, event in zip(screens, events, strict=True)
    ]
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(args.connect_s):
            await asyncio.gather(*(event.wait() for event in events))
    connected = sum(screen.connected for screen in screens)
    published = 0
    cpu_before, started = server.cpu_s(), time.monotonic()
    if connected == clients:
        with contextlib.suppress(TimeoutError):  # events missed then fail the step
            await subscribed(server, redis_url, clients if SIDES[side] == "gthread" else 1)
        cpu_before, started = server.cpu_s(), time.monotonic()
        published = await publish(server.channel, redis_url, args.rate, args.duration)
        await asyncio.sleep(1.0)  # the last events' way through
    cpu_pct = 100 * (server.cpu_s() - cpu_before) / (time.monotonic() - started)
    rss_mb = server.rss_mb()
    done.set()
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)

    complete = sum(len(screen.seen) == published for screen in screens if screen.connected)
    latencies = [value for screen in screens for value in screen.latencies_ms]
    p50 = percentile(latencies, 50) if len(latencies) > 1 else float("nan")
    p99 = percentile(latencies, 99) if len(latencies) > 1 else float("nan")
    why = ""
    if connected < clients:
        why = f"{clients - connected} of {clients} clients not connected in {args.connect_s:.0f} s"
    elif complete < clients:
        why = f"{clients - complete} clients missed events"
    elif not p99 <= args.p99_limit_ms:
        why = f"p99 {ms(p99)} ms over {args.p99_limit_ms:.0f} ms"
    return Step(clients, connected, complete, p50, p99, rss_mb, cpu_pct, not why, why)


def measure_side(side: str, args: argparse.Namespace, deadline: float) -> dict[int, Step]:
    redis_url = load_settings().redis_url
    results: dict[int, Step] = {}
    for clients in args.steps:
        if time.monotonic() > deadline:
            print(f"note: {side} stopped before {clients} clients: time limit", flush=True)
            break
        # A fresh server for each step: streams of the step before may still hold threads.
        with running(side, args) as server:
            step = asyncio.run(run_step(server, side, clients, args, redis_url))
            results[clients] = step
            verdict = "holds" if step.holds else f"fails: {step.why}"
            print(
                f"{side} {clients} clients: connected {step.connected}, complete "
                f"{step.complete}, p50 {ms(step.p50_ms)} ms, p99 {ms(step.p99_ms)} ms, "
                f"rss {step.rss_mb:.0f} MB, cpu {step.cpu_pct:.0f}% ({verdict})",
                flush=True,
            )
        if not step.holds:
            break
    return results


def held(results: dict[int, Step]) -> int:
    return max((n for n, step in results.items() if step.holds), default=0)


def ratio(ours: float, baseline: float) -> str:
    return f"{ours / baseline:.2f}" if baseline else "inf"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", default="25,50,100,250,500,1000,2000")
    parser.add_argument("--max-clients", type=int, default=2000)
    parser.add_argument("--rate", type=float, default=20.0, help="events per second")
    parser.add_argument("--duration", type=float, default=10.0, help="seconds of events per step")
    parser.add_argument("--connect-s", type=float, default=30.0)
    parser.add_argument("--p99-limit-ms", type=float, default=1000.0)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--threads", type=int, default=64)
    parser.add_argument("--time-limit-s", type=float, default=900.0)
    parser.add_argument("--reuse", action="store_true", help="keep a migrated scratch database")
    args = parser.parse_args()
    args.steps = sorted(n for n in map(int, args.steps.split(",")) if 0 < n <= args.max_clients)
    exit_on_sigterm()
    with contextlib.suppress(ImportError):
        import uvloop

        asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())

    if args.reuse:
        upgrade(BENCH_URL)
    else:
        create_database(BENCH_DB)
    started = time.monotonic()
    # Each side gets half of the time limit, so the baseline is measured however ours does.
    ours = measure_side("ours", args, started + args.time_limit_s / 2)
    baseline = measure_side("baseline", args, time.monotonic() + args.time_limit_s / 2)

    ours_held, baseline_held = held(ours), held(baseline)
    print(
        f"live_clients_held: ours {ours_held}, baseline {baseline_held}, "
        f"ratio {ratio(ours_held, baseline_held)} ({args.workers} workers x {args.threads} "
        f"threads, {args.rate:g} events/s, p99 limit {args.p99_limit_ms:.0f} ms)",
        flush=True,
    )
    for clients in args.steps:
        mine, theirs = ours.get(clients), baseline.get(clients)
        if mine is None or theirs is None or not (mine.holds and theirs.holds):
            continue
        print(
            f"live_p99_ms_at_{clients}: ours {ms(mine.p99_ms)}, baseline {ms(theirs.p99_ms)}, "
            f"ratio {ratio(mine.p99_ms, theirs.p99_ms)}",
            flush=True,
        )
        print(
            f"live_server_rss_mb_at_{clients}: ours {mine.rss_mb:.0f}, baseline "
            f"{theirs.rss_mb:.0f}, ratio {ratio(mine.rss_mb, theirs.rss_mb)}",
            flush=True,
        )
        print(
            f"live_server_cpu_pct_at_{clients}: ours {mine.cpu_pct:.0f}, baseline "
            f"{theirs.cpu_pct:.0f}, ratio {ratio(mine.cpu_pct, theirs.cpu_pct)}",
            flush=True,
        )
    for side, results in (("ours", ours), ("baseline", baseline)):
        failed = [step for step in results.values() if not step.holds]
        if failed:
            print(f"note: {side} first failed at {failed[0].clients}: {failed[0].why}", flush=True)


if __name__ == "__main__":
    main()
