"""Values read in the last few seconds, kept per process: for what nearly every request reads and staff change seldom
(tariffs, product catalogues, API tokens). The price: a change made in another process applies here within `ttl`.

When a value runs out, one thread reads it again while the others go on with the old one for that moment, so a burst
of requests arriving as it runs out reads it once rather than once each (a catalogue is thousands of rows).
"""

import threading
import time
from collections.abc import Callable, Hashable


class Recent[K: Hashable, V]:
    def __init__(self, ttl: float, most: int = 1000):
        self.ttl, self.most = ttl, most
        self._kept: dict[K, tuple[float, V]] = {}
        self._loading: set[K] = set()
        self._lock = threading.Lock()

    def get(self, key: K, load: Callable[[], V], keep: Callable[[V], bool] = lambda value: True) -> V:
        """The value kept for `key`, else `load()`'s, kept when `keep` says so."""
        hit = self._kept.get(key)
        if hit is not None and hit[0] > time.monotonic():
            return hit[1]
        with self._lock:
            if hit is not None and key in self._loading:
                return hit[1]
            self._loading.add(key)
        try:
            value = load()
        finally:
            with self._lock:
                self._loading.discard(key)
        if keep(value):
            if len(self._kept) >= self.most:
                self._kept.clear()
            self._kept[key] = (time.monotonic() + self.ttl, value)
        return value

    def forget(self, key: K) -> None:
        """After a change made in this process: the next `get` loads it again."""
        self._kept.pop(key, None)

    def forget_where(self, stale: Callable[[V], bool]) -> None:
        for key, (_, value) in list(self._kept.items()):
            if stale(value):
                self._kept.pop(key, None)
