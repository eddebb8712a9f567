"""The `fieldline` command line."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

import click

from fieldline.settings import Settings, SettingsError, load_settings

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

    from fieldline.server.mqtt_access.broker import BrokerAdmin


def _settings() -> Settings:
    try:
        return load_settings()
    except SettingsError as exc:
        raise click.ClickException(str(exc)) from None


@click.group()
@click.version_option(package_name="fieldline")
def main() -> None:
    """Fieldline: assets, crews, dispatch and proof of work for utility networks."""


@main.group()
def services() -> None:
    """Local PostgreSQL+PostGIS, Redis and Mosquitto."""


@services.command("up")
def services_up_command() -> None:
    """Install what is missing, start what is stopped, create the databases. Idempotent."""
    from fieldline.local_services import ServicesError, services_up

    try:
        services_up(_settings())
    except ServicesError as exc:
        raise click.ClickException(str(exc)) from None


@main.group()
def db() -> None:
    """Database schema."""


@db.command("upgrade")
@click.option("--revision", default="head", show_default=True)
def db_upgrade(revision: str) -> None:
    """Apply the migrations."""
    from fieldline.gis.db import upgrade

    upgrade(_settings().database_url, revision)
    click.echo(f"database at {revision}")


@db.command("prune")
def db_prune() -> None:
    """Drop position and telemetry partitions older than FIELDLINE_RETENTION_DAYS (positions
    once rolled up into the history, which this does first) and the history's months older
    than FIELDLINE_POSITION_HISTORY_RETENTION_DAYS."""
    from datetime import UTC, datetime

    from fieldline.gis.db import make_engine
    from fieldline.server.telemetry.history import roll_up
    from fieldline.server.telemetry.services import prune

    settings = _settings()
    today = datetime.now(UTC).date()
    engine = make_engine(settings.database_url)
    try:
        with engine.begin() as connection:
            rolled = roll_up(connection, settings.positions_detail_days, today)
        with engine.begin() as connection:
            dropped = prune(
                connection,
                settings.retention_days,
                today,
                history_retention_days=settings.position_history_retention_days,
            )
    finally:
        engine.dispose()
    for rollup in rolled:
        click.echo(f"rolled up {rollup.day}: {rollup.fixes} fixes into {rollup.minutes} minutes")
    for name in dropped:
        click.echo(f"dropped {name}")
    click.echo(f"{len(dropped)} partition(s) older than {settings.retention_days} days dropped")


@main.command("import")
@click.argument("path", type=click.Path(exists=True, path_type=Path))
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["geojson", "gpkg", "shp", "epanet"]),
    default=None,
    help="File format; by default from the file name (.inp is EPANET).",
)
@click.option(
    "--crs", default=None, help="CRS of the coordinates when the file names none (EPSG:N)."
)
@click.option(
    "--layer",
    default=None,
    help="Target asset layer; INNER=layer reads the GeoPackage layer INNER into it.",
)
@click.option(
    "--map",
    "maps",
    multiple=True,
    metavar="FIELD=attribute[:unit]",
    help="Read a foreign field as an attribute, converting a length unit (mm cm m km in ft).",
)
@click.option(
    "--map-values",
    "value_maps",
    multiple=True,
    metavar="attribute=CODE:value,...",
    help="Replace foreign codes of an attribute with Fieldline values.",
)
@click.option("--id-field", default=None, help="The field that identifies features in the file.")
@click.option(
    "--namespace",
    default=None,
    help="Prefix of the source ids of features without public ids [the file's name].",
)
def import_command(
    path: Path,
    fmt: str | None,
    crs: str | None,
    layer: str | None,
    maps: tuple[str, ...],
    value_maps: tuple[str, ...],
    id_field: str | None,
    namespace: str | None,
) -> None:
    """Load assets from a file or a folder of files; bad features are reported, good ones kept.

    A re-import updates in place: features are found again by their public id (P-000123) or
    by their id in the file, kept as source id `<namespace>:<id>`."""
    from fieldline.gis.crs import parse_crs
    from fieldline.gis.db import make_engine, make_sessionmaker
    from fieldline.gis.errors import GisError, InvalidField
    from fieldline.gis.importer import check_mapping, count_features, find_sources, import_source
    from fieldline.gis.mapping import parse_mapping

    settings = _settings()
    try:
        mapping = parse_mapping(maps, value_maps, id_field)
        sources = find_sources(path, layer, fmt, namespace)
        check_mapping(sources, mapping)
        source_crs = parse_crs(crs, "--crs") if crs else None
        total = sum(count_features(source) for source in sources)
        engine = make_engine(settings.database_url)
        summaries = []
        with (
            make_sessionmaker(engine)() as session,
            click.progressbar(length=total, label="importing", file=sys.stderr) as bar,
        ):
            for source in sources:
                summaries.append(import_source(session, source, source_crs, bar.update, mapping))
    except InvalidField as exc:
        raise click.ClickException(f"{exc.field}: {exc.detail}") from None
    except GisError as exc:
        raise click.ClickException(exc.detail) from None
    rejected = 0
    for summary in summaries:
        click.echo(
            f"{summary.layer:<20} {summary.source:<28} read {summary.read:>7}  "
            f"inserted {summary.inserted:>7}  updated {summary.updated:>7}  "
            f"rejected {len(summary.rejected):>5}"
        )
        if summary.ignored_fields:
            click.echo(
                f"  ignored fields of {summary.source} (no {summary.layer} attribute; see --map):"
                f" {', '.join(summary.ignored_fields)}",
                err=True,
            )
        for rejection in summary.rejected:
            click.echo(f"  rejected {summary.source} {rejection}")
        rejected += len(summary.rejected)
    if rejected:
        click.echo(f"{rejected} feature(s) rejected; the others were stored", err=True)
        sys.exit(3)


@main.command("export")
@click.argument("path", type=click.Path(path_type=Path))
@click.option("--format", "fmt", type=click.Choice(["geojson", "gpkg"]), required=True)
@click.option(
    "--layer", "layers", multiple=True, help="A layer to write (repeatable) [every layer]."
)
def export_command(path: Path, fmt: str, layers: tuple[str, ...]) -> None:
    """Write asset layers in WGS 84: a GeoPackage with a table per layer, or a folder of
    GeoJSON files (a single .geojson file for one layer)."""
    from fieldline.gis.db import make_engine
    from fieldline.gis.errors import GisError
    from fieldline.gis.exporter import export_layers
    from fieldline.gis.layers import get_layer

    engine = make_engine(_settings().database_url)
    try:
        with engine.connect() as connection:
            written = export_layers(connection, path, fmt, [get_layer(name) for name in layers])
    except GisError as exc:
        raise click.ClickException(exc.detail) from None
    finally:
        engine.dispose()
    for summary in written:
        click.echo(f"{summary.layer:<20} {summary.features:>7} features  {summary.path}")


@main.command()
@click.option("--host", default=None, help="Address to listen on [FIELDLINE_HOST].")
@click.option("--port", type=int, default=None, help="Port to listen on [FIELDLINE_PORT].")
def serve(host: str | None, port: int | None) -> None:
    """The web server: REST API, OGC API and the map."""
    from fieldline.server.auth.first_run import first_admin
    from fieldline.server.wsgi import serve as run

    settings = _settings()
    first_admin(settings.database_url, click.echo)
    run(settings, host or settings.host, port or settings.port)


@main.command()
@click.option(
    "--retire",
    is_flag=True,
    help="Take over the stopped worker's session (FIELDLINE_GATEWAY_CLIENT_ID), store what "
    "is queued in it, end it and exit (as SIGUSR1 does to a running worker).",
)
def gateway(retire: bool) -> None:
    """One MQTT gateway worker; start several to share the load. Stops cleanly on SIGTERM;
    SIGUSR1 retires it for good (see --retire)."""
    import logging

    from fieldline.device_gateway.worker import run

    settings = _settings()
    logging.basicConfig(
        level=settings.log_level, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    run(settings, retire)


@main.command()
def scheduler() -> None:
    """The periodic jobs: service levels, notices, partitions. One acts at a time (the others
    wait as hot standbys); stops cleanly on SIGTERM."""
    import logging

    from fieldline.scheduler import run

    settings = _settings()
    logging.basicConfig(
        level=settings.log_level, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    run(settings)


@main.command()
@click.option(
    "--fixtures",
    type=click.Path(exists=True, file_okay=False, path_type=Path),
    default=None,
    help="Folder of asset files to load (default: the fixture city).",
)
@click.option(
    "--speed",
    type=click.FloatRange(min=0, min_open=True),
    default=None,
    help="Crews react and work, calls come and promises fall due this many times faster"
    " (60: an hour a minute); driving stays at road speed.  [default: 6, an hour in ten"
    " minutes]",
)
@click.option(
    "--jobs-per-hour",
    type=click.FloatRange(min=0),
    default=12.0,
    show_default=True,
    help="New tasks from the simulated call centre and planners per hour (times --speed).",
)
def demo(fixtures: Path | None, speed: float | None, jobs_per_hour: float) -> None:
    """Everything at once on this machine, with the fixture city; prints the URL."""
    from fieldline import demo as demo_module
    from fieldline.gis.errors import GisError
    from fieldline.local_services import ServicesError

    try:
        demo_module.run(
            _settings(),
            fixtures or demo_module.FIXTURE_CITY,
            speed=speed or demo_module.DEMO_SPEED,
            jobs_per_hour=jobs_per_hour,
        )
    except ServicesError as exc:
        raise click.ClickException(str(exc)) from None
    except GisError as exc:
        raise click.ClickException(exc.detail) from None


@main.command()
@click.option("--crews", "crew_count", type=click.IntRange(0), default=4, show_default=True)
@click.option("--crew", "crew_ids", multiple=True, help="A crew id (repeatable) [C-001...].")
@click.option("--stations", is_flag=True, help="Also the fixture city's SCADA stations.")
@click.option("--meters", type=click.IntRange(0), default=0, help="Meters to simulate.")
@click.option("--speed", type=click.FloatRange(min=0, min_open=True), default=1.0)
@click.option("--seed", type=int, default=0, show_default=True)
@click.option(
    "--duration",
    type=click.FloatRange(min=0, min_open=True),
    default=None,
    help="Simulated seconds to run [until Ctrl-C].",
)
@click.option(
    "--inbox/--no-inbox",
    default=True,
    show_default=True,
    help="Crews take the tasks sent to their inbox topics.",
)
@click.option(
    "--work-speed",
    type=click.FloatRange(min=0, min_open=True),
    default=1.0,
    show_default=True,
    help="Crews react and work, and calls come, this many times faster; driving does not.",
)
@click.option(
    "--decline-share",
    type=click.FloatRange(0, 1),
    default=0.05,
    show_default=True,
    help="Share of offers a crew leaves unanswered, to time out.",
)
@click.option(
    "--jobs-per-hour",
    type=click.FloatRange(min=0),
    default=0.0,
    help="New tasks per hour (times --work-speed) from a simulated call centre [none].",
)
@click.option(
    "--api",
    "api_url",
    default=None,
    help="The server the call centre and the --handheld planner use "
    "[http://FIELDLINE_HOST:FIELDLINE_PORT].",
)
@click.option(
    "--handheld",
    "handheld_crew",
    default=None,
    metavar="CREW_ID",
    help="A crew worked on the handheld app, not simulated: given a planned job whenever it "
    "has none open, at most once a minute.",
)
@click.option(
    "--main-break-every-min",
    type=click.FloatRange(min=0),
    default=0.0,
    help="A main break played through the API (pressure alarm, calls, isolation, repair) "
    "this often in wall-clock minutes, one at a time; needs --stations [none].",
)
def simulate(
    crew_count: int,
    crew_ids: tuple[str, ...],
    stations: bool,
    meters: int,
    speed: float,
    seed: int,
    duration: float | None,
    inbox: bool,
    work_speed: float,
    decline_share: float,
    jobs_per_hour: float,
    api_url: str | None,
    handheld_crew: str | None,
    main_break_every_min: float,
) -> None:
    """Simulated crews, SCADA stations and meters publishing to FIELDLINE_MQTT_URL; the crews
    take the tasks sent to them, and a call centre may create tasks."""
    import random
    import threading

    from fieldline.device_gateway import simulator as sim

    specs = sim.crew_specs(list(crew_ids) or sim.default_crew_ids(crew_count))
    for spec in specs:
        click.echo(f"{spec.crew_id}  {spec.mode:<5}  {spec.topic}")
    if main_break_every_min and not stations:
        raise click.BadParameter("needs --stations", param_hint="--main-break-every-min")
    settings = _settings()
    start = sim.start_time(sim.utc_now(), speed, duration)
    pace = sim.WorkPace(work_speed, decline_share)
    simulation = sim.city_simulator(start, specs, stations, meters, seed, pace=pace)
    inboxes = sim.CrewInboxes(settings.mqtt_url, specs, settings.mqtt_session_expiry_s)
    try:
        client = sim.connect(settings.mqtt_url, f"fieldline-simulator-{seed}")
        if inbox:
            inboxes.start()
    except OSError as exc:  # TimeoutError is one
        raise click.ClickException(f"cannot reach {settings.mqtt_url}: {exc}") from None
    stop_calls = threading.Event()
    base_url = api_url or sim.server_url(settings.host, settings.port)
    api = sim.TaskApi(base_url)
    if jobs_per_hour:
        centre = sim.CallCentre(
            sim.Catalogue(sim.FIXTURE_CITY), jobs_per_hour, work_speed, random.Random(seed)
        )
        click.echo(f"call centre: {jobs_per_hour * work_speed:g} tasks an hour to {api.url}")
        threading.Thread(
            target=sim.take_calls, args=(centre, api, stop_calls, click.echo), daemon=True
        ).start()
    if handheld_crew:
        planner = sim.HandheldPlanner(
            sim.Catalogue(sim.FIXTURE_CITY), handheld_crew, random.Random(seed + 1)
        )
        click.echo(f"planned work for {handheld_crew} (handheld) through {api.url}")
        threading.Thread(
            target=sim.plan_handheld_work, args=(planner, api, stop_calls, click.echo), daemon=True
        ).start()
    if main_break_every_min:
        stations_by_id = simulation.stations_by_id

        def set_pressure(station_id: str, kpa: float | None) -> None:
            stations_by_id[station_id].loss.target_kpa = kpa

        scenario = sim.MainBreak(
            sim.break_sites(sim.Catalogue(sim.FIXTURE_CITY), sim.FIXTURE_CITY),
            set_pressure,
            random.Random(seed + 2),
            main_break_every_min * 60,
        )
        click.echo(f"main break every {main_break_every_min:g} min through {base_url}")
        threading.Thread(
            target=sim.replay_main_breaks,
            args=(scenario, sim.IncidentApi(base_url), stop_calls),
            kwargs={"report": lambda line: click.echo(f"main break: {line}")},
            daemon=True,
        ).start()
    try:
        sent = sim.publish_realtime(
            simulation, client, speed, duration, inboxes=inboxes if inbox else None
        )
    except KeyboardInterrupt:
        sent = None
    finally:
        stop_calls.set()
        inboxes.close()
        client.loop_stop()
        client.disconnect()
    if sent is not None:
        click.echo(f"published {sent} messages")


# --- the crew roster and device bindings ---------------------------------------------------


@contextmanager
def _database() -> Iterator[Session]:
    """A session on FIELDLINE_DATABASE_URL; a refused value becomes the command's error."""
    from fieldline.gis.db import make_engine, make_sessionmaker
    from fieldline.gis.errors import GisError, InvalidField

    engine = make_engine(_settings().database_url)
    try:
        with make_sessionmaker(engine)() as session:
            yield session
    except InvalidField as exc:
        raise click.ClickException(f"{exc.field}: {exc.detail}") from None
    except GisError as exc:
        raise click.ClickException(exc.detail) from None
    finally:
        engine.dispose()


