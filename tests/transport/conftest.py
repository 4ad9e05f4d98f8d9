"""Fixtures of the Redis transport tests (defined in redis_fixtures.py, shared with other test folders)."""

from __future__ import annotations

from redis_fixtures import bridge_state_home, own_redis, redis_server, shared_redis, sources

__all__ = ["bridge_state_home", "own_redis", "redis_server", "shared_redis", "sources"]
