"""Steps kept in the database until they are on the live stream: a table with `id` and
`announced_at` (an alarm's or an incident's steps) is its own outbox. Published after the
commit that stored them, oldest first, each marked as it goes, so a failure of Redis leaves
the rest for the next call and nothing stored is ever missing from the stream."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from fieldline.server.live.services import Live


def publish_unannounced(
    session: Session,
    live: Live,
    model: Any,
    now: datetime,
    events: Callable[[Sequence[Any]], Iterable[dict[str, Any]]],
) -> int:
    """Publish the rows of `model` not announced yet, `events(rows)` giving each its event in
    the same order, and mark them; the caller commits. Rows another publisher holds are
    skipped (it sends them)."""
    steps: list[Any] = list(
        session.scalars(
            sa.select(model)
            .where(model.announced_at.is_(None))
            .order_by(model.id)
            .with_for_update(skip_locked=True)
        )
    )
    if not steps:
        return 0
    for step, event in zip(steps, events(steps), strict=True):
        live.publish(event)
        step.announced_at = now
        session.flush()
    return len(steps)
