"""The isolation answer as JSON: the lists crews and the call centre work from (public ids),
and a GeoJSON FeatureCollection of what the map draws, each feature with its `role`."""

from __future__ import annotations

import json
from typing import Any

from fieldline.server.network.services import IsolationAnswer

ROLES = (
    "valve_to_close",
    "valve_passed",
    "broken_pipe",
    "isolated_pipe",
    "pipe_without_supply",
    "meter",
    "hydrant",
)


def _feature(geometry: str, public_id: str, role: str, **properties: Any) -> dict[str, Any]:
    return {
        "type": "Feature",
        "id": public_id,
        "geometry": json.loads(geometry),
        "properties": {"role": role, **properties},
    }


def _features(answer: IsolationAnswer) -> list[dict[str, Any]]:
    trace, features = answer.trace, []
    for order, valve in enumerate(trace.valves_to_close, start=1):
        located = answer.valves[valve.id]
        features.append(_feature(located.geometry, located.public_id, ROLES[0], order=order))
    for passed in trace.passed_valves:
        located = answer.valves[passed.id]
        features.append(
            _feature(located.geometry, located.public_id, ROLES[1], reason=passed.reason)
        )
    for role, ids in (("isolated_pipe", trace.isolated_pipe_ids), (ROLES[4], trace.dry_pipe_ids)):
        for pipe_id in ids:
            located = answer.pipes[pipe_id]
            broken = located.public_id == trace.pipe
            features.append(
                _feature(located.geometry, located.public_id, ROLES[2] if broken else role)
            )
    features.extend(
        _feature(m.geometry, m.public_id, "meter", pipe_id=m.pipe) for m in answer.meters
    )
    features.extend(
        _feature(h.geometry, h.public_id, "hydrant", pipe_id=h.pipe, condition=h.attributes[0])
        for h in answer.hydrants
    )
    return features


def isolation_body(answer: IsolationAnswer) -> dict[str, Any]:
    trace, query = answer.trace, answer.query
    accounts = {m.attributes[0] for m in answer.meters if m.attributes[0] is not None}
    body: dict[str, Any] = {"pipe_id": trace.pipe}
    if answer.distance_m is not None:
        body["located"] = {
            "lon": query.lon,
            "lat": query.lat,
            "radius_m": query.radius_m,
            "distance_m": round(answer.distance_m, 1),
        }
    body |= {
        "valves_to_close": [
            {
                "order": order,
                "id": valve.public_id,
                "distance_m": valve.distance_m,
                "far_side_supplied": valve.far_side_supplied,
            }
            for order, valve in enumerate(trace.valves_to_close, start=1)
        ],
        "valves_passed": [{"id": v.public_id, "reason": v.reason} for v in trace.passed_valves],
        "closed_valves_on_boundary": list(trace.closed_valves),
        "isolated_pipes": list(trace.isolated_pipes),
        "pipes_without_supply": list(trace.dry_pipes),
        "meters": [
            {
                "id": m.public_id,
                "pipe_id": m.pipe,
                "customer_account": m.attributes[0],
                "service_address": m.attributes[1],
            }
            for m in answer.meters
        ],
        "customers": len(accounts),
        "hydrants": [
            {"id": h.public_id, "pipe_id": h.pipe, "condition": h.attributes[0]}
            for h in answer.hydrants
        ],
        "isolated_length_m": trace.isolated_length_m,
        "without_supply_length_m": trace.dry_length_m,
        "total_length_m": round(trace.total_length_m, 1),
        "sources_inside": list(trace.sources_inside),
        "supplied_before": trace.supplied_before,
        "geojson": {"type": "FeatureCollection", "features": _features(answer)},
    }
    return body
