"""OGC API - Features at /ogc."""
