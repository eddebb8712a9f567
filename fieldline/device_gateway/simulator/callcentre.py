"""The simulated city's call centre and work planners: new tasks at random fixture assets, at
a steady random rate, posted to the server's API (`POST /api/v1/tasks`) as any other client
would; the simulator needs none of the server's code.

The mix is an ordinary day of a water utility: mostly inspections and meter readings (P3, P4),
some leaks to repair (P2), a rare burst main (P1), and planned valve operations, reading
rounds and patrols. Callers get made-up names and numbers from the block Ofcom keeps for drama
(+44 7700 900000 to 900999), which reach nobody.
"""

from __future__ import annotations

import json
import random
import threading
import urllib.error
import urllib.parse
import urllib.request
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from shapely import LineString

FIRST_NAMES = (
    "Aino", "Eero", "Helmi", "Juha", "Kaisa", "Lauri", "Mikko", "Noora", "Olli", "Riikka",
    "Sami", "Tiina", "Ville", "Emma", "Antti", "Leena",
)  # fmt: skip
SURNAMES = (
    "Korhonen", "Virtanen", "Mäkinen", "Nieminen", "Mäkelä", "Hämäläinen", "Laine",
    "Heikkinen", "Koskinen", "Järvinen", "Lehtonen", "Salminen",
)  # fmt: skip
DRAMA_NUMBERS = "+44 7700 900"  # followed by three digits
BURST_MIN_DIAMETER_MM = 300  # a main, not a distribution pipe
SKILLS = {
    "repair": ["pipe_repair", "excavation"],
    "inspection": ["inspection"],
    "meter_reading": ["meter"],
    "valve_operation": ["valve_operation"],
    "patrol": ["patrol"],
}


@dataclass(frozen=True)
class Asset:
    id: str
    lon: float
    lat: float
    props: dict[str, Any]


@dataclass(frozen=True)
class Pipe:
    id: str
    line: LineString  # lon/lat
    props: dict[str, Any]


class Catalogue:
    """The fixture city's assets the calls are about, read from its GeoJSON files."""

    def __init__(self, city: Path) -> None:
        self.pipes = [
            Pipe(f["id"], LineString(f["geometry"]["coordinates"]), f["properties"])
            for f in _features(city / "pipes.geojson")
            if f["properties"].get("status") == "in_service"
        ]
        self.valves = _points(city / "valves.geojson")
        self.hydrants = _points(city / "hydrants.geojson")
        self.meters = _points(city / "meters.geojson")
        self.pipe_by_id = {pipe.id: pipe for pipe in self.pipes}
        self.on_pipe: dict[str, list[tuple[str, Asset]]] = defaultdict(list)
        for layer, assets in (("valves", self.valves), ("hydrants", self.hydrants)):
            for asset in assets:
                self.on_pipe[str(asset.props.get("pipe"))].append((layer, asset))
        self.meters_on_pipe: dict[str, list[Asset]] = defaultdict(list)
        for meter in self.meters:
            self.meters_on_pipe[str(meter.props.get("pipe"))].append(meter)
        self.pipes_at: dict[str, list[Pipe]] = defaultdict(list)
        for pipe in self.pipes:
            self.pipes_at[pipe.props["from_node"]].append(pipe)
            self.pipes_at[pipe.props["to_node"]].append(pipe)


def _features(path: Path) -> list[dict[str, Any]]:
    features: list[dict[str, Any]] = json.loads(path.read_text())["features"]
    return features


def _points(path: Path) -> list[Asset]:
    assets = []
    for feature in _features(path):
        lon, lat = feature["geometry"]["coordinates"][:2]
        assets.append(Asset(feature["id"], lon, lat, feature["properties"]))
    return assets


def _caller(rng: random.Random) -> dict[str, str]:
    return {
        "name": f"{rng.choice(FIRST_NAMES)} {rng.choice(SURNAMES)}",
        "phone": f"{DRAMA_NUMBERS}{rng.randrange(1000):03d}",
    }


def _along(pipe: Pipe, rng: random.Random) -> dict[str, float]:
    """A point somewhere on the pipe: where the water shows."""
    point = pipe.line.interpolate(rng.uniform(0.1, 0.9), normalized=True)
    return {"lon": round(point.x, 7), "lat": round(point.y, 7)}


def _call(kind: str, priority: str, rng: random.Random, **fields: Any) -> dict[str, Any]:
    body = {"kind": kind, "priority": priority, "source": "call_centre", "caller": _caller(rng)}
    return body | {"required_skills": SKILLS[kind]} | fields


def _plan(kind: str, priority: str, **fields: Any) -> dict[str, Any]:
    body = {"kind": kind, "priority": priority, "source": "plan"}
    return body | {"required_skills": SKILLS[kind]} | fields


