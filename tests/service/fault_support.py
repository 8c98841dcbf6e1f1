"""Real faults for the service tests: a tiny disk for the data directory, a webhook receiver."""

from __future__ import annotations

import contextlib
import errno
import json
import os
import subprocess
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from callbridge.testing import FakeAnswer, FakeHttpService, FakeRequest

WEBHOOK_SECRET = "webhook-secret-0123456789"


@contextlib.contextmanager
def tiny_disk(path: Path, size: str = "5m", options: str = "") -> Iterator[Path]:
    """A tmpfs of ``size`` mounted at ``path`` (needs root); skips the test when it cannot.

    ``options``: more mount options (``ro``: a read-only disk, which even root cannot write).
    """
    if os.geteuid() != 0:
        pytest.skip("mounting a small tmpfs needs root")
    path.mkdir(parents=True, exist_ok=True)
    mount_options = ",".join(filter(None, [f"size={size}", options]))
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", mount_options, "tmpfs", str(path)],
        capture_output=True,
        text=True,
        check=False,
    )
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {mounted.stderr.strip()}")
    try:
        yield path
    finally:
        subprocess.run(["umount", "-l", str(path)], check=False)


def fill(folder: Path) -> Path:
    """Write a file in ``folder`` until its disk is full (ENOSPC); return the file."""
    filler = folder / "filler"
    chunk = 1 << 16
    with filler.open("ab", buffering=0) as out:
        while chunk:
            try:
                out.write(b"\0" * chunk)
            except OSError as exc:
                if exc.errno != errno.ENOSPC:
                    raise
                chunk //= 2
    return filler


class Receiver(FakeHttpService):
    """A webhook receiver: counts call records per Idempotency-Key; ``on_record`` runs first.

    ``answer`` decides each record's status (200 unless it says otherwise); a receiver that
    deduplicates on the key (as the webhook docs ask) keeps one activity per key: ``stored``.
    """

    def __init__(self) -> None:
        super().__init__()
        self.posts: Counter[str] = Counter()
        self.stored: dict[str, dict[str, object]] = {}
        self.on_record: Callable[[str], None] = lambda key: None
        self.answer: Callable[[str], int] = lambda key: 200
        self.start()
        self.hook_url = f"{self.url}/hook"

    def route(self, request: FakeRequest) -> FakeAnswer:
        key = request.headers.get("idempotency-key")
        status = 200
        if request.method == "POST" and key:
            self.on_record(key)
            status = self.answer(key)
            with self.lock:
                self.posts[key] += 1
                if status == 200:
                    self.stored.setdefault(key, json.loads(request.raw))
        return FakeAnswer(status, b"ok", content_type="text/plain")

    def count(self, key: str) -> int:
        with self.lock:
            return self.posts[key]

    def total(self) -> int:
        with self.lock:
            return sum(self.posts.values())

    def env(self) -> dict[str, str]:
        """The service's settings for this receiver as its only connector (no pops)."""
        return {
            "CALLBRIDGE_CONNECTORS": "webhook",
            "CALLBRIDGE_WEBHOOK_URLS": self.hook_url,
            "CALLBRIDGE_WEBHOOK_SECRET": WEBHOOK_SECRET,
            "CALLBRIDGE_WEBHOOK_POPS": "false",
        }
