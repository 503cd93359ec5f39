"""Redis commands on a connection of their own per thread, for the few calls every request makes.

redis-py's client path around a command (pool checkout and release, a health poll, retry and
observability wrappers) costs about as much CPU as the command's own round trip
(docs/PERFORMANCE.md). `direct.execute` sends one packed command on this thread's connection,
made from the client pool's own settings, and reads the reply. Used for the response cache's
scripts (softfactory/cache.py) and the token cache read (platform_core/authentication.py).
"""

from __future__ import annotations

import os
import threading
from typing import Any

from django.core.cache import caches
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import RedisError


class DirectConnections:
    """One connection per thread, process and pool: a new pool (another LOCATION), a fork or a new
    thread gets a new one. Errors are redis-py's, so callers handle them as they would its client's."""

    def __init__(self) -> None:
        self._local = threading.local()

    def execute(self, client: Any, *args: Any) -> Any:
        pool = client.connection_pool
        local = self._local
        key = (id(pool), os.getpid())
        if getattr(local, "key", None) != key:
            # A connection inherited over a fork is left alone: its socket is the parent's.
            local.connection = pool.connection_class(**pool.connection_kwargs)
            local.key = key
        connection = local.connection
        reused = connection._sock is not None
        try:
            try:
                return self._call(connection, args)
            except RedisConnectionError:
                if not reused:
                    raise
                # A connection idle across a Redis restart fails at once: once more, on a new one.
                connection.disconnect()
                return self._call(connection, args)
        except BaseException:
            # Whatever stopped the call (a timeout, an error reply, an interruption mid-reply),
            # the next one starts on a new connection, never after a half-read reply.
            connection.disconnect()
            raise

    @staticmethod
    def _call(connection: Any, args: tuple[Any, ...]) -> Any:
        connection.send_packed_command(connection.pack_command(*args), check_health=False)
        return connection.read_response()


direct = DirectConnections()


def cache_get(alias: str, key: str) -> Any:
    """`caches[alias].get(key)` of a django-redis cache, on the direct connection: the same key
    and decoding; None on a miss, and on any Redis error (as IGNORE_EXCEPTIONS would answer)."""
    client = caches[alias].client  # type: ignore[attr-defined]
    try:
        raw = direct.execute(client.get_client(write=False), "GET", client.make_key(key))
    except RedisError:
        return None
    return None if raw is None else client.decode(raw)
