"""What the crew app's page, manifest and service worker say: the page's configuration, the
web app manifest, and the list of files the service worker keeps for opening offline."""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from typing import Any

from fieldline.server.map.services import MAX_ZOOM, SOURCE_MAX_ZOOM

# The network layers the small map draws under the task (the dispatcher's map has them all).
MAP_LAYERS = ("roads", "pipes", "valves", "hydrants")
THEME = "#0b4f6c"


def page_config(
    *, api_prefix: str, tiles_url: Callable[[str], str], sw_url: str, scope: str
) -> dict[str, Any]:
    return {
        "api_prefix": api_prefix,
        "sw_url": sw_url,
        "scope": scope,
        "max_zoom": MAX_ZOOM,
        "source_max_zoom": SOURCE_MAX_ZOOM,
        "tiles": {name: tiles_url(name) for name in MAP_LAYERS},
    }


def manifest(*, scope: str, icons: Sequence[tuple[str, str, str]]) -> dict[str, Any]:
    """`icons`: (url, sizes, media type)."""
    return {
        "name": "Fieldline crew",
        "short_name": "Crew",
        "description": "Tasks, status and field reports for a Fieldline crew",
        "id": scope,
        "start_url": scope,
        "scope": scope,
        "display": "standalone",
        "orientation": "any",
        "background_color": "#ffffff",
        "theme_color": THEME,
        "icons": [{"src": url, "sizes": sizes, "type": kind} for url, sizes, kind in icons],
    }


def service_worker(script: str, *, version: str, shell: Sequence[str]) -> str:
    """The service worker's script with the shell's URLs in front: a rebuilt bundle changes
    the script's bytes, which is what makes browsers install the new worker."""
    prelude = {"version": version, "shell": list(shell)}
    return f"self.FIELDLINE_SHELL = {json.dumps(prelude)};\n{script}"
