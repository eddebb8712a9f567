"""Engines, sessions and migrations for the asset database."""

from __future__ import annotations

from pathlib import Path

import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from sqlalchemy.orm import Session, sessionmaker

from fieldline.settings import to_sqlalchemy_url

# The migrations own the whole database (every part's tables), so they live beside the parts.
MIGRATIONS = Path(__file__).resolve().parent.parent / "migrations"


def make_engine(url: str, **kwargs: object) -> sa.Engine:
    options: dict[str, object] = {
        "pool_pre_ping": True,
        "pool_size": 5,
        "max_overflow": 10,
        # Times leave the database as UTC whatever the server's own time zone is. Requests
        # run small indexed queries, for which starting parallel workers costs more (~14 ms
        # measured) than it saves; a heavy report can still SET LOCAL its own.
        "connect_args": {"options": "-c timezone=UTC -c max_parallel_workers_per_gather=0"},
    }
    options.update(kwargs)
    return sa.create_engine(to_sqlalchemy_url(url), **options)


def make_sessionmaker(bind: sa.Engine | sa.Connection) -> sessionmaker[Session]:
    # With a Connection already inside a transaction (tests), a commit only releases a
    # savepoint, so each test can be rolled back whole.
    return sessionmaker(bind=bind, expire_on_commit=False, join_transaction_mode="create_savepoint")


def alembic_config(url: str) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.set_main_option("sqlalchemy.url", to_sqlalchemy_url(url).replace("%", "%%"))
    return config


def upgrade(url: str, revision: str = "head") -> None:
    command.upgrade(alembic_config(url), revision)


def downgrade(url: str, revision: str = "base") -> None:
    command.downgrade(alembic_config(url), revision)
