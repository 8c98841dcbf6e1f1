"""Journal work of other routes never runs on the event loop that answers the PBX.

The PBX's own database write waits for ``/pbx/events`` to answer, and every route shares one
event loop. A route that queried the journal on that loop (``/metrics`` counts deliveries at
scrape time; the click-to-call routes read and write Originates) would hold the PBX's answer
for as long as the query takes. Here the query is held open on purpose, with a real SQLite
journal behind it, and the ingress must still answer.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from server_support import API_TOKEN, INGRESS_TOKEN, LiveServer, make_settings

from callbridge.journal.sqlite import SqliteJournal
from callbridge.models import Originate
from callbridge.server.app import create_app
from callbridge.server.services import Services

RING = {
    "ssn_event": "16",
    "sender_type": "0",
    "call_id": "000012A0",
    "number": "0612345678",
    "ext": "201",
    "token": INGRESS_TOKEN,
}


class GatedJournal(SqliteJournal):
    """A real SQLite journal; the read named ``gated`` waits for ``gate`` once armed."""

    def __init__(self, path: Path) -> None:
        super().__init__(path)
        self.gated = ""
        self.entered = threading.Event()
        self.gate = threading.Event()

    def _hold(self, name: str) -> None:
        if name == self.gated:
            self.entered.set()
            self.gate.wait(60)

    def delivery_counts(self) -> list[tuple[str, str, int]]:
        self._hold("delivery_counts")
        return super().delivery_counts()

    def get_originate(self, external_id: str) -> Originate | None:
        self._hold("get_originate")
        return super().get_originate(external_id)


@pytest.fixture
def served(tmp_path: Path) -> Iterator[tuple[GatedJournal, str]]:
    journal = GatedJournal(tmp_path / "journal.sqlite3")
    app = create_app(Services(settings=make_settings(tmp_path), journal=journal))
    try:
        with LiveServer().serve(app) as server:
            yield journal, server.url
    finally:
        journal.gate.set()
        journal.close()


def _in_thread(fn: Any) -> tuple[threading.Thread, list[Any]]:
    out: list[Any] = []
    thread = threading.Thread(target=lambda: out.append(fn()), daemon=True)
    thread.start()
    return thread, out


def _pbx_event_answered_while_held(journal: GatedJournal, url: str, request: Any) -> None:
    thread, out = _in_thread(request)
    assert journal.entered.wait(30), "the held journal read was never reached"
    try:
        # Generous: a loop blocked by the held read would not answer until it is released.
        answer = httpx.get(f"{url}/pbx/events", params=RING, timeout=20)
    finally:
        journal.gate.set()
    thread.join(30)
    assert answer.status_code == 200, answer.text
    assert answer.text.startswith("ok ")
    assert out and out[0].status_code in (200, 404)


def test_metrics_scrape_does_not_hold_the_pbx_answer(served: tuple[GatedJournal, str]) -> None:
    journal, url = served
    journal.gated = "delivery_counts"
    _pbx_event_answered_while_held(journal, url, lambda: httpx.get(f"{url}/metrics", timeout=60))


def test_click_to_call_state_does_not_hold_the_pbx_answer(
    served: tuple[GatedJournal, str],
) -> None:
    journal, url = served
    journal.create_originate(
        Originate(
            external_id="cb-held",
            user="auth-mario@acme",
            extension="201",
            number="0612345678",
            created_at=datetime.now(UTC),
        )
    )
    journal.gated = "get_originate"
    _pbx_event_answered_while_held(
        journal,
        url,
        lambda: httpx.get(
            f"{url}/v1/calls/cb-held",
            headers={"Authorization": f"Bearer {API_TOKEN}"},
            timeout=60,
        ),
    )
