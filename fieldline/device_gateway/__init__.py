"""MQTT in and out: decoders per payload format, an ordered pipeline of small handlers,
batched storage, latest positions and live fan-out in Redis, dead-letter for what cannot be
used. Imports gis and the server's domain services, never Flask or the server's views."""