def _lon_lat(value: str | None) -> tuple[float, float] | None:
    if value is None:
        return None
    try:
        lon, lat = (float(part) for part in value.split(","))
    except ValueError:
        raise click.BadParameter(
            "must be LON,LAT, e.g. 24.94,60.17", param_hint="--depot"
        ) from None
    return lon, lat


@main.group()
def crews() -> None:
    """The crew roster."""


@crews.command("add")
@click.argument("name")
@click.option("--mode", default="vehicle", show_default=True, help="vehicle or foot.")
@click.option("--skill", "skills", multiple=True, help="A skill (repeatable), e.g. welding.")
@click.option("--depot", default=None, metavar="LON,LAT", help="Where the crew waits, WGS 84.")
@click.option("--phone", default=None, help="The crew's phone number.")
def crews_add(
    name: str, mode: str, skills: tuple[str, ...], depot: str | None, phone: str | None
) -> None:
    """Add a crew; prints its id (C-000001)."""
    from fieldline.server.crews.services import create_crew

    point = _lon_lat(depot)
    with _database() as session:
        crew = create_crew(session, name, mode, skills=skills, depot=point, phone=phone)
        session.commit()
    click.echo(crew.public_id)


@crews.command("list")
def crews_list() -> None:
    """Every crew with its mode, status, skills and devices."""
    from datetime import UTC, datetime

    import redis

    from fieldline.server.crews.services import active_task_counts, list_crews
    from fieldline.server.live.services import Live

    settings = _settings()
    try:
        latest = Live.from_url(settings.redis_url, settings.redis_prefix).latest()
    except redis.RedisError as exc:
        click.echo(f"no latest fixes ({settings.redis_url}: {exc})", err=True)
        latest = {}
    with _database() as session:
        found = list_crews(
            session,
            latest,
            datetime.now(UTC),
            active_task_counts(session),
            stale_after_s=settings.crew_stale_after_s,
        )
    for crew in found:
        devices = ",".join(f"{d['kind']}:{d['identifier']}" for d in crew["devices"]) or "-"
        click.echo(
            f"{crew['id']:<10} {crew['name']:<24} {crew['mode']:<8} {crew['status']:<10} "
            f"{','.join(crew['skills']) or '-'}  {devices}"
        )


