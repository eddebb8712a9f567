"""The `fieldline` command line."""

from __future__ import annotations

import sys

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


@main.command()
@click.option("--host", default=None, help="Address to listen on [FIELDLINE_HOST].")
@click.option("--port", type=int, default=None, help="Port to listen on [FIELDLINE_PORT].")
def serve(host: str | None, port: int | None) -> None:
    """The web server: REST API, OGC API and the map."""
    from fieldline.server.wsgi import serve as run

    settings = _settings()
    run(settings, host or settings.host, port or settings.port)


if __name__ == "__main__":
    sys.exit(main())