def burst_main(c: Catalogue, rng: random.Random) -> dict[str, Any]:
    mains = [p for p in c.pipes if p.props.get("diameter_mm", 0) >= BURST_MIN_DIAMETER_MM]
    pipe = rng.choice(mains)
    return _call(
        "repair",
        "P1",
        rng,
        title=f"Burst main on {pipe.id}",
        description=rng.choice(
            ("Water gushing from the road surface", "Street flooded, water coming up fast")
        ),
        assets=[{"layer": "pipes", "id": pipe.id}],
        site=_along(pipe, rng),
    )


def leak(c: Catalogue, rng: random.Random) -> dict[str, Any]:
    pipe = rng.choice(c.pipes)
    return _call(
        "repair",
        "P2",
        rng,
        title=f"Leak on {pipe.id}",
        description=rng.choice(
            (
                "Water seeping up between paving stones",
                "Wet patch on the street that never dries",
                "Hissing from a manhole cover",
            )
        ),
        assets=[{"layer": "pipes", "id": pipe.id}],
        site=_along(pipe, rng),
    )


def low_pressure(c: Catalogue, rng: random.Random) -> dict[str, Any]:
    meter = rng.choice([m for m in c.meters if m.props.get("pipe") in c.pipe_by_id])
    address = meter.props.get("service_address") or meter.id
    return _call(
        "inspection",
        "P3",
        rng,
        title=f"Low pressure at {address}",
        description="Weak flow from every tap in the building",
        assets=[{"layer": "pipes", "id": meter.props["pipe"]}],
        site={"lon": meter.lon, "lat": meter.lat},
    )


def hydrant_damage(c: Catalogue, rng: random.Random) -> dict[str, Any]:
    hydrant = rng.choice(c.hydrants)
    return _call(
        "inspection",
        "P3",
        rng,
        title=f"Hydrant {hydrant.id} damaged",
        description=rng.choice(("Knocked over by a van", "Dripping from the outlet cap")),
        assets=[{"layer": "hydrants", "id": hydrant.id}],
    )


def valve_chamber(c: Catalogue, rng: random.Random) -> dict[str, Any]:
    valve = rng.choice(c.valves)
    return _call(
        "inspection",
        "P3",
        rng,
        title=f"Valve chamber at {valve.id}",
        description=rng.choice(
            ("Chamber lid loose and rattling", "Lid missing, a hole in the road")
        ),
        assets=[{"layer": "valves", "id": valve.id}],
    )


def hydrant_check(c: Catalogue, rng: random.Random) -> dict[str, Any]:
    hydrant = rng.choice(c.hydrants)
    return _call(
        "inspection",
        "P4",
        rng,
        title=f"Check hydrant {hydrant.id}",
        description="Paint flaking and the marker sign is gone",
        assets=[{"layer": "hydrants", "id": hydrant.id}],
    )


def meter_reading(c: Catalogue, rng: random.Random) -> dict[str, Any]:
    meter = rng.choice(c.meters)
    address = meter.props.get("service_address") or meter.id
    if rng.random() < 0.7:
        return _call(
            "meter_reading",
            "P4",
            rng,
            title=f"Read the meter at {address}",
            description="The customer disputes the last bill",
            assets=[{"layer": "meters", "id": meter.id}],
        )
    street = c.meters_on_pipe[str(meter.props.get("pipe"))] or [meter]
    round_ = rng.sample(street, min(len(street), rng.randint(2, 5)))
    return _plan(
        "meter_reading",
        "P4",
        title=f"Reading round from {address}",
        assets=[{"layer": "meters", "id": m.id} for m in round_],
    )


def valve_operation(c: Catalogue, rng: random.Random) -> dict[str, Any]:
    valve = rng.choice([v for v in c.valves if v.props.get("operable")])
    return _plan(
        "valve_operation",
        "P3",
        title=f"Exercise valve {valve.id}",
        description="Close fully, count the turns, open again",
        assets=[{"layer": "valves", "id": valve.id}],
    )


def patrol(c: Catalogue, rng: random.Random) -> dict[str, Any]:
    """A few connected pipes, walked from one to the next, with the valves and hydrants on
    them as checkpoints."""
    pipes = [rng.choice(c.pipes)]
    node = pipes[0].props["to_node"]
    for _ in range(rng.randint(2, 5)):
        onward = [p for p in c.pipes_at[node] if p.id not in {q.id for q in pipes}]
        if not onward:
            break
        pipe = rng.choice(onward)
        pipes.append(pipe)
        ends = (pipe.props["from_node"], pipe.props["to_node"])
        node = ends[1] if ends[0] == node else ends[0]
    checkpoints = [item for pipe in pipes for item in c.on_pipe[pipe.id]][:4]
    return _plan(
        "patrol",
        "P4",
        title=f"Patrol from {pipes[0].id}",
        mode="foot" if rng.random() < 0.3 else "vehicle",
        assets=[
            *({"layer": "pipes", "id": pipe.id} for pipe in pipes),
            *({"layer": layer, "id": asset.id} for layer, asset in checkpoints),
        ],
    )


