"""The dispatcher's map in a browser, on a network of 100,000 pipes, against the page it would
be without vector tiles.

Builds a scratch database (`fieldline_bench_map`) of synthetic pipes over a Helsinki-sized
area (the generator of bench/common.py; it makes pipes only), starts `fieldline serve` on it
and drives Debian's Chromium headless through Playwright at 1280x800, a new browser context
(empty cache) for every repetition. Times are taken inside the page with performance.now():

  map_first_draw_ms        navigation start to the map's first `idle` with the pipes'
                           source loaded and pipes on screen
  map_pan_zoom_redraw_ms   median over a few panBy / zoomTo steps (no animation) from the
                           call to the next `idle`

Ours is the real page (`/map`), drawing the pipes from `/tiles/pipes/{z}/{x}/{y}.mvt`. The
baseline (bench/map_baseline.html, same browser, same view) reads every pipe as GeoJSON from
`GET /api/v1/assets/pipes`, a page of `max_page_size` at a time, and draws them as one GeoJSON
source with the same style. Both are timed on two views: the whole network (the page's own
opening fit, the worst case for the tiles) and one city district (the page opening on the
district's box; the baseline still reads every pipe, as such a page would).

Also printed: what was loaded (tiles, API pages, bytes), the pipes on screen, when the last
tile arrived, and each opening tile's generation time on the server, asked one at a time.
Below zoom 12 the pipes' tiles are generalised (fieldline/server/map/services.py): the pipes of
one look travel as one feature without an id, so there the page counts such features (one per
look and tile) instead of pipes.

Usage: python bench/bench_map.py [--reuse] [--pipes N] [--repetitions N]

`--reuse` keeps the scratch database when it already holds the requested number of pipes.
The database is left in place afterwards; the server is always stopped.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psycopg
import requests
from common import (
    AREA,
    DISTRICT_GRID,
    DISTRICTS,
    INSERT_PIPES,
    SECONDARY_INDEXES,
    count_pipes,
    create_database,
    exit_on_sigterm,
    load_parameters,
    ms,
    running_fieldline,
)
from playwright.sync_api import Browser, BrowserContext, Page, Request, Route, sync_playwright
from psycopg import sql

from fieldline.gis.db import upgrade
from fieldline.settings import load_settings

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
BASELINE_PAGE = HERE / "map_baseline.html"
# The MapLibre build the map's bundle is made from (web/package.json pins the version).
MAPLIBRE = ROOT / "web" / "node_modules" / "maplibre-gl" / "dist" / "maplibre-gl.js"
BENCH_DB = "fieldline_bench_map"
BENCH_DSN = f"postgresql://localhost/{BENCH_DB}"
BENCH_URL = f"postgresql+psycopg://localhost/{BENCH_DB}"
CHROMIUM = "/usr/bin/chromium"
VIEWPORT = {"width": 1280, "height": 800}
DISTRICT = "Pasila"
GOAL_FIRST_DRAW_MS = 2000.0
GOAL_REDRAW_MS = 300.0
WAIT_MS = 120_000
# Steps from the opening view: ("pan", [dx, dy] pixels) or ("zoom", levels above the opening).
STEPS: list[tuple[str, Any]] = [
    ("pan", [320, 0]),
    ("pan", [0, 200]),
    ("zoom", 1),
    ("pan", [-320, 0]),
    ("zoom", 2),
    ("pan", [0, -200]),
    ("zoom", 0),
]


# --- scratch database ---------------------------------------------------------------------


def existing_pipes() -> int | None:
    try:
        with psycopg.connect(BENCH_DSN) as conn:
            return count_pipes(conn)
    except psycopg.Error:
        return None


def load_pipes(count: int) -> None:
    """The pipes of bench/common.py, with the secondary indexes built after the insert."""
    create_database(BENCH_DB)
    with psycopg.connect(BENCH_DSN) as conn:
        indexes = conn.execute(SECONDARY_INDEXES).fetchall()
        with conn.transaction():
            for index, _ in indexes:
                conn.execute(sql.SQL("DROP INDEX {}").format(sql.Identifier(index)))
            conn.execute(INSERT_PIPES, load_parameters(count))
            for _, definition in indexes:
                conn.execute(definition)
    with psycopg.connect(BENCH_DSN, autocommit=True) as conn:
        conn.execute("VACUUM ANALYZE")


def prepare_database(count: int, reuse: bool) -> None:
    if reuse and existing_pipes() == count:
        upgrade(BENCH_URL)
        print(f"load: skipped, {BENCH_DB} already holds {count:,} pipes (reused)", flush=True)
        return
    start = time.perf_counter()
    load_pipes(count)
    print(f"load: {count:,} pipes in {time.perf_counter() - start:.1f} s", flush=True)


def district_box(name: str) -> list[float]:
    """The district's cell of the generator's grid (longitude first)."""
    index = DISTRICTS.index(name)
    column, row = index % DISTRICT_GRID[0], index // DISTRICT_GRID[0]
    width = (AREA[2] - AREA[0]) / DISTRICT_GRID[0]
    height = (AREA[3] - AREA[1]) / DISTRICT_GRID[1]
    west, south = AREA[0] + column * width, AREA[1] + row * height
    return [west, south, west + width, south + height]


# --- in the page --------------------------------------------------------------------------

# Runs before the map page's scripts: catches the test handle as the page sets it and notes
# the first `idle` with the pipes' source loaded and pipes on screen.
OURS_PROBE = """(() => {
  const bench = (window.__bench = {});
  let handle;
  Object.defineProperty(window, 'fieldlineMap', {
    configurable: true,
    get() { return handle; },
    set(value) {
      handle = value;
      const map = value.map;
      map.on('load', () => { bench.loadMs = performance.now(); });
      const drawn = () => {
        const now = performance.now();
        if (!map.isSourceLoaded('pipes')) return;
        const rendered = map.queryRenderedFeatures({layers: ['pipes']});
        if (rendered.length === 0) return;
        bench.drawnMs = now;
        const ids = rendered.map((feature) => feature.properties.id);
        bench.features = new Set(ids.filter((id) => id !== undefined)).size;
        bench.generalised = ids.filter((id) => id === undefined).length;
        map.off('idle', drawn);
      };
      map.on('idle', drawn);
    },
  });
})();"""

DRAWN = "() => window.__bench && (window.__bench.drawnMs !== undefined || !!window.__bench.error)"

CAMERA = """() => {
  const map = window.fieldlineMap ? window.fieldlineMap.map : window.benchMap;
  const centre = map.getCenter();
  return {center: [centre.lng, centre.lat], zoom: map.getZoom()};
}"""

# Each step from an idle map: the call, then the next `idle`; pipes must be on screen after.
REDRAW = """async (steps) => {
  const map = window.fieldlineMap ? window.fieldlineMap.map : window.benchMap;
  const opening = map.getZoom();
  const results = [];
  for (const [kind, value] of steps) {
    await new Promise((resolve) => setTimeout(resolve, 200));
    const idle = new Promise((resolve) => map.once('idle', () => resolve(performance.now())));
    const start = performance.now();
    if (kind === 'pan') map.panBy(value, {duration: 0});
    else map.zoomTo(opening + value, {duration: 0});
    const end = await idle;
    const ids = map.queryRenderedFeatures({layers: ['pipes']}).map((f) => f.properties.id);
    results.push({kind, value, ms: end - start, zoom: map.getZoom(),
                  features: new Set(ids.filter((id) => id !== undefined)).size,
                  generalised: ids.filter((id) => id === undefined).length});
  }
  return results;
}"""


# --- one opening of a page ----------------------------------------------------------------


@dataclass
class Opening:
    first_draw_ms: float
    load_ms: float  # the map's `load` event (style and script ready)
    features: int  # distinct pipes on screen at first draw
    generalised: int  # features without an id on screen (pipes merged by look), per tile
    camera: dict[str, Any]
    requests: int  # data requests (tiles or API pages) until drawn
    empty: int  # of which 204 (empty tiles)
    body_bytes: int
    last_response_ms: float  # when the last of them had arrived, from navigation start
    loaded: int | None = None  # baseline: pipes read from the API
    fetched_ms: float | None = None  # baseline: all pages read
    urls: list[str] = field(default_factory=list)
    redraws: list[dict[str, Any]] = field(default_factory=list)


def data_requests(finished: Sequence[Request], marker: str) -> list[Request]:
    return [request for request in finished if marker in request.url]


def open_page(
    browser: Browser,
    url: str,
    marker: str,
    prepare: Callable[[BrowserContext], None],
    init_script: str | None,
    steps: list[tuple[str, Any]],
) -> Opening:
    """Open `url` in a fresh context; `marker` picks the data requests out of the network."""
    context = browser.new_context(viewport=VIEWPORT)  # type: ignore[arg-type]
    try:
        prepare(context)
        if init_script:
            context.add_init_script(init_script)
        finished: list[Request] = []
        context.on("requestfinished", lambda request: finished.append(request))
        errors: list[str] = []
        page = context.new_page()
        page.on("pageerror", lambda error: errors.append(str(error)))
        page.goto(url)
        page.wait_for_function(DRAWN, timeout=WAIT_MS)
        bench = page.evaluate("window.__bench")
        if bench.get("error") or errors:
            raise RuntimeError(f"{url}: {bench.get('error') or errors}")
        drawn = list(data_requests(finished, marker))
        camera = page.evaluate(CAMERA)
        redraws = page.evaluate(REDRAW, steps) if steps else []
        return summarize(page, bench, drawn, camera, redraws)
    finally:
        context.close()


def summarize(
    page: Page,
    bench: dict[str, Any],
    drawn: list[Request],
    camera: dict[str, Any],
    redraws: list[dict[str, Any]],
) -> Opening:
    origin = page.evaluate("performance.timeOrigin")
    body = 0
    empty = 0
    last = 0.0
    for request in drawn:
        response = request.response()
        if response is not None and response.status == 204:
            empty += 1
        body += request.sizes()["responseBodySize"]
        timing = request.timing
        last = max(last, timing["startTime"] + timing["responseEnd"] - origin)
    return Opening(
        first_draw_ms=bench["drawnMs"],
        load_ms=bench.get("loadMs", float("nan")),
        features=bench["features"],
        generalised=bench.get("generalised", 0),
        camera=camera,
        requests=len(drawn),
        empty=empty,
        body_bytes=body,
        last_response_ms=last,
        loaded=bench.get("loaded"),
        fetched_ms=bench.get("fetchedMs"),
        urls=[request.url for request in drawn],
        redraws=redraws,
    )


# --- the two sides ------------------------------------------------------------------------


@dataclass(frozen=True)
class View:
    name: str
    box: list[float] | None  # the box the map page opens on; None: the network's own fit


def serve_baseline(context: BrowserContext) -> None:
    # Patterns match the whole URL, query included.
    context.route(
        re.compile(r"/bench/map_baseline\.html(\?|$)"), lambda r: r.fulfill(path=BASELINE_PAGE)
    )
    context.route(re.compile(r"/bench/maplibre-gl\.js$"), lambda r: r.fulfill(path=MAPLIBRE))


def opening_on(box: list[float] | None) -> Callable[[BrowserContext], None]:
    """Serve the map page as it is, or with `box` for the network's extent it opens on.
    Both sides register the same routes, so both run with request interception on."""

    def replace_extent(route: Route) -> None:
        response = route.fetch()
        html = re.sub(r'"extent":\s*\[[^\]]*\]', f'"extent": {json.dumps(box)}', response.text())
        route.fulfill(response=response, body=html)

    def prepare(context: BrowserContext) -> None:
        serve_baseline(context)
        if box is not None:
            context.route(re.compile(r"/map$"), replace_extent)

    return prepare


def ours(browser: Browser, base: str, view: View, steps: list[tuple[str, Any]]) -> Opening:
    return open_page(
        browser, base + "/map", "/tiles/pipes/", opening_on(view.box), OURS_PROBE, steps
    )


def baseline(
    browser: Browser,
    base: str,
    camera: dict[str, Any],
    limit: int,
    steps: list[tuple[str, Any]],
) -> Opening:
    centre = ",".join(f"{value:.7f}" for value in camera["center"])
    url = f"{base}/bench/map_baseline.html?center={centre}&zoom={camera['zoom']:.4f}&limit={limit}"
    return open_page(browser, url, "/api/v1/assets/pipes", opening_on(None), None, steps)


# --- report -------------------------------------------------------------------------------


def median(values: Sequence[float]) -> float:
    return statistics.median(values)


def redraw_median(opening: Opening) -> float:
    return median([step["ms"] for step in opening.redraws])


def line(name: str, mine: float, theirs: float) -> None:
    print(f"{name}: ours {ms(mine)}, baseline {ms(theirs)}, ratio {mine / theirs:.2f}", flush=True)


def on_screen(pipes: int, generalised: int) -> str:
    return f"{pipes:,} pipes" if not generalised else f"{generalised:,} generalised features"


def describe(side: str, runs: Sequence[Opening], unit: str) -> None:
    first = runs[0]
    loaded = f", {first.loaded:,} pipes read" if first.loaded is not None else ""
    fetched = (
        f", all pages read at {ms(median([r.fetched_ms or 0.0 for r in runs]))} ms"
        if first.fetched_ms is not None
        else ""
    )
    print(
        f"  {side}: {first.requests} {unit} ({first.empty} empty), "
        f"{first.body_bytes / 1e6:.2f} MB{loaded}; map load at "
        f"{ms(median([r.load_ms for r in runs]))} ms, last response at "
        f"{ms(median([r.last_response_ms for r in runs]))} ms{fetched}, drawn at "
        f"{ms(median([r.first_draw_ms for r in runs]))} ms; on screen "
        f"{on_screen(first.features, first.generalised)}; zoom {first.camera['zoom']:.2f}",
        flush=True,
    )
    steps = zip(*(run.redraws for run in runs), strict=True)
    detail = ", ".join(
        f"{step[0]['kind']} {step[0]['value']} {ms(median([s['ms'] for s in step]))} ms "
        f"({on_screen(step[0]['features'], step[0].get('generalised', 0))})"
        for step in steps
    )
    print(f"    redraw steps (median each): {detail}", flush=True)


def profile_tiles(urls: Sequence[str]) -> None:
    """Each opening tile asked again, one at a time: its generation time on the server."""
    with requests.Session() as http:
        times = []
        sizes = []
        for url in urls:
            start = time.perf_counter()
            response = http.get(url)
            times.append((time.perf_counter() - start) * 1000)
            sizes.append(len(response.content))
    print(
        f"  server, opening tiles one at a time: {len(urls)} tiles, {ms(sum(times))} ms in all, "
        f"{ms(statistics.fmean(times))} ms mean, {ms(max(times))} ms slowest, "
        f"{max(sizes) / 1e3:.0f} kB largest",
        flush=True,
    )


def run_view(
    browser: Browser, base: str, view: View, repetitions: int, limit: int
) -> tuple[float, float, float, float]:
    # A first opening of each side warms the server and the database's cache.
    warm = ours(browser, base, view, [])
    baseline(browser, base, warm.camera, limit, [])
    mine: list[Opening] = []
    theirs: list[Opening] = []
    for n in range(repetitions):
        # Which side goes first alternates, so neither always meets the other's leftovers.
        if n % 2:
            theirs.append(baseline(browser, base, warm.camera, limit, STEPS))
            mine.append(ours(browser, base, view, STEPS))
        else:
            mine.append(ours(browser, base, view, STEPS))
            theirs.append(baseline(browser, base, warm.camera, limit, STEPS))
    print(f"{view.name} ({repetitions} repetitions, medians):", flush=True)
    describe("ours", mine, "pipe tiles")
    describe("baseline", theirs, "API pages")
    profile_tiles(warm.urls)
    return (
        median([r.first_draw_ms for r in mine]),
        median([r.first_draw_ms for r in theirs]),
        median([redraw_median(r) for r in mine]),
        median([redraw_median(r) for r in theirs]),
    )


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--reuse", action="store_true", help=f"keep {BENCH_DB} if it already holds --pipes pipes"
    )
    parser.add_argument("--pipes", type=int, default=100_000)
    parser.add_argument("--repetitions", type=int, default=5)
    return parser.parse_args(argv)


def benchmark(args: argparse.Namespace) -> None:
    env = os.environ | {"FIELDLINE_DATABASE_URL": BENCH_URL, "FIELDLINE_LOG_LEVEL": "WARNING"}
    settings = load_settings(database_url=BENCH_URL, log_level="WARNING")
    executable = shutil.which("chromium") or CHROMIUM
    with psycopg.connect(BENCH_DSN) as conn:
        pipes = count_pipes(conn)
    views = [View("whole_network", None), View(f"district_{DISTRICT}", district_box(DISTRICT))]
    results = {}
    with running_fieldline(env) as base, sync_playwright() as driver:
        browser = driver.chromium.launch(executable_path=executable, headless=True)
        try:
            print(
                f"machine: {os.cpu_count()} cores; pipes loaded: {pipes:,}; browser: Chromium "
                f"{browser.version} headless, {VIEWPORT['width']}x{VIEWPORT['height']}; server: "
                f"{settings.web_workers} workers x {settings.web_threads} threads; API page size "
                f"{settings.max_page_size:,}",
                flush=True,
            )
            for view in views:
                results[view.name] = run_view(
                    browser, base, view, args.repetitions, settings.max_page_size
                )
        finally:
            browser.close()
    for name, (first_ours, first_base, redraw_ours, redraw_base) in results.items():
        suffix = "" if name == "whole_network" else f"_{name}"
        line(f"map_first_draw_ms{suffix}", first_ours, first_base)
        line(f"map_pan_zoom_redraw_ms{suffix}", redraw_ours, redraw_base)
    for name, (first_ours, _, redraw_ours, _) in results.items():
        print(
            f"goal ({name}): first draw under {GOAL_FIRST_DRAW_MS:.0f} ms: {ms(first_ours)} "
            f"{'met' if first_ours < GOAL_FIRST_DRAW_MS else 'NOT met'}; pan/zoom redraw under "
            f"{GOAL_REDRAW_MS:.0f} ms: {ms(redraw_ours)} "
            f"{'met' if redraw_ours < GOAL_REDRAW_MS else 'NOT met'}",
            flush=True,
        )


def main(argv: Sequence[str] | None = None) -> None:
    exit_on_sigterm()
    args = parse_args(argv)
    if not MAPLIBRE.is_file():  # `make bench` installs it; run alone, say how
        sys.exit(f"{MAPLIBRE} is missing (the baseline's MapLibre): run `cd web && npm ci`")
    start = time.perf_counter()
    prepare_database(args.pipes, args.reuse)
    benchmark(args)
    print(f"total: {time.perf_counter() - start:.1f} s", flush=True)


if __name__ == "__main__":
    main()
