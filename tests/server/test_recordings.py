"""Recordings end to end: the reference reaches the activity as a link, late ones amend it.

Real parts: the app with its engine, the SQLite journal, the directory, a recording connector
(``Recorder`` of the wrap-up tests) counting ``log_call`` and ``update_call``; and the
simulator as the PBX for CallRecStart sent through the API.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from pathlib import Path

import pytest
from server_support import Stack, run_stack
from test_wrapup import Recorder, _activity, directory

from callbridge.engine.recordings import recording_action
from callbridge.testing import AppHarness, EventFactory, wait_until

TEMPLATE = "https://rec.example.com/{company_id}/{date}/{reference}"
REMOTE = "+39 06 1234 5678"
_CALL_IDS = itertools.count(0x300)


@pytest.fixture
def recorder() -> Recorder:
    return Recorder()


@pytest.fixture
def app(tmp_path: Path, recorder: Recorder) -> Iterator[AppHarness]:
    harness = AppHarness(
        [recorder],
        tmp_path,
        builtins=("directory",),
        extensions="201",
        settings_overrides={"recordings": {"url_template": TEMPLATE}},
    )
    yield harness
    harness.close()


def _send(app: AppHarness, *kinds: str, call_id: str) -> None:
    events = EventFactory()
    for kind in kinds:
        event = getattr(events, kind)(call_id, remote=REMOTE, extension="201")
        assert app.send_event(event).status_code == 200


def _put(app: AppHarness, key: str, reference: str) -> dict[str, object]:
    response = app.client.put(
        f"/v1/calls/{key}/recording", json={"reference": reference}, headers=app.headers
    )
    assert response.status_code == 200, response.text
    body: dict[str, object] = response.json()
    return body


def _link(app: AppHarness) -> str | None:
    """The link on the directory's only activity (it must be written)."""
    activity = _activity(app)
    assert activity is not None, "no activity written"
    return activity.recording_url


def _url(app: AppHarness, key: str, path: str) -> str:
    call = app.journal.get_call(key)
    assert call is not None and call.ring_at is not None
    return f"https://rec.example.com/1/{call.ring_at:%Y-%m-%d}/{path}"


def test_a_late_recording_amends_the_activity_once_per_reference(
    app: AppHarness, recorder: Recorder
) -> None:
    call_id = f"{next(_CALL_IDS):08X}"
    key = f"1:{call_id}"
    _send(app, "incoming", "answered", "remote_hangup", call_id=call_id)
    wait_until(lambda: _activity(app) is not None, "the activity written at hang-up")
    assert app.wait_idle()
    assert _link(app) is None
    assert recorder.logged[0].recording_url is None

    put = _put(app, key, "2024/05/rec 1.wav")
    url = _url(app, key, "2024/05/rec%201.wav")
    assert (put["changed"], put["reference"], put["url"]) == (True, "2024/05/rec 1.wav", url)
    wait_until(lambda: _link(app) == url, "link written")
    # The same reference again (a retried script) changes nothing and enqueues nothing.
    assert _put(app, key, "2024/05/rec 1.wav")["changed"] is False
    assert app.wait_idle()
    assert [(rev, rec.recording_url) for rev, _, rec in recorder.updates] == [(0, url)]

    # A wrap-up after it keeps the link; a corrected reference is one more update.
    saved = app.client.post(
        f"/v1/calls/{key}/wrap-up", json={"notes": "quote", "revision": 1}, headers=app.headers
    )
    assert saved.status_code == 201, saved.text
    wait_until(lambda: len(recorder.updates) == 2, "the wrap-up's update")
    fixed = _url(app, key, "2024/05/rec-1.wav")
    assert _put(app, key, fixed)["url"] == fixed  # a whole URL is the link as it is
    wait_until(lambda: len(recorder.updates) == 3, "the corrected recording's update")
    assert app.wait_idle()
    assert [(rev, rec.wrapup and rec.wrapup.notes) for rev, _, rec in recorder.updates] == [
        (0, None),
        (1, "quote"),
        (1, "quote"),
    ]
    assert [rec.recording for _, _, rec in recorder.updates] == [
        "2024/05/rec 1.wav",
        "2024/05/rec 1.wav",
        fixed,
    ]
    latest = _activity(app)
    assert latest is not None and latest.notes == "quote"
    assert len(directory(app).list_activities()) == 1
    assert len(recorder.logged) == 1
    # Each done update records what the activity holds after it: the reference and the
    # wrap-up revision it carried (how a repeat is told from new work).
    held = {
        d.action: ((d.result or {}).get("recording"), (d.result or {}).get("wrapup_revision"))
        for d in app.journal.list_deliveries(call_keys=[key])
        if d.plugin == "recorder"
    }
    assert held == {
        "log_call": (None, None),
        recording_action("2024/05/rec 1.wav"): ("2024/05/rec 1.wav", None),
        "update_call:1": ("2024/05/rec 1.wav", 1),
        recording_action(fixed): (fixed, 1),
    }


