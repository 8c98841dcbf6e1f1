"""The writer threads' queue discipline, shared by both backends.

Each backend has one writer thread fed by a ``SimpleQueue``: callers put work items, ``None``
asks the writer to stop. The writer blocks for the first item and then takes whatever else
is already queued, so one commit (SQLite) or one pipeline (Redis) serves everyone waiting.
"""

from __future__ import annotations

import queue
from typing import TypeVar

T = TypeVar("T")


def take_batch(source: queue.SimpleQueue[T | None], limit: int) -> tuple[list[T], bool]:
    """Wait for one item, add those already queued (up to ``limit``); True once told to stop."""
    first = source.get()
    if first is None:
        return [], True
    batch = [first]
    while len(batch) < limit:
        try:
            item = source.get_nowait()
        except queue.Empty:
            break
        if item is None:
            return batch, True
        batch.append(item)
    return batch, False


def leftovers(source: queue.SimpleQueue[T | None]) -> list[T]:
    """What is still queued after the writer stopped (each needs a clear error, not a hang)."""
    items: list[T] = []
    while True:
        try:
            item = source.get_nowait()
        except queue.Empty:
            return items
        if item is not None:
            items.append(item)
