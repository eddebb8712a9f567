"""OGC API - Features items from Fieldline against pygeoapi, on the same PostGIS table.

Both servers publish the `pipes` table of the scratch database (`fieldline_bench`, one million
pipes, see common.py) and answer the same requests: a page of GeoJSON features in a bbox that
holds just under 500 pipes, so each response is every pipe in its box and both servers must
return the same features. Each runs under gunicorn with the same workers, threads and worker
class; a closed-loop client (wrk when it is there, else Python threads) keeps a fixed number of
requests in flight over 20 bbox positions in rotation, first as a warm-up, then timed.

  ogc_items_bbox_500   GET /collections/pipes/items?bbox=...&limit=500&f=json (ours below /ogc)

pygeoapi is installed for the benchmark only, in its own virtualenv (bench/.venv-pygeoapi),
with what its PostgreSQL provider needs. When it cannot be installed or started, the benchmark
says why and measures Fieldline alone.

Usage: python bench/bench_ogc_pygeoapi.py [--reload] [--duration S] [--concurrency N]

The scratch database is reused when it already holds --pipes pipes (`--reload` rebuilds it).
Every server started here is stopped on the way out, also on an error or SIGTERM.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.metadata
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psycopg
import requests
from common import (
    BENCH_DB,
    BENCH_DSN,
    BENCH_URL,
    Extent,
    bbox_positions,
    bbox_size,
    count_in_bbox,
    count_pipes,
    exit_on_sigterm,
    free_port,
    ms,
    percentile,
    pipe_extent,
    prepare_database,
    running,
    running_fieldline,
)

from fieldline.settings import Settings, load_settings

NAME = "ogc_items_bbox_500"
LIMIT = 500
# Boxes hold at most LIMIT pipes, so a response is the whole box and both servers return the
# same set of features whatever order each pages in.
BBOX_TARGET = 480
BBOX_ACCEPT = (450, LIMIT)
BBOX_POSITIONS = 20
GOAL_RATIO = 5.0
HERE = Path(__file__).resolve().parent
PYGEOAPI_VENV = HERE / ".venv-pygeoapi"
STAMP = PYGEOAPI_VENV / "bench-requirements.txt"
COLLECTION = "pipes"


class BaselineUnavailable(Exception):
    """pygeoapi cannot be installed or run here; the message says why."""


# --- pygeoapi -----------------------------------------------------------------------------


def pygeoapi_requirements() -> list[str]:
    # The provider reflects the table with SQLAlchemy and GeoAlchemy2 over psycopg2, and reads
    # CQL through pygeofilter (a dependency of pygeoapi itself). gunicorn is the version
    # Fieldline runs on, so the two servers differ only in the application.
    gunicorn = importlib.metadata.version("gunicorn")
    return ["pygeoapi", "psycopg2-binary", "GeoAlchemy2", f"gunicorn=={gunicorn}"]


def venv_bin(name: str) -> Path:
    return PYGEOAPI_VENV / "bin" / name


def install_pygeoapi() -> str:
    """Create or update the virtualenv; returns the pygeoapi version. Does nothing when the
    same requirements were installed before."""
    wanted = "\n".join(pygeoapi_requirements()) + "\n"
    fresh = not (STAMP.is_file() and STAMP.read_text() == wanted and venv_bin("python").exists())
    if fresh:
        start = time.perf_counter()
        steps = [
            [sys.executable, "-m", "venv", str(PYGEOAPI_VENV)],
            [str(venv_bin("python")), "-m", "pip", "install", "--quiet", *wanted.split()],
        ]
        for step in steps:
            done = subprocess.run(step, capture_output=True, text=True, check=False)
            if done.returncode:
                said = (done.stderr or done.stdout).strip().splitlines()
                tail = [x for x in said if not x.startswith("WARNING")][-3:]
                raise BaselineUnavailable(f"`{' '.join(step[:4])} ...` failed: {' | '.join(tail)}")
        STAMP.write_text(wanted)
        print(f"pygeoapi: installed in {time.perf_counter() - start:.0f} s", flush=True)
    probe = [str(venv_bin("python")), "-c", "import pygeoapi; print(pygeoapi.__version__)"]
    done = subprocess.run(probe, capture_output=True, text=True, check=False)
    if done.returncode:
        raise BaselineUnavailable(f"pygeoapi does not import: {done.stderr.strip()[-300:]}")
    return done.stdout.strip()


def pygeoapi_config(base: str, port: int, extent: Extent) -> dict[str, Any]:
    """The least pygeoapi's schema and OpenAPI generator accept: one collection, `pipes`,
    through its PostgreSQL provider on the scratch database."""
    conninfo = psycopg.conninfo.conninfo_to_dict(BENCH_DSN)
    bounds = [extent.min_lon, extent.min_lat, extent.max_lon, extent.max_lat]
    licence = {"name": "CC-BY 4.0", "url": "https://creativecommons.org/licenses/by/4.0/"}
    return {
        "server": {
            "bind": {"host": "127.0.0.1", "port": port},
            "url": base,
            "mimetype": "application/json; charset=UTF-8",
            "encoding": "utf-8",
            "language": "en-US",
            "pretty_print": False,
            "limits": {"default_items": 10, "max_items": LIMIT},
            "map": {"url": "https://tile.openstreetmap.org/{z}/{x}/{y}.png", "attribution": "OSM"},
        },
        "logging": {"level": "WARNING"},
        "metadata": {
            "identification": {
                "title": "Fieldline benchmark",
                "description": "Water mains of the scratch database",
                "keywords": ["pipes"],
                "url": base,
                "terms_of_service": licence["url"],
            },
            "license": licence,
            "provider": {"name": "Fieldline", "url": base},
            "contact": {"name": "Fieldline"},
        },
        "resources": {
            COLLECTION: {
                "type": "collection",
                "title": "Water mains",
                "description": "Water mains",
                "keywords": ["pipes"],
                "extents": {
                    "spatial": {
                        "bbox": bounds,
                        "crs": "http://www.opengis.net/def/crs/OGC/1.3/CRS84",
                    }
                },
                "providers": [
                    {
                        "type": "feature",
                        "name": "PostgreSQL",
                        "data": {
                            "host": conninfo.get("host", "localhost"),
                            "port": int(str(conninfo.get("port") or 5432)),
                            "dbname": conninfo["dbname"],
                            **({"user": conninfo["user"]} if "user" in conninfo else {}),
                        },
                        # The public id, as Fieldline's feature ids, so responses compare.
                        "id_field": "public_id",
                        "table": COLLECTION,
                        "geom_field": "geom",
                    }
                ],
            }
        },
    }


@contextlib.contextmanager
def running_pygeoapi(settings: Settings, extent: Extent, workdir: Path) -> Iterator[str]:
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    config, openapi = workdir / "pygeoapi-config.yml", workdir / "pygeoapi-openapi.yml"
    # JSON is YAML; pygeoapi reads it as such.
    config.write_text(json.dumps(pygeoapi_config(base, port, extent), indent=2))
    generate = [str(venv_bin("pygeoapi")), "openapi", "generate", str(config)]
    done = subprocess.run(
        [*generate, "--output-file", str(openapi)], capture_output=True, text=True, check=False
    )
    if done.returncode:
        raise BaselineUnavailable(f"pygeoapi openapi generate failed: {done.stderr[-300:]}")
    env = os.environ | {"PYGEOAPI_CONFIG": str(config), "PYGEOAPI_OPENAPI": str(openapi)}
    command = [
        str(venv_bin("gunicorn")),
        *gunicorn_options(settings, port),
        "pygeoapi.flask_app:APP",
    ]
    log_path = workdir / "pygeoapi.log"
    with log_path.open("wb") as log:
        try:
            ready = f"/collections/{COLLECTION}?f=json"
            with running(command, env, ready, port, "pygeoapi", stderr=log) as url:
                yield url
        except RuntimeError as error:
            tail = log_path.read_text(errors="replace").strip().splitlines()[-5:]
            raise BaselineUnavailable(f"{error}: {' | '.join(tail)}") from error


def gunicorn_options(settings: Settings, port: int) -> list[str]:
    """What `fieldline serve` sets that bears on load (fieldline/server/wsgi.py), the access
    log included: both servers write one line per request to a discarded stdout."""
    return [
        f"--bind=127.0.0.1:{port}",
        f"--workers={settings.web_workers}",
        "--worker-class=gthread",
        f"--threads={settings.web_threads}",
        "--timeout=60",
        "--access-logfile=-",
        "--no-control-socket",
    ]


# --- requests -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Side:
    name: str
    base: str
    paths: list[str]  # one per bbox position, in the same order on both sides


def ours_paths(boxes: Sequence[str]) -> list[str]:
    return [f"/ogc/collections/{COLLECTION}/items?bbox={b}&limit={LIMIT}&f=json" for b in boxes]


def pygeoapi_paths(boxes: Sequence[str]) -> list[str]:
    # offset=0 is the default; naming it keeps pygeoapi from logging a warning per request.
    return [
        f"/collections/{COLLECTION}/items?bbox={b}&limit={LIMIT}&offset=0&f=json" for b in boxes
    ]


def feature_ids(http: requests.Session, url: str) -> tuple[set[str], int]:
    """The feature ids of one response, and its size in bytes."""
    response = http.get(url, timeout=60)
    response.raise_for_status()
    document = response.json()
    ids = {str(feature["id"]) for feature in document["features"]}
    if document["numberReturned"] != len(ids):
        raise RuntimeError(f"{url}: numberReturned {document['numberReturned']}, {len(ids)} ids")
    return ids, len(response.content)


def verify(
    conn: psycopg.Connection[Any], boxes: Sequence[str], sides: Sequence[Side]
) -> tuple[list[int], dict[str, float]]:
    """Features per box, the same on every side and in SQL; and the mean response size per
    side in kB."""
    counts: list[int] = []
    sizes: dict[str, list[int]] = {side.name: [] for side in sides}
    with requests.Session() as http:
        for index, box in enumerate(boxes):
            expected = count_in_bbox(conn, box)
            seen: dict[str, set[str]] = {}
            for side in sides:
                ids, size = feature_ids(http, side.base + side.paths[index])
                seen[side.name] = ids
                sizes[side.name].append(size)
                if len(ids) != expected:
                    raise RuntimeError(
                        f"bbox {box}: {side.name} returned {len(ids)}, SQL {expected}"
                    )
            if len({frozenset(ids) for ids in seen.values()}) > 1:
                raise RuntimeError(f"bbox {box}: the servers return different features")
            counts.append(expected)
    return counts, {name: statistics.fmean(s) / 1000 for name, s in sizes.items()}


# --- load ---------------------------------------------------------------------------------


@dataclass
class Load:
    """What one side's timed runs added up to."""

    requests: int = 0
    seconds: float = 0.0
    errors: int = 0
    client_cpu_s: float = 0.0  # CPU time the load client itself used
    busy_s: float | None = 0.0  # seconds of all cores busy, when /proc/stat tells
    latencies_ms: list[float] = field(default_factory=list)

    def __iadd__(self, other: Load) -> Load:
        self.requests += other.requests
        self.seconds += other.seconds
        self.errors += other.errors
        self.client_cpu_s += other.client_cpu_s
        mine, theirs = self.busy_s, other.busy_s
        self.busy_s = None if mine is None or theirs is None else mine + theirs
        self.latencies_ms += other.latencies_ms
        return self

    @property
    def rps(self) -> float:
        return self.requests / self.seconds

    def p(self, pct: int) -> float:
        return percentile(self.latencies_ms, pct)