def test_a_recording_known_during_the_call_is_on_the_first_write(
    app: AppHarness, recorder: Recorder
) -> None:
    call_id = f"{next(_CALL_IDS):08X}"
    key = f"1:{call_id}"
    _send(app, "incoming", "answered", call_id=call_id)
    wait_until(lambda: app.journal.get_call(key) is not None, "the call in the journal")
    _put(app, key, "rec.wav")
    _send(app, "remote_hangup", call_id=call_id)
    url = _url(app, key, "rec.wav")
    wait_until(lambda: _activity(app) is not None, "the activity")
    assert app.wait_idle()
    assert _link(app) == url
    assert [r.recording_url for r in recorder.logged] == [url]
    assert recorder.updates == []
    got = app.client.get(f"/v1/calls/{key}/recording", headers=app.headers).json()
    assert (got["reference"], got["url"]) == ("rec.wav", url)


def test_bad_recording_requests_are_refused_and_change_nothing(app: AppHarness) -> None:
    call_id = f"{next(_CALL_IDS):08X}"
    key = f"1:{call_id}"
    _send(app, "incoming", call_id=call_id)
    wait_until(lambda: app.journal.get_call(key) is not None, "the call in the journal")
    url = f"/v1/calls/{key}/recording"
    for bad in ("", " x", "a\nb", "x" * 1001):
        response = app.client.put(url, json={"reference": bad}, headers=app.headers)
        assert response.status_code == 422, bad
    unknown = app.client.put(
        "/v1/calls/1:0000BEEF/recording", json={"reference": "x"}, headers=app.headers
    )
    assert unknown.status_code == 404
    assert app.client.put(url, json={"reference": "x"}).status_code == 401
    assert app.journal.get_recording(key) is None


@pytest.fixture
def stack(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Stack]:
    monkeypatch.setenv("CALLBRIDGE_RECORDINGS__URL_TEMPLATE", "https://pbx.example/{reference}.wav")
    with run_stack(tmp_path, heartbeat=0.2) as running:
        yield running


def test_call_rec_start_through_the_api_puts_the_link_on_the_activity(stack: Stack) -> None:
    """CallRecStart sent through ``/record`` (to the simulator): the call is marked with the
    default reference, its user call id, and the directory's activity carries the link."""
    placed = stack.http.post(
        "/v1/calls", json={"agent": "201", "number": REMOTE}, headers=stack.api()
    )
    assert placed.status_code == 202, placed.text
    external_id = placed.json()["external_id"]
    wait_until(lambda: stack.sim.find_call(external_id) is not None, "the simulator's call")
    call = stack.sim.find_call(external_id)
    stack.sim.answer(call)
    wait_until(
        lambda: getattr(stack.journal.get_originate(external_id), "state", "") == "answered",
        "answered",
    )
    started = stack.http.post(
        f"/v1/calls/{external_id}/record", json={"on": True}, headers=stack.api()
    )
    assert started.status_code == 200, started.text
    assert stack.commands()[-1].command == "CallRecStart"
    leg = call.legs[0]
    assert leg.recording is True
    got = stack.http.get(f"/v1/calls/{external_id}/recording", headers=stack.api()).json()
    assert got["reference"] == leg.user_call_id
    stack.sim.hangup(call)
    expected = f"https://pbx.example/{leg.user_call_id}.wav"
    wait_until(
        lambda: [a.recording_url for a in stack.directory.list_activities()] == [expected],
        "the activity with the recording's link",
    )


def test_a_click_to_call_placed_recording_carries_the_link(stack: Stack) -> None:
    """``record: true`` (CallReqExt with ``call_request_to_be_rec`` 1): the PBX records the
    call from the start, so its activity carries the default reference's link."""
    placed = stack.http.post(
        "/v1/calls",
        json={"agent": "201", "number": REMOTE, "record": True, "calling_id": "00000065"},
        headers=stack.api(),
    )
    assert placed.status_code == 202, placed.text
    external_id = placed.json()["external_id"]
    wait_until(lambda: stack.sim.find_call(external_id) is not None, "the simulator's call")
    call = stack.sim.find_call(external_id)
    assert call.legs[0].recording is True
    stack.sim.answer(call)
    stack.sim.hangup(call)
    expected = f"https://pbx.example/{call.legs[0].user_call_id}.wav"
    wait_until(
        lambda: [a.recording_url for a in stack.directory.list_activities()] == [expected],
        "the activity with the recording's link",
    )


@pytest.mark.parametrize(
    ("variable", "value", "reason"),
    [
        ("CALLBRIDGE_RECORDINGS__URL_TEMPLATE", "https://x/{file}", "unknown field(s) ['file']"),
        ("CALLBRIDGE_RECORDINGS__URL_TEMPLATE", "https://x/{", "not a template"),
        ("CALLBRIDGE_RECORDINGS__REFERENCE", "{reference}.wav", "unknown field(s) ['reference']"),
        ("CALLBRIDGE_RECORDINGS__REFERENCE", "rec-{}", "unknown field(s) ['{}']"),
    ],
)
def test_a_bad_recording_template_stops_the_start_with_its_variable(
    monkeypatch: pytest.MonkeyPatch, variable: str, value: str, reason: str
) -> None:
    from callbridge.errors import ConfigurationError
    from callbridge.settings import load_settings

    monkeypatch.setenv(variable, value)
    with pytest.raises(ConfigurationError) as refused:
        load_settings()
    assert variable in str(refused.value) and reason in str(refused.value)
