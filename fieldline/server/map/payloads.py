"""The configuration the map page hands its script, as JSON inside the page: where the tiles,
the API and the live stream are, which layers exist from which zoom, the base map, and the
box to open on. Colours and the legend live with the script (web/src/layers.js)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fieldline.gis.queries import Bounds
from fieldline.server.map.services import MAX_ZOOM, SOURCE_MAX_ZOOM, TILE_LAYERS, TileLayer
from fieldline.server.tasks.services import KIND_RULES, KIND_TITLES
from fieldline.settings import Settings


def _layer_json(tile_layer: TileLayer, tiles_url: str) -> dict[str, Any]:
    thinning = tile_layer.thinning
    return {
        "name": tile_layer.name,
        "title": tile_layer.layer.title,
        "id_prefix": tile_layer.layer.model.id_prefix,
        "geometry_type": tile_layer.layer.geometry_type,
        "min_zoom": tile_layer.min_zoom,
        "tiles": tiles_url,
        "thinning": None
        if thinning is None
        else {
            "below_zoom": thinning.below_zoom,
            "attribute": thinning.attribute,
            "minimum": thinning.minimum,
        },
    }


# The roles that make an asset a task's subject; a patrol's checkpoints are only along its way.
_SUBJECT_ROLES = ("target", "meter", "pipe")


def task_kinds(layer_name: str) -> list[dict[str, str]]:
    """The kinds of task that can be made at one asset of the layer ("create task here")."""
    return [
        {"kind": kind, "title": KIND_TITLES[kind]}
        for kind, rule in KIND_RULES.items()
        if rule.roles.get(layer_name) in _SUBJECT_ROLES and rule.least <= 1
    ]


def page_config(
    settings: Settings,
    extent: Bounds | None,
    *,
    tiles_url: Callable[[str], str],
    api_prefix: str,
    live_url: str,
    ready_url: str,
) -> dict[str, Any]:
    """`tiles_url(layer)` gives a layer's tile URL template with `{z}`, `{x}` and `{y}`."""
    base = None
    if settings.map_base_tiles_url:
        base = {
            "url": settings.map_base_tiles_url,
            "attribution": settings.map_base_tiles_attribution,
        }
    return {
        "api_prefix": api_prefix,
        "live_url": live_url,
        "ready_url": ready_url,
        "extent": list(extent) if extent is not None else None,
        "max_zoom": MAX_ZOOM,
        "source_max_zoom": SOURCE_MAX_ZOOM,
        "base_tiles": base,
        # A crew whose latest fix is older is drawn as without signal (the API's `no_signal`).
        "crew_stale_after_s": settings.crew_stale_after_s,
        "layers": [_layer_json(layer, tiles_url(layer.name)) for layer in TILE_LAYERS.values()],
        "task_kinds": {name: task_kinds(name) for name in TILE_LAYERS if task_kinds(name)},
    }
