"""Crews and tasks written straight through the models, with the times a test needs."""

from __future__ import annotations

import itertools
from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session

from fieldline.server.crews.models import Crew
from fieldline.server.tasks.models import Task

_names = itertools.count(1)
# A point on a street of the fixture city (central Helsinki).
SITE = (24.9414, 60.1699)
CALLER = {"name": "Aino Caller", "phone": "+358 40 123 4567", "email": "aino@example.org"}


def make_crew(session: Session, **fields: Any) -> Crew:
    crew = Crew(name=f"sla crew {next(_names)}", mode=fields.pop("mode", "vehicle"), **fields)
    session.add(crew)
    session.flush()
    return crew


def make_task(
    session: Session,
    created_at: datetime,
    *,
    crew: Crew | None = None,
    state: str | None = None,
    site: tuple[float, float] | None = SITE,
    **fields: Any,
) -> Task:
    task = Task(
        kind=fields.pop("kind", "repair"),
        priority=fields.pop("priority", "P1"),
        source=fields.pop("source", "call_centre"),
        title=fields.pop("title", "Burst main"),
        created_by="test",
        created_at=created_at,
        updated_at=created_at,
        state=state or ("assigned" if crew is not None else "created"),
        crew_id=crew.id if crew is not None else None,
        site=f"SRID=4326;POINT({site[0]} {site[1]})" if site else None,
        **fields,
    )
    session.add(task)
    session.flush()
    return task
