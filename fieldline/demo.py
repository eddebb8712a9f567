"""`fieldline demo` / `make demo`: the whole system on one machine with the fixture city.

Steps: local services up, migrations, fixture import (an upsert, so reruns change nothing),
then the web server in the foreground until Ctrl-C.
"""

from __future__ import annotations

from pathlib import Path

import click

from fieldline.settings import Settings, get_settings

FIXTURE_CITY = Path(__file__).resolve().parent.parent / "fixtures" / "city"


def prepare(settings: Settings, fixtures: Path) -> None:
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
    engine.dispose()


def announce(settings: Settings) -> None:
    base = f"http://{settings.host}:{settings.port}"
    click.echo("")
    click.echo(f"Fieldline demo: {base}/")
    click.echo(
        f"  pipes in a box:       {base}/api/v1/assets/pipes?bbox=24.940,60.166,24.948,60.172"
    )
    click.echo(
        f"  what is near a point: {base}/api/v1/assets/around?lon=24.944&lat=60.169&radius_m=50"
    )
    click.echo(f"  readiness:            {base}/readyz")
    click.echo("Press Ctrl-C to stop.")
    click.echo("")


def run(settings: Settings | None = None, fixtures: Path = FIXTURE_CITY) -> None:
    from fieldline.server.wsgi import serve

    settings = settings or get_settings()
    prepare(settings, fixtures)
    announce(settings)
    serve(settings, settings.host, settings.port)


if __name__ == "__main__":
    run()
