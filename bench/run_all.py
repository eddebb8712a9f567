"""`make bench`: run every benchmark in this folder, one after another, and write the figures to
bench/RESULTS.md.

Each benchmark prints `name: ours X, baseline Y, ratio Z` lines (a note in brackets may follow
the baseline or the ratio); this runner passes every line through as it comes, collects those
lines and the benchmark's `goal:` lines, and writes them with a description of the machine to
RESULTS.md. It exits non-zero if any benchmark failed to run. What the benchmarks measure is
theirs: nothing here changes their arguments.

Usage: python bench/run_all.py [--results PATH] [SCRIPT ...]   (default: every bench_*.py)
"""

from __future__ import annotations

import argparse
import ast
import os
import platform
import re
import subprocess
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "RESULTS.md"

RESULT_LINE = re.compile(
    r"^\s*(?P<name>[^:]+?):\s+ours\s+(?P<ours>.+?),\s+baseline\s+(?P<baseline>.+?),"
    r"\s+ratio\s+(?P<ratio>\S+?)(?:\s+\((?P<note>.*)\))?\s*$"
)
NOTE_LINE = re.compile(r"^\s*(goals?\b.*|note:.*)$", re.IGNORECASE)
BRACKETED = re.compile(r"^(?P<value>.*?)\s+\((?P<note>.*)\)$")
# A unit written after the figure ("1.23 s"), or the last part of the name ("..._p95_ms").
VALUE_UNIT = re.compile(r"^(?P<value>[-+0-9.,eE]+)\s+(?P<unit>\S+)$")
NAME_UNITS = {
    "ms": "ms",
    "s": "s",
    "h": "hours",
    "min": "minutes",
    "per_s": "per second",
    "rps": "requests per second",
    "vs_1": "ratio",
    "pct": "%",
    "bytes": "bytes",
}


@dataclass(frozen=True)
class Result:
    name: str
    ours: str
    baseline: str
    ratio: str
    unit: str
    note: str


@dataclass
class Run:
    """One benchmark's run: its file, what it is about, its results and notes."""

    script: str
    about: str
    returncode: int = 0
    results: list[Result] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


def unit_of(name: str) -> str:
    for suffix, unit in sorted(NAME_UNITS.items(), key=lambda item: -len(item[0])):
        if name == suffix or name.endswith("_" + suffix):
            return unit
    return ""


def parse_result(line: str) -> Result | None:
    """A `name: ours X, baseline Y, ratio Z` line, or None for any other line."""
    found = RESULT_LINE.match(line)
    if found is None:
        return None
    name, ours, baseline = found["name"].strip(), found["ours"].strip(), found["baseline"].strip()
    notes = [found["note"]] if found["note"] else []
    bracketed = BRACKETED.match(baseline)
    if bracketed is not None:
        baseline = bracketed["value"]
        notes.insert(0, bracketed["note"])
    unit = unit_of(name)
    values = []
    for value in (ours, baseline):
        with_unit = VALUE_UNIT.match(value)
        if with_unit is not None:
            value, unit = with_unit["value"], unit or with_unit["unit"]
        values.append(value)
    return Result(name, values[0], values[1], found["ratio"], unit, "; ".join(notes))


def about(script: Path) -> str:
    """The first line of the benchmark's docstring."""
    try:
        docstring = ast.get_docstring(ast.parse(script.read_text()))
    except (OSError, SyntaxError):
        return ""
    return docstring.strip().splitlines()[0] if docstring else ""


def run(script: Path) -> Run:
    """Run one benchmark, its output passed through line by line as it comes."""
    done = Run(script.name, about(script))
    print(f"== {script.name}", flush=True)
    with subprocess.Popen(
        [sys.executable, str(script)], stdout=subprocess.PIPE, text=True, bufsize=1
    ) as process:
        assert process.stdout is not None
        for line in process.stdout:
            sys.stdout.write(line)
            sys.stdout.flush()
            result = parse_result(line)
            if result is not None:
                done.results.append(result)
            elif NOTE_LINE.match(line):
                done.notes.append(line.strip())
    done.returncode = process.returncode
    return done


