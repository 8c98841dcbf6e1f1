"""A lookup that failed, or had not answered, when the call ended is done before logging.

Over the real dispatcher, journal and plugin manager: the activity is written on the record
the CRM has, or on none only when the CRM answered that it has no match; the record says
which (``CallRecord.lookups``).
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from engine_helpers import REMOTE_E164, Crm, incoming, local_hangup, make_engine

from callbridge.engine.engine import Engine
from callbridge.errors import PermanentError, RetryLater
from callbridge.journal import DeliveryState
from callbridge.models import Contact, LookupStatus
from callbridge.testing import wait_until


@pytest.fixture
def cleanup() -> Iterator[list[Engine]]:
    engines: list[Engine] = []
    yield engines
    for engine in engines:
        engine.stop()
        engine.journal.close()


def _start(cleanup: list[Engine], tmp_path: Path, *plugins: object, **dispatch: object) -> Engine:
    engine = make_engine(tmp_path, *plugins, **dispatch)
    cleanup.append(engine)
    engine.start()
    return engine


def test_a_lookup_failed_at_ring_is_done_again_before_logging(
    tmp_path: Path, cleanup: list[Engine]
) -> None:
    # Rate limited at the ring, and again at the first log attempt: the delivery waits.
    limited = RetryLater("REQUEST_LIMIT_EXCEEDED", retry_after=0.05)
    crm = Crm("crm", lookup_failures=[limited, limited])
    engine = _start(cleanup, tmp_path, crm)
    engine.ingest(incoming("00000101"))
    engine.ingest(local_hangup("00000101"))
    wait_until(lambda: len(crm.logged) == 1, "the call logged", timeout=20.0)
    assert engine.wait_idle(30)
    (record,) = crm.logged.values()
    contact = record.contact_for("crm")
    assert contact is not None and contact.record_id == "C1"
    assert contact.connector == "crm"
    assert record.lookups == {"crm": LookupStatus.FOUND}
    assert crm.lookups == [REMOTE_E164] * 3
    (delivery,) = engine.journal.list_deliveries()
    assert delivery.state is DeliveryState.DONE
    assert delivery.attempts == 2
    assert "contact lookup before logging failed" in (delivery.last_error or "")
    assert crm.attempts == 1  # log_call itself ran once, with the contact


def test_no_match_is_logged_unattached_and_says_so(tmp_path: Path, cleanup: list[Engine]) -> None:
    crm = Crm("crm", contacts={})
    engine = _start(cleanup, tmp_path, crm)
    engine.ingest(incoming("00000102"))
    engine.ingest(local_hangup("00000102"))
    wait_until(lambda: len(crm.logged) == 1, "the call logged", timeout=20.0)
    (record,) = crm.logged.values()
    assert record.contacts == {}
    assert record.lookups == {"crm": LookupStatus.NOT_FOUND}
    assert crm.lookups == [REMOTE_E164]  # the answer at the ring was kept: no new search


def test_a_lookup_still_waiting_when_the_call_ends_is_not_lost(
    tmp_path: Path, cleanup: list[Engine]
) -> None:
    gate = threading.Event()
    found = {REMOTE_E164: Contact(record_id="P1", name="Paced Match")}
    crm = Crm("crm", found, lookup_gate=gate)
    engine = _start(cleanup, tmp_path, crm, lookup_budget=0.1)
    engine.ingest(incoming("00000103"))
    engine.ingest(local_hangup("00000103"))
    wait_until(lambda: engine.journal.list_deliveries(), "the delivery enqueued", timeout=20.0)
    (queued,) = engine.journal.list_deliveries()
    assert queued.payload["lookups"] == {"crm": "unsettled"}
    assert crm.logged == {}
    gate.set()
    wait_until(lambda: len(crm.logged) == 1, "the call logged", timeout=20.0)
    (record,) = crm.logged.values()
    contact = record.contact_for("crm")
    assert contact is not None and contact.record_id == "P1"
    assert record.lookups == {"crm": LookupStatus.FOUND}


def test_a_refused_lookup_makes_the_delivery_dead_not_unattached(
    tmp_path: Path, cleanup: list[Engine]
) -> None:
    refused = PermanentError("HubSpot denied access: missing scope crm.objects.contacts.read")
    crm = Crm("crm", lookup_failures=[refused, refused])
    engine = _start(cleanup, tmp_path, crm)
    engine.ingest(incoming("00000104"))
    engine.ingest(local_hangup("00000104"))
    assert engine.wait_idle(30)
    assert crm.logged == {}
    (delivery,) = engine.journal.list_deliveries()
    assert delivery.state is DeliveryState.DEAD
    assert "missing scope" in (delivery.last_error or "")
    # The operator fixes the scope and retries: the lookup runs, the activity is attached.
    assert engine.journal.retry_delivery(delivery.id)
    engine.dispatcher.wake()
    wait_until(lambda: len(crm.logged) == 1, "the call logged after the fix", timeout=20.0)
    (record,) = crm.logged.values()
    assert record.lookups == {"crm": LookupStatus.FOUND}


def test_a_delivery_enqueued_before_the_upgrade_keeps_its_key(
    tmp_path: Path, cleanup: list[Engine]
) -> None:
    """A payload of an older version (no key_format, lookups, milliseconds): its first
    attempts may have written the activity under the older key, so it keeps that key."""
    from callbridge.testing import make_record

    crm = Crm("crm")
    engine = _start(cleanup, tmp_path, crm)
    payload = make_record("000000AA").model_dump(mode="json")
    for newer in ("key_format", "lookups", "duration_ms", "ring_ms"):
        del payload[newer]
    engine.journal.enqueue_delivery(
        call_key=payload["call"]["key"], plugin="crm", action="log_call", payload=payload
    )
    engine.dispatcher.wake()
    wait_until(lambda: len(crm.logged) == 1, "the old delivery logged", timeout=20.0)
    (key,) = crm.logged
    assert key == "callbridge:1:000000AA:crm"  # no start: as the older version wrote it
    (record,) = crm.logged.values()
    assert record.duration_ms == record.duration_s * 1000