@main.group()
def devices() -> None:
    """Devices that report for crews."""


@devices.command("add")
@click.option("--crew", "crew_id", required=True, help="The crew's id (C-000001).")
@click.option("--kind", default="own", show_default=True, help="own or owntracks.")
@click.option(
    "--identifier",
    default=None,
    help="A handheld's name (made up when left out), or an OwnTracks user/device.",
)
def devices_add(crew_id: str, kind: str, identifier: str | None) -> None:
    """Bind a device to a crew and give it its MQTT login; its fixes then count as the
    crew's. The password is shown this once (running it again issues a new one)."""
    from fieldline.server.auth.services import SYSTEM_ACTOR
    from fieldline.server.mqtt_access.services import add_device, new_identifier

    if identifier is None and kind == "own":
        identifier = new_identifier()
    with _database() as session, _broker_admin() as admin:
        device, login = add_device(session, admin, crew_id, kind, identifier, actor=SYSTEM_ACTOR)
        session.commit()
    click.echo(f"{device.kind} device {device.identifier} reports for {crew_id}")
    _echo_login(login.username, login.password)


@devices.command("revoke")
@click.option("--crew", "crew_id", required=True, help="The crew's id (C-000001).")
@click.option("--kind", default="own", show_default=True, help="own or owntracks.")
@click.option("--identifier", required=True, help="The device's name or OwnTracks user/device.")
def devices_revoke(crew_id: str, kind: str, identifier: str) -> None:
    """Unbind a device and revoke its MQTT login: the broker refuses it from now on and
    closes its connection."""
    from fieldline.server.auth.services import SYSTEM_ACTOR
    from fieldline.server.mqtt_access.services import revoke_device

    with _database() as session, _broker_admin() as admin:
        revoke_device(session, admin, crew_id, kind, identifier, actor=SYSTEM_ACTOR)
        session.commit()
    click.echo(f"{kind} device {identifier} revoked")


