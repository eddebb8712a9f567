"""The geographic core: asset models, spatial queries, coordinate systems, import and export.

Imports neither Flask nor MQTT; the server and the device gateway build on it.
"""
