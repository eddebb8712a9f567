"""`fieldline demo` / `make demo`: the whole system on one machine with the fixture city.

Steps: local services up, migrations, fixture import (an upsert, so reruns change nothing),
demo crews with every skill, shifts covering today and tomorrow and their devices bound, then a
gateway worker, the scheduler, and the simulated crews, SCADA stations and call centre in the
background and the web server in the foreground until Ctrl-C. Every priority is dispatched
automatically (unless FIELDLINE_AUTO_DISPATCH_PRIORITIES says otherwise), so the call centre's
tasks reach the crews, which accept them, drive there, work and complete them; every few
minutes a main breaks and is played through from the pressure alarm to the closed incident
(simulator/mainbreak.py). One more crew,
the handheld crew, is left to a person on the crew app (`/crew`, signed in with its `own`
device): the simulation plans jobs for it and does not drive it.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager, suppress
from datetime import UTC, datetime, timedelta
from pathlib import Path

import click
import sqlalchemy as sa
from sqlalchemy.orm import Session

from fieldline.server.auth.first_run import DEMO_CREW_USER
from fieldline.server.tasks.models import PRIORITIES
from fieldline.settings import Settings, get_settings, load_settings, priority_minutes

FIXTURE_CITY = Path(__file__).resolve().parent.parent / "fixtures" / "city"
DEMO_CREWS = 6
DEMO_METERS = 20
MODES = {"drive": "vehicle", "walk": "foot"}
AUTO_DISPATCH = "FIELDLINE_AUTO_DISPATCH_PRIORITIES"
MIN_DWELL = "FIELDLINE_VERIFICATION_MIN_DWELL_S"
SLA_ARRIVAL = "FIELDLINE_SLA_ARRIVAL_MINUTES"
SLA_COMPLETION = "FIELDLINE_SLA_COMPLETION_MINUTES"
SLA_DUE_SOON = "FIELDLINE_SLA_DUE_SOON_MINUTES"
HANDHELD_CREW = "Demo handheld crew"
HANDHELD_DEVICE = "tablet-1"
# An hour of the working day in ten minutes: calls come and tasks fall due while one watches.
DEMO_SPEED = 6.0
# A main break played through from alarm to closed incident at most this often (wall clock).
MAIN_BREAK_EVERY_MIN = 8.0


def prepare(settings: Settings, fixtures: Path) -> tuple[list[str], str]:
    """Everything the demo needs in the database; returns the simulated demo crews' public
    ids and the handheld crew's."""
    from fieldline.gis.db import make_engine, make_sessionmaker, upgrade
    from fieldline.gis.importer import find_sources, import_path
    from fieldline.local_services import services_up

    services_up(settings)
    upgrade(settings.database_url)
    engine = make_engine(settings.database_url)
    with make_sessionmaker(engine)() as session:
        for summary in import_path(session, find_sources(fixtures)):
            click.echo(
                f"loaded {summary.layer:<20} {summary.inserted + summary.updated:>6} features"
                + (f", {len(summary.rejected)} rejected" if summary.rejected else "")
            )
        crews = demo_crews(session)
        handheld = handheld_crew(session)
        session.commit()
    engine.dispose()
    return crews, handheld


