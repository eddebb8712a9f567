"""GeoJSON text around features that PostgreSQL already encoded (queries.select_documents).

Feature texts are joined as they are, never parsed and encoded again.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from typing import Any

from fieldline.gis.queries import json_default

_encode = json.JSONEncoder(ensure_ascii=False, default=json_default, separators=(",", ":")).encode


def dumps(value: Any) -> str:
    return _encode(value)


def collection_json(features: Iterable[str], members: Mapping[str, Any]) -> str:
    tail = "".join("," + _encode(key) + ":" + _encode(value) for key, value in members.items())
    return '{"type":"FeatureCollection","features":[' + ",".join(features) + "]" + tail + "}"
