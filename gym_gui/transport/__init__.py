"""Transports that carry TelemetryEvents between machines (Qt-free): Redis Streams (docs/transport-redis.md)."""
