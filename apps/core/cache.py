"""The shared cache's Redis backend (settings.CACHES): Django's, with one client per process.

Django keeps a cache object per async context, so every request gets a new one, and its Redis client makes a
connection pool per cache object and a new `redis.Redis` (a dict of ~160 reply callbacks) per call: every API request
opened a Redis connection for its rate-limit count. Here all the process's cache objects share one client per
server (redis-py's clients and pools are thread-safe; a pool reconnects after a fork).
"""

import threading

from django.core.cache.backends import redis
from django.utils.functional import cached_property

_clients: dict[tuple, "_SharedClient"] = {}
_lock = threading.Lock()


class _SharedClient(redis.RedisCacheClient):
    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._redis: dict[int, object] = {}

    def get_client(self, key=None, *, write=False):
        index = self._get_connection_pool_index(write)
        client = self._redis.get(index)
        if client is None:
            with _lock:
                client = self._redis.get(index)
                if client is None:
                    client = self._redis[index] = self._client(connection_pool=self._get_connection_pool(write))
        return client


class RedisCache(redis.RedisCache):
    @cached_property
    def _cache(self):
        key = (tuple(self._servers), repr(sorted(self._options.items())))
        with _lock:
            if key not in _clients:
                _clients[key] = _SharedClient(self._servers, **self._options)
            return _clients[key]
