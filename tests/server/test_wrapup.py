"""The wrap-up end to end: the API, the journal, the engine and the directory's activity.

Real parts only: the app with its engine (``AppHarness``), the SQLite journal, the built-in
directory on its own SQLite file, and a second connector that records each hook call, to
count ``log_call`` and ``update_call`` per revision.
"""

from __future__ import annotations

import itertools
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from callbridge import ActivityRef, CallRecord, Contact, RetryLater, hookimpl
from callbridge.plugins.builtin.directory import DirectoryActivity, DirectoryPlugin
from callbridge.testing import AppHarness, EventFactory, wait_until

SWITCHBOARD = "02 8765 4321"  # Giulia and Luca Bianchi share it: an ambiguous lookup
_CALL_IDS = itertools.count(0x100)


class Recorder:
    """A connector that writes nothing anywhere but remembers every hook call."""

    name = "recorder"

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.logged: list[CallRecord] = []
        self.updates: list[tuple[int, ActivityRef, CallRecord]] = []

    @hookimpl
    def log_call(self, record: CallRecord) -> ActivityRef:
        with self.lock:
            self.logged.append(record)
        return ActivityRef(connector=self.name, record_type="note", record_id=record.call.key)

    @hookimpl
    def search_contacts(self, query: str) -> list[Contact]:
        raise RetryLater("rate limited", retry_after=6.2)

    @hookimpl
    def update_call(self, record: CallRecord, activity: ActivityRef, revision: int) -> None:
        with self.lock:
            self.updates.append((revision, activity, record))


def _harness(tmp_path: Path, recorder: Recorder, **overrides: Any) -> AppHarness:
    harness = AppHarness(
        [recorder],
        tmp_path,
        builtins=("directory",),
        extensions="201",
        settings_overrides=overrides,
    )
    directory(harness).seed_sample_contacts()
    return harness


def directory(harness: AppHarness) -> DirectoryPlugin:
    plugin = harness.plugins.get("directory").plugin
    assert isinstance(plugin, DirectoryPlugin)
    return plugin


def _contact_id(harness: AppHarness, name: str) -> int:
    return next(c.id for c in directory(harness).list_contacts() if c.name == name)


def _activity(harness: AppHarness) -> DirectoryActivity | None:
    found = directory(harness).list_activities()
    return found[0] if found else None


def _call(harness: AppHarness, extension: str = "201") -> str:
    """An answered inbound call from the switchboard, hung up; returns its key."""
    events = EventFactory()
    call_id = f"{next(_CALL_IDS):08X}"
    for event in (
        events.incoming(call_id, remote=SWITCHBOARD, extension=extension),
        events.answered(call_id, remote=SWITCHBOARD, extension=extension),
        events.remote_hangup(call_id, remote=SWITCHBOARD, extension=extension),
    ):
        assert harness.send_event(event).status_code == 200
    return f"1:{call_id}"


@pytest.fixture
def recorder() -> Recorder:
    return Recorder()


@pytest.fixture
def amend(tmp_path: Path, recorder: Recorder) -> Iterator[AppHarness]:
    harness = _harness(tmp_path, recorder)
    yield harness
    harness.close()


def _form(harness: AppHarness, **fields: Any) -> dict[str, Any]:
    luca = _contact_id(harness, "Luca Bianchi")
    body: dict[str, Any] = {
        "notes": "Wants a quote for 3 trucks",
        "outcome": "interested",
        "record": {"connector": "directory", "record_type": "Contact", "record_id": str(luca)},
    }
    body.update(fields)
    return body


def test_a_wrapup_amends_the_written_activity_once_per_revision(
    amend: AppHarness, recorder: Recorder
) -> None:
    key = _call(amend)
    wait_until(lambda: _activity(amend) is not None, "the activity written at hang-up")
    assert amend.wait_idle()
    first = _activity(amend)
    assert first is not None and first.contact_id is None  # ambiguous: on no contact
    assert first.notes is None and first.wrapup_revision == 0

    url = f"/v1/calls/{key}/wrap-up"
    assert amend.client.get(url, headers=amend.headers).json()["revision"] == 0
    saved = amend.client.post(url, json=_form(amend, revision=1), headers=amend.headers)
    assert saved.status_code == 201, saved.text
    assert saved.json()["revision"] == 1
    luca = _contact_id(amend, "Luca Bianchi")
    wait_until(lambda: (_activity(amend) or first).wrapup_revision == 1, "revision 1 written")
    amended = _activity(amend)
    assert amended is not None and amended.id == first.id
    assert (amended.notes, amended.disposition) == ("Wants a quote for 3 trucks", "interested")
    assert (amended.contact_id, amended.contact_name) == (luca, "Luca Bianchi")

    # The same request again (a retried click) is no new revision; a stale form is refused.
    again = amend.client.post(url, json=_form(amend, revision=1), headers=amend.headers)
    assert again.status_code == 200 and again.json()["revision"] == 1
    stale = amend.client.post(
        url, json=_form(amend, revision=1, notes="other"), headers=amend.headers
    )
    assert stale.status_code == 409 and "revision 1" in stale.json()["detail"]

    giulia = _contact_id(amend, "Giulia Bianchi")
    moved = {"connector": "directory", "record_type": "Contact", "record_id": str(giulia)}
    second = amend.client.post(
        url,
        json=_form(amend, notes="Wrong Bianchi", outcome="wrong number", record=moved),
        headers=amend.headers,
    )
    assert second.status_code == 201 and second.json()["revision"] == 2
    wait_until(lambda: (_activity(amend) or first).wrapup_revision == 2, "revision 2 written")
    assert amend.wait_idle()
    latest = _activity(amend)
    assert latest is not None
    assert (latest.notes, latest.disposition, latest.contact_id) == (
        "Wrong Bianchi",
        "wrong number",
        giulia,
    )
    assert len(directory(amend).list_activities()) == 1

    # The other connector: one log_call, then exactly one update per revision, in order.
    assert len(recorder.logged) == 1 and recorder.logged[0].wrapup is None
    assert [(rev, rec.wrapup and rec.wrapup.notes) for rev, _, rec in recorder.updates] == [
        (1, "Wants a quote for 3 trucks"),
        (2, "Wrong Bianchi"),
    ]
    assert all(ref.record_id == key for _, ref, _ in recorder.updates)
    actions = sorted(d.action for d in amend.journal.list_deliveries() if d.plugin == "recorder")
    assert actions == ["log_call", "update_call:1", "update_call:2"]


