"""Fixtures of the Redis transport tests (defined in redis_fixtures.py, shared with other test folders)."""

from __future__ import annotations

from redis_fixtures import own_redis, redis_server, shared_redis, sources

__all__ = ["own_redis", "redis_server", "shared_redis", "sources"]