@contextmanager
def _broker_admin() -> Iterator[BrokerAdmin]:
    """The broker's dynamic security API; a broker that cannot take it is the command's error
    (nothing is committed then)."""
    from fieldline.server.mqtt_access.broker import BrokerAccessError, BrokerAdmin

    try:
        yield BrokerAdmin.from_settings(_settings())
    except BrokerAccessError as exc:
        raise click.ClickException(exc.detail) from None


def _echo_login(username: str, password: str) -> None:
    settings = _settings()
    click.echo(f"MQTT username: {username}")
    click.echo(f"MQTT password: {password}  (shown once)")
    click.echo(
        f"broker: TLS port {settings.mqtt_tls_port} (CA {settings.mqtt_ca_file}), "
        f"WebSocket port {settings.mqtt_ws_port}"
    )


@main.group()
def stations() -> None:
    """SCADA and monitoring stations."""


@stations.command("bind")
@click.argument("station_id")
@click.argument("source")
def stations_bind(station_id: str, source: str) -> None:
    """Bind the name SCADA reports a station under (PS-KAMPPI-1, spb:group/edge[/device])."""
    from fieldline.server.telemetry.services import bind_station

    with _database() as session:
        binding = bind_station(session, station_id, source)
        session.commit()
    click.echo(f"{binding.source} reports for {station_id}")


