"""The migrations build exactly the tables the models describe."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from fieldline.schema import metadata


def _table_name(item: Any) -> str:
    table = getattr(item, "table", None)
    return str(getattr(table, "name", None) or getattr(item, "name", "") or "")


def _is_expression_index(item: Any) -> bool:
    return isinstance(item, sa.Index) and any(
        not isinstance(element, sa.Column) for element in item.expressions
    )


def differences(diffs: list[Any]) -> list[Any]:
    """What matters: not the daily partitions nor PostGIS's own table (no models), nor
    expression indexes, which alembic cannot compare (it reports each as removed and added)."""
    flat = [d for diff in diffs for d in (diff if isinstance(diff, list) else [diff])]
    kept = []
    for diff in flat:
        op, item = diff[0], diff[1]
        name = _table_name(item)
        if name == "spatial_ref_sys" or "_p2" in name or name.endswith("_default"):
            continue
        if op in ("add_index", "remove_index") and _is_expression_index(item):
            other = "remove_index" if op == "add_index" else "add_index"
            if any(o == other and getattr(i, "name", None) == item.name for o, i, *_ in flat):
                continue
        kept.append(diff)
    return kept


def test_migrations_match_the_models(engine: sa.Engine) -> None:
    with engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={"compare_type": True})
        found = differences(compare_metadata(context, metadata))
    assert found == [], "\n".join(repr(diff) for diff in found)