def demo_crews(session: Session, count: int = DEMO_CREWS) -> list[str]:
    """The demo's crews, created once (found again by name) with their devices bound the way
    the simulator sends: own JSON on the crew's topic, or the OwnTracks app."""
    from fieldline.device_gateway.simulator import crew_specs
    from fieldline.server.crews.models import CREW_SKILLS, Crew, Device
    from fieldline.server.crews.services import bind_device, create_crew, update_crew

    # The simulator picks each crew's mode and app by its place in the list, not by its id.
    placeholders = [str(number) for number in range(count)]
    crew_ids = []
    for number, spec in enumerate(crew_specs(placeholders), start=1):
        name = f"Demo crew {number}"
        crew = session.scalar(sa.select(Crew).where(Crew.name == name))
        if crew is None:
            crew = create_crew(session, name, MODES[spec.mode])
        if set(crew.skills) != set(CREW_SKILLS):  # whatever the call centre asks for
            update_crew(session, crew.public_id, {"skills": list(CREW_SKILLS)})
        on_shift_all_day(session, crew.public_id, datetime.now(UTC))
        crew_ids.append(crew.public_id)
    for spec in crew_specs(crew_ids):
        if spec.protocol == "owntracks":
            identifier = f"{spec.owntracks_user}/{spec.owntracks_device}"
            bound = session.scalar(
                sa.select(Device).where(Device.kind == "owntracks", Device.identifier == identifier)
            )
            if bound is None:
                bind_device(session, spec.crew_id, "owntracks", identifier)
    return crew_ids


def handheld_crew(session: Session) -> str:
    """The crew a person works on the crew app, created once (found again by name) with every
    skill, on shift today and tomorrow, and its handheld bound as an `own` device."""
    from fieldline.server.crews.models import CREW_SKILLS, Crew
    from fieldline.server.crews.services import bind_device, create_crew, update_crew

    crew = session.scalar(sa.select(Crew).where(Crew.name == HANDHELD_CREW))
    if crew is None:
        crew = create_crew(session, HANDHELD_CREW, "vehicle")
    if set(crew.skills) != set(CREW_SKILLS):
        update_crew(session, crew.public_id, {"skills": list(CREW_SKILLS)})
    on_shift_all_day(session, crew.public_id, datetime.now(UTC))
    bind_device(session, crew.public_id, "own", HANDHELD_DEVICE)  # again: a no-op
    return str(crew.public_id)


def on_shift_all_day(session: Session, crew_id: str, now: datetime) -> None:
    """24-hour shifts for today and tomorrow (UTC), so the crew is on shift whenever the demo
    runs; a day already covered by a shift of the crew keeps it."""
    from fieldline.gis.errors import Conflict
    from fieldline.server.crews.services import add_shift

    midnight = now.replace(hour=0, minute=0, second=0, microsecond=0)
    for day in (midnight, midnight + timedelta(days=1)):
        with suppress(Conflict):
            add_shift(session, crew_id, day, day + timedelta(days=1))


def _shorter(values: Mapping[str, float], speed: float) -> str:
    return ",".join(f"{name}={max(1, round(value / speed))}" for name, value in values.items())


def demo_settings(settings: Settings, speed: float = 1.0) -> Settings:
    """Every priority dispatched automatically; and with crews working and calls coming `speed`
    times faster, every time the work is measured against shortened to match (the promised
    arrival and completion, the due-soon warning, the least times on site of the proof-of-work
    check), unless the environment says otherwise. The offer's timeout is not: a person on the
    handheld app needs its usual time to open the app and accept. Set in the environment too,
    for the processes the demo starts."""
    wanted: dict[str, Callable[[], str]] = {AUTO_DISPATCH: lambda: ",".join(PRIORITIES)}
    if speed != 1.0:
        wanted |= {
            MIN_DWELL: lambda: _shorter(settings.verification_min_dwell, speed),
            SLA_ARRIVAL: lambda: _shorter(priority_minutes(settings.sla_arrival_minutes), speed),
            SLA_COMPLETION: lambda: _shorter(
                priority_minutes(settings.sla_completion_minutes), speed
            ),
            SLA_DUE_SOON: lambda: str(max(1, round(settings.sla_due_soon_minutes / speed))),
        }
    updates = {name: value() for name, value in wanted.items() if name not in os.environ}
    if not updates:
        return settings
    os.environ.update(updates)
    get_settings.cache_clear()
    return load_settings()


