"""Test data for the task tests: the fixture city's assets as written in its files (the
independent side of the comparisons), crews, and a clock."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy.orm import Session

from fieldline.server.crews.models import Crew
from fieldline.server.crews.services import create_crew
from tests.conftest import load_fixture

NOW = datetime(2026, 11, 24, 8, 0, tzinfo=UTC)


@pytest.fixture(scope="session")
def city() -> dict[str, list[dict[str, Any]]]:
    return {layer: load_fixture(layer) for layer in ("pipes", "valves", "hydrants", "meters")}


def caller() -> dict[str, str]:
    return {"name": "Aino Virtanen", "phone": "+358 40 123 4567"}


def repair_on(pipe_id: str, **changes: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "kind": "repair",
        "priority": "P1",
        "source": "call_centre",
        "title": "Burst main",
        "caller": caller(),
        "assets": [{"layer": "pipes", "id": pipe_id}],
        "required_skills": ["pipe_repair", "excavation"],
    }
    body.update(changes)
    return {key: value for key, value in body.items() if value is not None}


@pytest.fixture
def crews(session: Session) -> list[Crew]:
    return [
        create_crew(session, f"Crew {name}", skills=["pipe_repair", "valve_operation"])
        for name in ("north", "south")
    ]
