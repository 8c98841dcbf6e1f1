"""An SSE client for the end-to-end tests: httpx streaming on a thread, events parsed.

It reads callbridge's agent stream exactly as a browser's EventSource would (``id``,
``event``, ``data`` lines; a blank line ends a message) and keeps every message, so a test
can wait for the pops it expects without sleeping.
"""

from __future__ import annotations

import contextlib
import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import httpx


@dataclass(frozen=True)
class SseMessage:
    """One message of the stream."""

    id: int
    event: str
    data: dict[str, Any]


class SseReader:
    """Reads ``/v1/agents/{extension}/events`` until ``close``."""

    def __init__(self, base_url: str, extension: str, token: str) -> None:
        self.url = f"{base_url}/v1/agents/{extension}/events"
        self.token = token
        self.messages: list[SseMessage] = []
        self._cond = threading.Condition()
        self._connected = False
        self._closed = False
        self._client = httpx.Client(timeout=httpx.Timeout(10.0, read=None))
        self._response: httpx.Response | None = None
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, daemon=True, name=f"sse-{extension}")

    def start(self, timeout: float = 15.0) -> SseReader:
        """Connect and wait for the server's first comment (the stream is live)."""
        self._thread.start()
        with self._cond:
            if not self._cond.wait_for(lambda: self._connected or self._error, timeout):
                raise TimeoutError(f"no connection to {self.url}")
        if self._error is not None:
            raise RuntimeError(f"stream failed: {self._error}")
        return self

    def _run(self) -> None:
        try:
            headers = {"Authorization": f"Bearer {self.token}"}
            with self._client.stream("GET", self.url, headers=headers) as response:
                self._response = response
                response.raise_for_status()
                fields: dict[str, str] = {}
                for line in response.iter_lines():
                    if line.startswith(":"):
                        with self._cond:
                            self._connected = True
                            self._cond.notify_all()
                        continue
                    if line == "":
                        if "data" in fields:
                            self._add(fields)
                        fields = {}
                        continue
                    name, _, value = line.partition(":")
                    fields[name] = value.removeprefix(" ")
        except BaseException as exc:  # reported to the test through start() and wait_for()
            if not self._closed:
                with self._cond:
                    self._error = exc
                    self._cond.notify_all()

    def _add(self, fields: dict[str, str]) -> None:
        message = SseMessage(
            int(fields.get("id", "0")), fields.get("event", "message"), json.loads(fields["data"])
        )
        with self._cond:
            self.messages.append(message)
            self._cond.notify_all()

    def wait_for(
        self, condition: Callable[[list[SseMessage]], bool], timeout: float = 30.0
    ) -> list[SseMessage]:
        """Wait until ``condition(messages)`` holds; return the messages (TimeoutError else)."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while not condition(list(self.messages)):
                if self._error is not None:
                    raise RuntimeError(f"stream failed: {self._error}")
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise TimeoutError(f"condition not met; got {self.messages}")
                self._cond.wait(remaining)
            return list(self.messages)

    def close(self) -> None:
        """Drop the connection (the reading thread ends by the next heartbeat at the latest)."""
        self._closed = True
        if self._response is not None:
            with contextlib.suppress(Exception):  # closing from another thread may race
                self._response.close()
        self._client.close()
        self._thread.join(timeout=0.5)


def pops_of(messages: list[SseMessage], user_call_ids: set[str]) -> list[SseMessage]:
    """The pop messages of the given user calls, in order."""
    return [
        m
        for m in messages
        if m.event == "pop" and str(m.data["call"]["user_call_id"]) in user_call_ids
    ]
