"""The Flask application: REST API, OGC API - Features, dispatcher services and the web map."""

from fieldline.server.app import create_app

__all__ = ["create_app"]