def test_bad_wrapups_are_refused_with_a_reason(amend: AppHarness) -> None:
    key = _call(amend)
    other = _call(amend, extension="202")
    assert amend.wait_idle()
    url = f"/v1/calls/{key}/wrap-up"
    assert amend.client.post(url, json={"notes": "x"}).status_code == 401
    # A call of an extension the token does not hold is no call of the agent's.
    refused = amend.client.post(
        f"/v1/calls/{other}/wrap-up", json={"notes": "x"}, headers=amend.headers
    )
    assert refused.status_code == 404
    assert (
        amend.client.post("/v1/calls/1:nope/wrap-up", json={}, headers=amend.headers).status_code
        == 404
    )
    unknown = {"connector": "nocrm", "record_type": "Contact", "record_id": "1"}
    bad = amend.client.post(url, json={"record": unknown}, headers=amend.headers)
    assert bad.status_code == 422 and "nocrm" in bad.text
    too_long = amend.client.post(url, json={"notes": "x" * 10_001}, headers=amend.headers)
    assert too_long.status_code == 422
    skipped = amend.client.post(url, json={"notes": "x", "revision": 3}, headers=amend.headers)
    assert skipped.status_code == 409
    assert amend.journal.get_wrapup(key) is None


def test_with_a_wait_the_activity_is_written_once_with_the_wrapup(
    tmp_path: Path, recorder: Recorder
) -> None:
    harness = _harness(tmp_path, recorder, wrapup={"wait": 60})
    try:
        key = _call(harness)
        assert harness.wait_idle()  # the log_call waits: it is not due
        assert _activity(harness) is None and recorder.logged == []
        saved = harness.client.post(
            f"/v1/calls/{key}/wrap-up", json=_form(harness), headers=harness.headers
        )
        assert saved.status_code == 201
        wait_until(lambda: _activity(harness) is not None, "the activity, pulled forward")
        assert harness.wait_idle()
        written = _activity(harness)
        assert written is not None
        assert (written.notes, written.wrapup_revision) == ("Wants a quote for 3 trucks", 1)
        assert written.contact_name == "Luca Bianchi"
        (logged,) = recorder.logged
        assert logged.wrapup is not None and logged.wrapup.revision == 1

        # The activity holds revision 1 already: each connector's update is skipped.
        def updates() -> list[Any]:
            found = harness.journal.list_deliveries()
            return [d for d in found if d.action == "update_call:1" and d.state.value == "done"]

        # They waited behind the log_call (moved a second later at a time, no attempt spent).
        wait_until(lambda: len(updates()) == 2, "both updates settled")
        assert sorted(d.plugin for d in updates()) == ["directory", "recorder"]
        assert all("skipped" in (d.result or {}) for d in updates())
        assert recorder.updates == []
    finally:
        harness.close()


def test_agents_search_the_directory_and_create_a_contact(amend: AppHarness) -> None:
    def search(q: str) -> list[str]:
        found = amend.client.get(
            "/v1/contacts/search", params={"connector": "directory", "q": q}, headers=amend.headers
        )
        assert found.status_code == 200, found.text
        return [c["name"] for c in found.json()]

    assert search("bianchi") == ["Giulia Bianchi", "Luca Bianchi"]
    assert search("8765 4321") == ["Giulia Bianchi", "Luca Bianchi"]  # digits of a number
    assert search("logistica") == ["Giulia Bianchi", "Luca Bianchi"]  # the company
    assert search("100%") == []  # LIKE's wildcards are only characters

    new = {
        "connector": "directory",
        "name": "Nuovo Cliente",
        "number": "+39 011 555 0199",
        "company": "Nuovo Srl",
        "extension": "201",
    }
    made = amend.client.post("/v1/contacts", json=new, headers=amend.headers)
    assert made.status_code == 201, made.text
    contact = made.json()
    assert (contact["connector"], contact["name"]) == ("directory", "Nuovo Cliente")
    assert contact["numbers"] == ["+390115550199"]
    assert search("nuovo") == ["Nuovo Cliente"]
    # The new contact is what a lookup of the number finds now.
    assert directory(amend).find("011 5550199")[0].name == "Nuovo Cliente"

    bad = amend.client.post(
        "/v1/contacts", json={**new, "number": "not a number"}, headers=amend.headers
    )
    assert bad.status_code == 422 and "not a phone number" in bad.text
    other = amend.client.post(
        "/v1/contacts", json={**new, "extension": "202"}, headers=amend.headers
    )
    assert other.status_code == 403
    limited = amend.client.get(
        "/v1/contacts/search", params={"connector": "recorder", "q": "x"}, headers=amend.headers
    )
    assert limited.status_code == 429 and limited.headers["retry-after"] == "7"
    nope = amend.client.post(
        "/v1/contacts", json={**new, "connector": "recorder"}, headers=amend.headers
    )
    assert nope.status_code == 404
    assert (
        amend.client.get(
            "/v1/contacts/search", params={"connector": "directory", "q": "x"}
        ).status_code
        == 401
    )