@stations.command("credentials")
@click.argument("source")
@click.option("--revoke", is_flag=True, help="Revoke the login instead of issuing one.")
def stations_credentials(source: str, revoke: bool) -> None:
    """Issue (again) or revoke the MQTT login of a SCADA station (its id or bound name: it may
    publish fieldline/scada/SOURCE) or a Sparkplug edge node (spb:group/edge: its own node and
    device topics, reading its own commands). The password is shown this once."""
    from fieldline.server.auth.services import SYSTEM_ACTOR
    from fieldline.server.mqtt_access.services import add_station_login, revoke_station_login

    with _database() as session, _broker_admin() as admin:
        if revoke:
            revoke_station_login(session, admin, source, actor=SYSTEM_ACTOR)
            session.commit()
            click.echo(f"{source}: login revoked")
            return
        login = add_station_login(session, admin, source, actor=SYSTEM_ACTOR)
        session.commit()
    _echo_login(login.username, login.password)


# --- people and API tokens -------------------------------------------------------------------


@main.group()
def users() -> None:
    """The people (and programs) who sign in."""


def _read_password(from_stdin: bool) -> str | None:
    if not from_stdin:
        return None
    return sys.stdin.readline().rstrip("\r\n")


@users.command("add")
@click.argument("username")
@click.option("--role", required=True, help="admin, dispatcher, supervisor, crew_member, ...")
@click.option("--crew", "crew_id", default=None, help="The crew of a crew member (C-000001).")
@click.option("--password-stdin", is_flag=True, help="Read the password from standard input.")
def users_add(username: str, role: str, crew_id: str | None, password_stdin: bool) -> None:
    """Add a user; without --password-stdin a password is made and printed once."""
    from fieldline.server.auth.services import create_user

    with _database() as session:
        user, generated = create_user(
            session, username, role, crew_id=crew_id, password=_read_password(password_stdin)
        )
        session.commit()
    click.echo(f"user {user.username} ({user.role}) added")
    if generated:
        click.echo(f"password (shown only now): {generated}")