# -- the machine ------------------------------------------------------------------------------


def _first(path: str, key: str) -> str:
    try:
        for line in Path(path).read_text().splitlines():
            if line.startswith(key):
                return line.split(":", 1)[1].strip() if ":" in line else line.split("=", 1)[1]
    except OSError:
        pass
    return ""


def _command(*command: str) -> str:
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=10, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return ""
    return (
        (done.stdout or done.stderr).strip().splitlines()[0] if done.stdout or done.stderr else ""
    )


def _postgresql() -> str:
    try:
        import psycopg

        url = os.environ.get("FIELDLINE_BENCH_ADMIN_DSN", "postgresql://localhost/postgres")
        with psycopg.connect(url, connect_timeout=5) as connection:
            row = connection.execute("SHOW server_version").fetchone()
        return f"PostgreSQL {row[0]}" if row else ""
    except Exception:  # a description: an unreachable server is only reported
        return ""


def _redis() -> str:
    try:
        import redis

        url = os.environ.get("FIELDLINE_REDIS_URL", "redis://localhost:6379/0")
        client = redis.Redis.from_url(url, socket_timeout=5)
        try:
            return f"Redis {client.info('server')['redis_version']}"
        finally:
            client.close()
    except Exception:  # as above
        return ""


def machine() -> dict[str, str]:
    memory_kb = _first("/proc/meminfo", "MemTotal").split()
    memory = f"{int(memory_kb[0]) / 1024**2:.1f} GiB" if memory_kb else ""
    os_name = _first("/etc/os-release", "PRETTY_NAME").strip('"') or platform.platform()
    return {
        "CPU": _first("/proc/cpuinfo", "model name") or platform.processor() or "unknown",
        "cores": str(os.cpu_count() or "unknown"),
        "memory": memory or "unknown",
        "OS": f"{os_name} (kernel {platform.release()})",
        "Python": platform.python_version(),
        "PostgreSQL": _postgresql() or "not reachable",
        "Redis": _redis() or "not reachable",
        "Mosquitto": _command("mosquitto", "-h") or "not found",
    }


# -- RESULTS.md -------------------------------------------------------------------------------


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def render(runs: Sequence[Run], host: dict[str, str], at: datetime) -> str:
    lines = [
        "# Benchmark results",
        "",
        f"Written by `make bench` (bench/run_all.py) on {at:%Y-%m-%d %H:%M} UTC. Ratios are "
        "ours / baseline as each benchmark prints them: below 1 is better for times, above 1 "
        "for rates. Figures from a machine doing other work as well are not comparable.",
        "",
        "## Machine",
        "",
        *(f"- {key}: {value}" for key, value in host.items()),
        "",
        "## Results",
        "",
        "| benchmark | name | ours | baseline | ratio | unit | note |",
        "|---|---|---|---|---|---|---|",
    ]
    for done in runs:
        for r in done.results:
            cells = (done.script, r.name, r.ours, r.baseline, r.ratio, r.unit, r.note)
            lines.append("| " + " | ".join(_cell(cell) for cell in cells) + " |")
    lines += ["", "## The benchmarks", ""]
    for done in runs:
        status = "" if done.returncode == 0 else f" (failed, exit status {done.returncode})"
        lines.append(f"### {done.script}{status}")
        lines.append("")
        if done.about:
            lines += [done.about, ""]
        if not done.results:
            lines += ["No result lines.", ""]
        lines += [f"- {note}" for note in done.notes]
        if done.notes:
            lines.append("")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--results", type=Path, default=RESULTS, help="where to write")
    parser.add_argument("scripts", nargs="*", type=Path, help="default: every bench_*.py here")
    args = parser.parse_args(argv)
    scripts = args.scripts or sorted(HERE.glob("bench_*.py"))
    runs = [run(script) for script in scripts]
    args.results.write_text(render(runs, machine(), datetime.now(UTC)) + "\n")
    print(f"results written to {args.results}", flush=True)
    failed = [done.script for done in runs if done.returncode]
    if failed:
        print("failed: " + ", ".join(failed), file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
