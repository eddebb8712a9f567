"""The `fieldline` command line."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from fieldline.settings import Settings, SettingsError, load_settings


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


@main.command("import")
@click.argument("path", type=click.Path(exists=True, path_type=Path))
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["geojson", "gpkg", "shp"]),
    default=None,
    help="File format; by default from the file name.",
)
@click.option(
    "--crs", default=None, help="CRS of the coordinates when the file names none (EPSG:N)."
)
@click.option("--layer", default=None, help="Target asset layer (or the GeoPackage layer to read).")
def import_command(path: Path, fmt: str | None, crs: str | None, layer: str | None) -> None:
    """Load assets from a file or a folder of files; bad features are reported, good ones kept."""
    from fieldline.gis.crs import parse_crs
    from fieldline.gis.db import make_engine, make_sessionmaker
    from fieldline.gis.errors import GisError
    from fieldline.gis.importer import count_features, find_sources, import_source

    settings = _settings()
    try:
        sources = find_sources(path, layer, fmt)
        source_crs = parse_crs(crs, "--crs") if crs else None
        total = sum(count_features(source) for source in sources)
        engine = make_engine(settings.database_url)
        summaries = []
        with (
            make_sessionmaker(engine)() as session,
            click.progressbar(length=total, label="importing", file=sys.stderr) as bar,
        ):
            for source in sources:
                summaries.append(import_source(session, source, source_crs, bar.update))
    except GisError as exc:
        raise click.ClickException(exc.detail) from None
    rejected = 0
    for summary in summaries:
        click.echo(
            f"{summary.layer:<20} {summary.source:<28} read {summary.read:>7}  "
            f"inserted {summary.inserted:>7}  updated {summary.updated:>7}  "
            f"rejected {len(summary.rejected):>5}"
        )
        for rejection in summary.rejected:
            click.echo(f"  rejected {summary.source} {rejection}")
        rejected += len(summary.rejected)
    if rejected:
        click.echo(f"{rejected} feature(s) rejected; the others were stored", err=True)
        sys.exit(3)


@main.command()
@click.option("--host", default=None, help="Address to listen on [FIELDLINE_HOST].")
@click.option("--port", type=int, default=None, help="Port to listen on [FIELDLINE_PORT].")
def serve(host: str | None, port: int | None) -> None:
    """The web server: REST API, OGC API and the map."""
    from fieldline.server.wsgi import serve as run

    settings = _settings()
    run(settings, host or settings.host, port or settings.port)


@main.command()
@click.option(
    "--fixtures",
    type=click.Path(exists=True, file_okay=False, path_type=Path),
    default=None,
    help="Folder of asset files to load (default: the fixture city).",
)
def demo(fixtures: Path | None) -> None:
    """Everything at once on this machine, with the fixture city; prints the URL."""
    from fieldline import demo as demo_module
    from fieldline.gis.errors import GisError
    from fieldline.local_services import ServicesError

    try:
        demo_module.run(_settings(), fixtures or demo_module.FIXTURE_CITY)
    except ServicesError as exc:
        raise click.ClickException(str(exc)) from None
    except GisError as exc:
        raise click.ClickException(exc.detail) from None


if __name__ == "__main__":
    sys.exit(main())
