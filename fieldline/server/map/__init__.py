"""The dispatcher's web map: the page, its bundled scripts, and vector tiles of the layers."""