# A load generator: side, requests in flight, seconds, a folder for its files.
Runner = Callable[[Side, int, float, Path], Load]

# Hands out the paths in rotation across the connections; reports the counts, then the
# latency histogram (microseconds, count) that wrk keeps, so runs can be merged exactly.
WRK_SCRIPT = """
local paths = {%(paths)s}
local n = 0
request = function()
  n = n %% #paths + 1
  return wrk.format("GET", paths[n])
end
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format("BENCH %%d %%d %%d %%d\\n", summary.requests, summary.duration,
    e.connect + e.read + e.write + e.timeout, e.status))
  for i = 1, #latency do
    local value, count = latency(i)
    io.write(string.format("LATENCY %%d %%d\\n", value, count))
  end
end
"""


def cpu_jiffies() -> tuple[float, float] | None:
    """Busy and total CPU time of the whole machine so far (Linux), else None."""
    try:
        first = Path("/proc/stat").read_text().split("\n", 1)[0].split()
    except OSError:
        return None
    user, nice, system, idle, iowait, irq, softirq, steal = map(float, first[1:9])
    total = user + nice + system + idle + iowait + irq + softirq + steal
    return total - idle - iowait, total


def children_cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def wrk_load(side: Side, concurrency: int, seconds: float, workdir: Path) -> Load:
    script = workdir / f"{side.name}.lua"
    paths = ", ".join(json.dumps(path) for path in side.paths)
    script.write_text(WRK_SCRIPT % {"paths": paths})
    # One thread: an event loop in C keeps every connection busy at a fraction of a core.
    command = ["wrk", "-t1", f"-c{concurrency}", f"-d{seconds:.0f}s", "--timeout=60s"]
    cpu = children_cpu_s()
    done = subprocess.run(
        [*command, "-s", str(script), side.base], capture_output=True, text=True, check=True
    )
    measured = Load(client_cpu_s=children_cpu_s() - cpu)
    for line in done.stdout.splitlines():
        kind, *values = line.split() or [""]
        if kind == "BENCH":
            count, duration_us, failures, bad_status = map(int, values)
            measured.requests, measured.seconds = count, duration_us / 1e6
            measured.errors = failures + bad_status
        elif kind == "LATENCY":
            value_us, times = map(int, values)
            measured.latencies_ms += [value_us / 1e3] * times
    return measured


