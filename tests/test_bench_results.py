"""`make bench` collects the benchmarks' result lines into bench/RESULTS.md: the line parser on
the shapes the benchmarks print, and the runner on two small stand-in benchmarks."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import pytest

RUN_ALL = Path(__file__).resolve().parent.parent / "bench" / "run_all.py"


@pytest.fixture(scope="module")
def run_all() -> ModuleType:
    spec = importlib.util.spec_from_file_location("bench_run_all", RUN_ALL)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        (
            "pipes_bbox_p50_ms: ours 12.3, baseline 10.1, ratio 1.22",
            ("pipes_bbox_p50_ms", "12.3", "10.1", "1.22", "ms", ""),
        ),
        (
            "fixes_qos1_2workers_msgs_per_s: ours 9,876, baseline 20,000 (bare subscriber), "
            "ratio 0.49",
            ("fixes_qos1_2workers_msgs_per_s", "9,876", "20,000", "0.49", "per second",
             "bare subscriber"),
        ),
        (
            "plan_p1_arrival_max_min: ours 31.0, baseline 44.5, ratio 0.70 (12 urgent tasks)",
            ("plan_p1_arrival_max_min", "31.0", "44.5", "0.70", "minutes", "12 urgent tasks"),
        ),
        (
            "meters daily consumption 100000x30: ours 4.20 s, baseline 9.80 s, ratio 0.43 "
            "(same days: True)",
            ("meters daily consumption 100000x30", "4.20", "9.80", "0.43", "s",
             "same days: True"),
        ),
        (
            "isolation_trace_p95_ms: ours 1.2, baseline -, ratio -",
            ("isolation_trace_p95_ms", "1.2", "-", "-", "ms", ""),
        ),
        (
            "ogc_items_bbox_500_rps: ours 120.5, baseline n/a, ratio n/a",
            ("ogc_items_bbox_500_rps", "120.5", "n/a", "n/a", "requests per second", ""),
        ),
        ("isolation_build_ms: ours 840, baseline 61234, ratio 0.014",
         ("isolation_build_ms", "840", "61234", "0.014", "ms", "")),
    ],
)  # fmt: skip
def test_result_lines_are_read_as_the_benchmarks_print_them(
    run_all: ModuleType, line: str, expected: tuple[str, ...]
) -> None:
    result = run_all.parse_result(line + "\n")
    assert result is not None
    assert (result.name, result.ours, result.baseline, result.ratio, result.unit, result.note) == (
        expected
    )


@pytest.mark.parametrize(
    "line",
    [
        "goal: p95 under 50 ms: met",
        "  bare subscriber, QoS 1: 100,000 received, 25,000/s",
        "ours: 200 traces, p50 1.1 ms, p95 2.0 ms, max 3.0 ms; valves to close median 4",
        "baseline: one pass 61.2 s = 61234 ms per trace per call",
        "total: 12.0 s",
    ],
)
def test_other_lines_are_not_results(run_all: ModuleType, line: str) -> None:
    assert run_all.parse_result(line) is None


def test_the_runner_passes_output_through_and_writes_results(
    run_all: ModuleType, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    first = tmp_path / "bench_first.py"
    first.write_text(
        '"""Map openings against a plain page.\n\nMore text."""\n'
        'print("load: 10 pipes in 0.1 s")\n'
        'print("map_open_ms: ours 800, baseline 1,600, ratio 0.50")\n'
        'print("  detail line | with a bar")\n'
        'print("goal: under 1 s: met")\n'
    )
    failing = tmp_path / "bench_failing.py"
    failing.write_text(
        'import sys\nprint("rows_per_s: ours 5,000, baseline 10,000 (bare subscriber), '
        'ratio 0.50")\nsys.exit(3)\n'
    )
    results = tmp_path / "RESULTS.md"

    status = run_all.main(["--results", str(results), str(first), str(failing)])

    assert status == 1  # one benchmark failed
    shown = capsys.readouterr().out
    assert "== bench_first.py" in shown
    assert "  detail line | with a bar" in shown  # passed through as printed
    text = results.read_text()
    assert "| bench_first.py | map_open_ms | 800 | 1,600 | 0.50 | ms |  |" in text
    assert (
        "| bench_failing.py | rows_per_s | 5,000 | 10,000 | 0.50 | per second "
        "| bare subscriber |" in text
    )
    assert "### bench_failing.py (failed, exit status 3)" in text
    assert "Map openings against a plain page." in text
    assert "- goal: under 1 s: met" in text
    for key in ("CPU", "cores", "memory", "OS", "PostgreSQL", "Redis", "Mosquitto"):
        assert f"- {key}: " in text
    assert "detail line" not in text  # only results and notes are kept
