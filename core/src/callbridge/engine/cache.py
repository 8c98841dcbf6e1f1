"""A small thread-safe TTL cache for contact lookups.

The answer event and a caller who rings again within minutes must not cost another CRM
request (CRMs rate-limit searches hard). Entries expire after their own TTL, so "not found"
can be kept shorter than a found contact (a record created while the phone rang should show
up soon). The size is bounded; the least recently used entry goes first.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Hashable
from typing import Generic, TypeVar

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")


class _Missing:
    """Marker for "not in the cache", distinct from a cached None."""

    __slots__ = ()

    def __repr__(self) -> str:
        return "MISSING"


MISSING = _Missing()


class TTLCache(Generic[K, V]):
    """Key -> value with a per-entry time to live, bounded in size (LRU eviction)."""

    def __init__(self, maxsize: int, *, clock: Callable[[], float] = time.monotonic) -> None:
        self._maxsize = maxsize
        self._clock = clock
        self._data: OrderedDict[K, tuple[float, V]] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: K) -> V | _Missing:
        """The cached value, or ``MISSING`` when absent or expired."""
        with self._lock:
            entry = self._data.get(key)
            if entry is None:
                return MISSING
            expires, value = entry
            if expires <= self._clock():
                del self._data[key]
                return MISSING
            self._data.move_to_end(key)
            return value

    def set(self, key: K, value: V, ttl: float) -> None:
        """Keep ``value`` for ``ttl`` seconds (a TTL of 0 or less stores nothing)."""
        if ttl <= 0 or self._maxsize <= 0:
            return
        with self._lock:
            self._data[key] = (self._clock() + ttl, value)
            self._data.move_to_end(key)
            while len(self._data) > self._maxsize:
                self._data.popitem(last=False)

    def clear(self) -> None:
        """Forget everything."""
        with self._lock:
            self._data.clear()

    def __len__(self) -> int:
        with self._lock:
            return len(self._data)
