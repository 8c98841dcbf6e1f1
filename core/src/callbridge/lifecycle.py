"""``Startable``: ``with`` for parts that run in the background of a process.

The HTTP server in a thread, the simulated PBX and the test kit's fakes and live services are
each started and stopped explicitly (a test restarts a service, or starts a fake late); the
``with`` form is the same two calls, so it is written once here.
"""

from __future__ import annotations

from types import TracebackType
from typing import Self

__all__ = ["Startable"]


class Startable:
    """``with part:`` is ``part.start()`` ... ``part.stop()``; subclasses provide both."""

    def start(self) -> Self:
        """Start; returns self."""
        raise NotImplementedError

    def stop(self) -> object:
        """Stop and release what ``start`` took (what it returns is the subclass's)."""
        raise NotImplementedError

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