Builder = Callable[[Catalogue, random.Random], dict[str, Any]]
# (weight, what): a day of a mid-sized city's network, in shares of 100.
MIX: tuple[tuple[int, Builder], ...] = (
    (2, burst_main),
    (12, leak),
    (8, low_pressure),
    (12, hydrant_damage),
    (8, valve_chamber),
    (10, hydrant_check),
    (30, meter_reading),
    (8, valve_operation),
    (10, patrol),
)


class CallCentre:
    """Calls at `jobs_per_hour` times `speed` per hour of wall-clock time, as a Poisson
    process: the gaps between calls are exponential."""

    def __init__(
        self, catalogue: Catalogue, jobs_per_hour: float, speed: float, rng: random.Random
    ) -> None:
        if not jobs_per_hour > 0 or not speed > 0:
            raise ValueError("jobs_per_hour and speed must be positive")
        self.catalogue = catalogue
        self.rate_per_s = jobs_per_hour * speed / 3600.0
        self.rng = rng

    def next_gap_s(self) -> float:
        return self.rng.expovariate(self.rate_per_s)

    def call(self) -> dict[str, Any]:
        """The body of `POST /api/v1/tasks` for the next call."""
        weights, builders = zip(*MIX, strict=True)
        build = self.rng.choices(builders, weights=weights)[0]
        return build(self.catalogue, self.rng)


class ApiError(Exception):
    pass


def server_url(host: str, port: int) -> str:
    """Where a client on this machine reaches a server listening on host:port (a server on
    every address is reached on the loopback one)."""
    host = {"": "127.0.0.1", "0.0.0.0": "127.0.0.1", "::": "::1"}.get(host, host)
    return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"


class TaskApi:
    """The server's task and dispatch endpoints, over HTTP."""

    def __init__(self, base_url: str, timeout_s: float = 10.0) -> None:
        self.url = base_url.rstrip("/") + "/api/v1/tasks"
        self.timeout_s = timeout_s

    def create(self, body: dict[str, Any]) -> dict[str, Any]:
        return self._send("POST", self.url, body)

    def open_tasks(self, crew_id: str, states: tuple[str, ...]) -> list[dict[str, Any]]:
        """The crew's tasks in `states` (`GET /api/v1/tasks?crew=&state=`)."""
        query = urllib.parse.urlencode({"crew": crew_id, "state": ",".join(states)})
        tasks: list[dict[str, Any]] = self._send("GET", f"{self.url}?{query}")["tasks"]
        return tasks

    def assign(self, task_id: str, crew_id: str) -> dict[str, Any]:
        """Offer the task to the crew as a dispatcher does (`POST /api/v1/tasks/{id}/assign`)."""
        url = f"{self.url}/{urllib.parse.quote(task_id)}/assign"
        return self._send("POST", url, {"crew": crew_id})

    def _send(self, method: str, url: str, body: dict[str, Any] | None = None) -> dict[str, Any]:
        return send_json(method, url, body, self.timeout_s)


def send_json(
    method: str, url: str, body: dict[str, Any] | None = None, timeout_s: float = 10.0
) -> dict[str, Any]:
    """One JSON request to the server; a refusal or no answer is an ApiError."""
    from fieldline.settings import get_settings

    headers = {"Content-Type": "application/json", "Accept": "application/json"}
    token = get_settings().simulator_api_token
    if token:
        headers["Authorization"] = f"Bearer {token}"
    request = urllib.request.Request(
        url,
        data=None if body is None else json.dumps(body).encode(),
        headers=headers,
        method=method,
    )
    try:
        with urllib.request.urlopen(request, timeout=timeout_s) as response:
            answer: dict[str, Any] = json.load(response)
            return answer
    except urllib.error.HTTPError as exc:
        problem = exc.read().decode(errors="replace")[:500]
        raise ApiError(f"{exc.code} from {url}: {problem}") from None
    except (urllib.error.URLError, OSError) as exc:
        raise ApiError(f"cannot reach {url}: {exc}") from None


def take_calls(
    centre: CallCentre,
    api: TaskApi,
    stop: threading.Event,
    report: Callable[[str], None] = lambda line: None,
) -> int:
    """Post each call when it comes until `stop` is set; returns how many became tasks. A call
    the server refuses or cannot take is reported and the next one comes as planned."""
    created = 0
    while not stop.wait(centre.next_gap_s()):
        try:
            task = api.create(centre.call())
        except ApiError as exc:
            report(f"call not taken: {exc}")
            continue
        created += 1
        report(f"{task['id']}  {task['priority']}  {task['kind']:<15}  {task['title']}")
    return created