def thread_load(side: Side, concurrency: int, seconds: float, _: Path) -> Load:
    """Closed loop from Python threads, one persistent session each."""
    latencies: list[float] = []  # list.append is atomic under the GIL
    failed: list[int] = []
    start = time.perf_counter()
    deadline = start + seconds

    def client(offset: int) -> None:
        with requests.Session() as http:
            n = offset
            while time.perf_counter() < deadline:
                url = side.base + side.paths[n % len(side.paths)]
                n += 1
                sent = time.perf_counter()
                response = http.get(url, timeout=60)
                _ = response.content
                latencies.append((time.perf_counter() - sent) * 1000)
                if not response.ok:
                    failed.append(response.status_code)

    cpu = time.process_time()
    threads = [threading.Thread(target=client, args=(i,)) for i in range(concurrency)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return Load(
        requests=len(latencies),
        seconds=time.perf_counter() - start,
        errors=len(failed),
        client_cpu_s=time.process_time() - cpu,
        latencies_ms=latencies,
    )


def have_wrk() -> bool:
    """wrk on the PATH, installed from Debian's packages when this runs as root there."""
    if shutil.which("wrk"):
        return True
    if os.geteuid() != 0 or not shutil.which("apt-get"):
        return False
    install = ["apt-get", "install", "-y", "-q", "wrk"]
    quiet: dict[str, Any] = {"capture_output": True, "check": False}
    env = os.environ | {"DEBIAN_FRONTEND": "noninteractive"}
    if subprocess.run(install, env=env, **quiet).returncode:
        subprocess.run(["apt-get", "update", "-q"], env=env, **quiet)
        subprocess.run(install, env=env, **quiet)
    return shutil.which("wrk") is not None


def client_name(use_wrk: bool) -> str:
    if not use_wrk:
        return "Python threads (requests.Session each)"
    done = subprocess.run(["wrk", "--version"], capture_output=True, text=True, check=False)
    words = (done.stdout or done.stderr).split()
    return f"wrk {words[1] if len(words) > 1 else '?'}, 1 thread"


def timed_slice(run: Runner, side: Side, concurrency: int, seconds: float, workdir: Path) -> Load:
    before = cpu_jiffies()
    measured = run(side, concurrency, seconds, workdir)
    after = cpu_jiffies()
    if before is None or after is None or after[1] == before[1]:
        measured.busy_s = None
    else:
        measured.busy_s = (after[0] - before[0]) / (after[1] - before[1]) * measured.seconds
    return measured


def measure(
    sides: Sequence[Side], args: argparse.Namespace, use_wrk: bool, workdir: Path
) -> dict[str, Load]:
    """Warm every side up, then time them in rounds, the order reversed each round (ours,
    baseline, baseline, ours, ...), so a neighbour's load or a drift of the machine falls on
    both sides alike."""
    run: Runner = wrk_load if use_wrk else thread_load
    for side in sides:
        run(side, args.concurrency, args.warmup, workdir)
    measured = {side.name: Load() for side in sides}
    for round_ in range(args.rounds):
        for side in sides if round_ % 2 == 0 else list(reversed(sides)):
            seconds = args.duration / args.rounds
            measured[side.name] += timed_slice(run, side, args.concurrency, seconds, workdir)
    for name, load in measured.items():
        if load.errors:
            raise RuntimeError(f"{name}: {load.errors} failed requests under load")
    return measured


# --- report -------------------------------------------------------------------------------


def report(ours: Load, baseline: Load | None) -> float | None:
    """Print the figures; returns the throughput ratio (None without a baseline)."""

    def line(metric: str, mine: float, theirs: float | None, fmt: Any) -> float | None:
        if theirs is None:
            print(f"{NAME}_{metric}: ours {fmt(mine)}, baseline n/a, ratio n/a", flush=True)
            return None
        ratio = mine / theirs
        print(
            f"{NAME}_{metric}: ours {fmt(mine)}, baseline {fmt(theirs)}, ratio {ratio:.2f}",
            flush=True,
        )
        return ratio

    rps = line("rps", ours.rps, baseline.rps if baseline else None, lambda v: f"{v:.1f}")
    line("p50_ms", ours.p(50), baseline.p(50) if baseline else None, ms)
    line("p95_ms", ours.p(95), baseline.p(95) if baseline else None, ms)
    for name, measured in (("ours", ours), ("baseline", baseline)):
        if measured is not None:
            busy = measured.busy_s
            machine = "" if busy is None else f"; all cores {busy / measured.seconds:.0%} busy"
            print(
                f"load ({name}): {measured.requests:,} requests in {measured.seconds:.1f} s, "
                f"the client using {measured.client_cpu_s / measured.seconds:.2f} cores{machine}",
                flush=True,
            )
    return rps


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pipes", type=int, default=1_000_000)
    parser.add_argument(
        "--reload", action="store_true", help=f"rebuild {BENCH_DB} even if it holds --pipes pipes"
    )
    parser.add_argument("--concurrency", type=int, default=8, help="requests in flight")
    parser.add_argument("--warmup", type=float, default=3.0, metavar="SECONDS")
    parser.add_argument(
        "--duration", type=float, default=20.0, metavar="SECONDS", help="timed, per server"
    )
    parser.add_argument(
        "--rounds", type=int, default=2, help="slices the timed duration is run in, alternating"
    )
    parser.add_argument(
        "--client", choices=("auto", "wrk", "threads"), default="auto", help="load generator"
    )
    args = parser.parse_args(argv)
    if args.rounds < 1 or args.duration < args.rounds or args.concurrency < 1:
        parser.error("need --rounds >= 1, --duration >= --rounds seconds, --concurrency >= 1")
    return args


def pick_boxes(conn: psycopg.Connection[Any], pipes: int) -> tuple[Extent, list[str]]:
    extent = pipe_extent(conn)
    size = bbox_size(conn, extent, pipes, BBOX_TARGET, BBOX_POSITIONS)
    return extent, bbox_positions(conn, extent, size, BBOX_ACCEPT, BBOX_POSITIONS)


def benchmark(args: argparse.Namespace, workdir: Path) -> str:
    """Run both sides; returns the goal line."""
    env = os.environ | {"FIELDLINE_DATABASE_URL": BENCH_URL, "FIELDLINE_LOG_LEVEL": "WARNING"}
    settings = load_settings(database_url=BENCH_URL, log_level="WARNING")
    use_wrk = args.client != "threads" and have_wrk()
    if args.client == "wrk" and not use_wrk:
        raise SystemExit("wrk is not installed and cannot be installed here")
    version = unavailable = None
    try:
        version = install_pygeoapi()
    except BaselineUnavailable as error:
        unavailable = str(error)
    with psycopg.connect(BENCH_DSN, autocommit=True) as conn, contextlib.ExitStack() as stack:
        pipes = count_pipes(conn)
        extent, boxes = pick_boxes(conn, pipes)
        sides = [Side("ours", stack.enter_context(running_fieldline(env)), ours_paths(boxes))]
        if unavailable is None:
            try:
                base = stack.enter_context(running_pygeoapi(settings, extent, workdir))
                sides.append(Side("baseline", base, pygeoapi_paths(boxes)))
            except BaselineUnavailable as error:
                unavailable = str(error)
        if unavailable is not None:
            print(
                f"baseline: pygeoapi cannot run here, measuring Fieldline alone: {unavailable}",
                flush=True,
            )
        counts, sizes = verify(conn, boxes, sides)
        print_header(args, settings, pipes, counts, sizes, client_name(use_wrk), version)
        measured = measure(sides, args, use_wrk, workdir)
    ratio = report(measured["ours"], measured.get("baseline"))
    goal = f"goal: at least {GOAL_RATIO:g}x pygeoapi's throughput"
    if ratio is None:
        return f"{goal}: not measured (no baseline)"
    return f"{goal}: {'met' if ratio >= GOAL_RATIO else 'NOT met'}"


def print_header(
    args: argparse.Namespace,
    settings: Settings,
    pipes: int,
    counts: Sequence[int],
    sizes: dict[str, float],
    client: str,
    version: str | None,
) -> None:
    gunicorn = importlib.metadata.version("gunicorn")
    size = ", ".join(f"{name} {kb:.0f} kB" for name, kb in sizes.items())
    same = ", the same ids from both servers" if len(sizes) > 1 else ""
    lines = (
        f"machine: {os.cpu_count()} cores, shared by the load client, both servers and "
        "PostgreSQL (a server's throughput is what the cores left by the others allow)",
        f"data: {pipes:,} pipes; features per response {statistics.fmean(counts):.0f} mean "
        f"({min(counts)}-{max(counts)}: every pipe in its box{same}) over"
        f" {len(counts)} bbox positions, limit={LIMIT}, f=json; response size {size}",
        f"load: {args.concurrency} requests in flight, closed loop, client {client}; warm-up "
        f"{args.warmup:g} s, then {args.duration:g} s timed per server in {args.rounds} "
        "rounds, alternating (ours, baseline, baseline, ours, ...)",
        f"servers: gunicorn {gunicorn}, {settings.web_workers} workers x "
        f"{settings.web_threads} threads (gthread) each; baseline pygeoapi "
        f"{version or 'not installed'} (PostgreSQLProvider)",
        "ratios are ours/baseline: rps higher is better, p50/p95 ms lower is better",
    )
    for line in lines:
        print(f"{NAME} {line}", flush=True)


def main(argv: Sequence[str] | None = None) -> None:
    exit_on_sigterm()
    args = parse_args(argv)
    start = time.perf_counter()
    prepare_database(args.pipes, reuse=not args.reload)
    with tempfile.TemporaryDirectory(prefix="bench-ogc-") as workdir:
        goal = benchmark(args, Path(workdir))
    print(f"total: {time.perf_counter() - start:.1f} s", flush=True)
    print(goal, flush=True)


if __name__ == "__main__":
    main()
