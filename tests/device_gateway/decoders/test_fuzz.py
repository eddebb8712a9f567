"""Whatever arrives, a decoder answers with messages or DecodeError, never another exception."""

from __future__ import annotations

import json
from types import ModuleType

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fieldline.device_gateway.decoders import (
    meter,
    own_json,
    owntracks,
    report,
    scada_json,
    task_status,
)
from fieldline.device_gateway.messages import DecodeError

DECODERS = {
    own_json: "fieldline/crews/C-000001/position",
    owntracks: "owntracks/anna/phone",
    task_status: "fieldline/crews/C-000001/tasks/T-1/status",
    report: "fieldline/crews/C-000001/reports",
    scada_json: "fieldline/scada/S-000001",
    meter: "fieldline/meters/M-000001/reading",
}
FIELDS = [
    "_type",
    "ts",
    "tst",
    "lat",
    "lon",
    "acc",
    "vel",
    "status",
    "kind",
    "metrics",
    "volume_m3",
    "changes",
    "photos",
    "event",
    "created_at",
    "note",
    "acc_m",
]
scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(10**30), max_value=10**30)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=30)
    | st.sampled_from(["location", "lwt", "transition", "leak", "on_site", "2026-11-23T08:00Z"])
)
documents = st.recursive(
    scalars,
    lambda inner: (
        st.lists(inner, max_size=4)
        | st.dictionaries(st.sampled_from(FIELDS) | st.text(max_size=8), inner, max_size=8)
    ),
    max_leaves=20,
)


def _survives(decoder: ModuleType, topic: str, payload: bytes) -> None:
    try:
        decoder.decode(topic, payload)
    except DecodeError as exc:
        assert exc.reason and " " not in exc.reason


@pytest.mark.parametrize("decoder", DECODERS, ids=lambda m: m.__name__.rsplit(".", 1)[-1])
@settings(max_examples=150, deadline=None)
@given(payload=st.binary(max_size=200))
def test_random_bytes(decoder: ModuleType, payload: bytes) -> None:
    _survives(decoder, DECODERS[decoder], payload)


@pytest.mark.parametrize("decoder", DECODERS, ids=lambda m: m.__name__.rsplit(".", 1)[-1])
@settings(max_examples=200, deadline=None)
@given(document=documents)
def test_random_json(decoder: ModuleType, document: object) -> None:
    _survives(decoder, DECODERS[decoder], json.dumps(document).encode())


@pytest.mark.parametrize("decoder", DECODERS, ids=lambda m: m.__name__.rsplit(".", 1)[-1])
@settings(max_examples=100, deadline=None)
@given(topic=st.text(max_size=60))
def test_random_topics(decoder: ModuleType, topic: str) -> None:
    _survives(decoder, topic, b'{"_type": "location", "ts": 1, "tst": 1, "lat": 1, "lon": 1}')