@users.command("list")
def users_list() -> None:
    """Every user with its role, crew and state."""
    from fieldline.server.auth.services import list_users, user_json

    with _database() as session:
        rows = [user_json(session, user) for user in list_users(session)]
    for row in rows:
        state = "disabled" if row["disabled"] else "active"
        click.echo(
            f"{row['username']:<24} {row['role']:<12} {row['crew_id'] or '-':<10} {state:<9}"
            f" last sign-in {row['last_login_at'] or 'never'}"
        )


@users.command("passwd")
@click.argument("username")
@click.option("--password-stdin", is_flag=True, help="Read the password from standard input.")
def users_passwd(username: str, password_stdin: bool) -> None:
    """Set a user's password (asked for twice, or read from standard input)."""
    from fieldline.server.auth.services import SYSTEM_ACTOR, get_user, set_password

    password = _read_password(password_stdin)
    if password is None:
        password = click.prompt("New password", hide_input=True, confirmation_prompt=True)
    with _database() as session:
        set_password(session, get_user(session, username), password, actor=SYSTEM_ACTOR)
        session.commit()
    click.echo(f"password of {username} changed")


@users.command("disable")
@click.argument("username")
def users_disable(username: str) -> None:
    """Refuse a user's sign-ins, sessions and API tokens from now on."""
    from fieldline.server.auth.services import SYSTEM_ACTOR, update_user

    with _database() as session:
        update_user(session, username, {"disabled": True}, actor=SYSTEM_ACTOR)
        session.commit()
    click.echo(f"user {username} disabled")


@main.group()
def tokens() -> None:
    """API tokens for programs (`Authorization: Bearer <token>`)."""


@tokens.command("create")
@click.option("--user", "username", required=True, help="The user the token acts as.")
@click.option("--name", required=True, help="What the token is for, e.g. billing-sync.")
@click.option(
    "--days",
    type=click.IntRange(1),
    default=None,
    help="Valid this long [FIELDLINE_TOKEN_MAX_DAYS].",
)
def tokens_create(username: str, name: str, days: int | None) -> None:
    """Make a token; prints its secret once."""
    from datetime import UTC, datetime

    from fieldline.server.auth.services import SYSTEM_ACTOR, create_token, get_user

    with _database() as session:
        token, secret = create_token(
            session,
            get_user(session, username),
            name,
            datetime.now(UTC),
            _settings(),
            days=days,
            actor=SYSTEM_ACTOR,
        )
        session.commit()
    click.echo(f"token {token.id} for {username}, valid until {token.expires_at.isoformat()}")
    click.echo(f"secret (shown only now): {secret}")


@tokens.command("revoke")
@click.argument("token_id")
def tokens_revoke(token_id: str) -> None:
    """Revoke a token at once."""
    from datetime import UTC, datetime

    from fieldline.server.auth.services import SYSTEM_ACTOR, get_token, revoke_token

    with _database() as session:
        revoke_token(session, get_token(session, token_id), datetime.now(UTC), actor=SYSTEM_ACTOR)
        session.commit()
    click.echo(f"token {token_id} revoked")


if __name__ == "__main__":
    sys.exit(main())