def helpers(
    settings: Settings,
    crews: list[str],
    speed: float,
    jobs_per_hour: float,
    handheld: str | None = None,
    main_break_every_min: float = MAIN_BREAK_EVERY_MIN,
) -> list[list[str]]:
    """The processes beside the web server: a gateway worker, the scheduler, the simulation
    (which plans work for the `handheld` crew and leaves the rest of it to a person)."""
    from fieldline.cli import main
    from fieldline.device_gateway.simulator import server_url

    fieldline = [sys.executable, "-m", "fieldline.cli"]
    simulate = [*fieldline, "simulate", "--stations", "--meters", str(DEMO_METERS)]
    simulate += ["--work-speed", str(speed), "--jobs-per-hour", str(jobs_per_hour)]
    simulate += ["--api", server_url(settings.host, settings.port)]
    simulate += ["--main-break-every-min", str(main_break_every_min)]
    for crew in crews:
        simulate += ["--crew", crew]
    if handheld is not None:
        simulate += ["--handheld", handheld]
    commands = [[*fieldline, "gateway"]]
    if "scheduler" in main.commands:
        commands.append([*fieldline, "scheduler"])
    return [*commands, simulate]


@contextmanager
def background(commands: list[list[str]]) -> Iterator[None]:
    """Run helper processes for as long as the server runs, and stop them after."""
    processes = [subprocess.Popen(command) for command in commands]
    try:
        yield
    finally:
        for process in processes:
            process.terminate()
        for process in processes:
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                process.kill()


def announce(settings: Settings, crews: list[str], handheld: str, crew_password: str) -> None:
    base = f"http://{settings.host}:{settings.port}"
    click.echo("")
    click.echo(f"Fieldline demo: {base}/")
    click.echo(
        f"  pipes in a box:       {base}/api/v1/assets/pipes?bbox=24.940,60.166,24.948,60.172"
    )
    click.echo(
        f"  what is near a point: {base}/api/v1/assets/around?lon=24.944&lat=60.169&radius_m=50"
    )
    click.echo(f"  OGC API - Features:   {base}/ogc")
    click.echo(f"  crews, live:          {base}/api/v1/crews   {base}/api/v1/live")
    click.echo(f"  a crew's track:       {base}/api/v1/crews/{crews[0]}/positions")
    click.echo(f"  tasks, KPIs:          {base}/api/v1/tasks   {base}/api/v1/kpis")
    click.echo(f"  readiness:            {base}/readyz")
    click.echo(f"  sign in:              {base}/login   as `admin` (its password is printed on")
    click.echo("                        the first run only; `fieldline users passwd admin`)")
    click.echo(
        f"  crew app:             {base}/crew/   sign in as {DEMO_CREW_USER} / {crew_password}, "
        f"then as crew {handheld} with device {HANDHELD_DEVICE}"
    )
    click.echo(
        "                        (a job is offered to it whenever it has none open; accept "
        f"within {settings.offer_timeout_s / 60:g} min)"
    )
    click.echo("Press Ctrl-C to stop.")
    click.echo("")


def run(
    settings: Settings | None = None,
    fixtures: Path = FIXTURE_CITY,
    speed: float = DEMO_SPEED,
    jobs_per_hour: float = 12.0,
) -> None:
    """`speed`: crews react and work, and calls come, that many times faster (driving does
    not); `jobs_per_hour`: the call centre's rate before that factor (0: no calls)."""
    from fieldline.server.auth.first_run import demo_crew_login, demo_token, first_admin
    from fieldline.server.wsgi import serve

    settings = demo_settings(settings or get_settings(), speed)
    crews, handheld = prepare(settings, fixtures)
    first_admin(settings.database_url, click.echo)
    # The simulated call centre and dispatcher call the API with a token of their own.
    os.environ.setdefault("FIELDLINE_SIMULATOR_API_TOKEN", demo_token(settings.database_url))
    with background(helpers(settings, crews, speed, jobs_per_hour, handheld)):
        announce(settings, crews, handheld, demo_crew_login(settings.database_url, handheld))
        serve(settings, settings.host, settings.port)


if __name__ == "__main__":
    run()
