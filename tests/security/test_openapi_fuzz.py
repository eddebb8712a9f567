"""Schemathesis against both OpenAPI documents, in-process on the test database inside the
rolled-back transaction: whatever a client sends, no operation answers 5xx.

Each operation is a test of its own (a transaction of its own), with a few examples: the point
is breadth over every route and parameter, kept to a few minutes in all.
"""

from __future__ import annotations

import os

import pytest
import schemathesis
import sqlalchemy as sa
from flask import Flask
from hypothesis import HealthCheck, Phase, given
from hypothesis import settings as fuzz_settings
from hypothesis import strategies as st
from schemathesis.checks import not_a_server_error

from fieldline.gis.layers import LAYERS
from fieldline.server import create_app
from fieldline.settings import Settings, load_settings
from tests.security.admin import admin_app

DOCUMENTS = {"api": "/api/v1/openapi.json", "ogc": "/ogc/api?f=json"}
# The live stream never ends by itself; tests/server cover it.
SKIPPED = {"GET /api/v1/live"}
EXAMPLES = int(os.environ.get("FIELDLINE_FUZZ_EXAMPLES", "12"))


def _labels(path: str) -> list[str]:
    # The documents are built from the routes and settings alone: no database is touched.
    schema = schemathesis.openapi.from_wsgi(
        path, create_app(load_settings(anonymous_role="admin", secret_key="s" * 32))
    )
    labels = [result.ok().label for result in schema.get_all_operations()]
    return [label for label in labels if label not in SKIPPED]


OPERATIONS = [(name, label) for name, path in DOCUMENTS.items() for label in _labels(path)]


def known_ids(app: Flask) -> dict[str, list[str]]:
    """Ids that exist, so that half the cases reach past the lookup: the fixture city's
    first asset of each layer and station, and a crew and a task made here."""
    client = app.test_client()
    crew = client.post("/api/v1/crews", json={"name": "Fuzz crew", "skills": ["inspection"]})
    task = client.post(
        "/api/v1/tasks",
        json={"kind": "inspection", "priority": "P3", "source": "plan", "site": [24.944, 60.169]},
    )
    assert crew.status_code == task.status_code == 201, (crew.json, task.json)
    layers = [layer for layer in LAYERS]
    public_ids = [
        feature["id"]
        for layer in layers
        for feature in client.get(f"/api/v1/assets/{layer}?limit=1").json["features"]
    ]
    stations = [station["id"] for station in client.get("/api/v1/stations").json["stations"]]
    return {
        "layer_name": layers,
        "collectionId": layers,
        "public_id": public_ids,
        "featureId": public_ids,
        "crew_id": [crew.json["id"]],
        "task_id": [task.json["id"]],
        "station_id": stations[:3],
    }


@pytest.mark.slow
# The in-process transport leaves streamed answers (exports' files) to the garbage collector.
@pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")
@pytest.mark.parametrize(("document", "label"), OPERATIONS, ids=[" ".join(o) for o in OPERATIONS])
def test_no_operation_answers_a_server_error(
    settings: Settings, connection: sa.Connection, document: str, label: str
) -> None:
    app = admin_app(settings, connection)
    schema = schemathesis.openapi.from_wsgi(DOCUMENTS[document], app)
    method, path = label.split(" ", 1)
    operation = schema[path][method]
    known = known_ids(app)

    @given(case=operation.as_strategy(), data=st.data())
    @fuzz_settings(
        max_examples=EXAMPLES,
        deadline=None,
        database=None,
        derandomize=True,
        phases=[Phase.explicit, Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    def run(case: schemathesis.Case, data: st.DataObject) -> None:
        for name in list(case.path_parameters or {}):
            if known.get(name) and data.draw(st.booleans(), label=f"known {name}"):
                case.path_parameters[name] = data.draw(st.sampled_from(known[name]), label=name)
        case.call_and_validate(checks=[not_a_server_error])

    run()
