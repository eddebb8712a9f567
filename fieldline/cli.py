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


if __name__ == "__main__":
    sys.exit(main())
