"""Alembic environment: online migrations against the URL set by fieldline.gis.db."""

from __future__ import annotations

import sqlalchemy as sa
from alembic import context

from fieldline.schema import metadata

config = context.config
target_metadata = metadata

# PostGIS and pgRouting own tables of their own; migrations leave them alone.
FOREIGN_TABLES = {"spatial_ref_sys", "topology", "layer"}


def include_object(
    obj: object, name: str | None, type_: str, reflected: bool, compare_to: object
) -> bool:
    return not (type_ == "table" and name in FOREIGN_TABLES)


def run_migrations_online() -> None:
    url = config.get_main_option("sqlalchemy.url")
    assert url, "fieldline.gis.db.alembic_config sets sqlalchemy.url"
    connectable = sa.create_engine(url, poolclass=sa.NullPool)
    with connectable.connect() as connection:
        context.configure(
            connection=connection,
            target_metadata=target_metadata,
            include_object=include_object,
            compare_type=True,
        )
        with context.begin_transaction():
            context.run_migrations()


run_migrations_online()
