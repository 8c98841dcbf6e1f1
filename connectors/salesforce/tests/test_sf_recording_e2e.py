"""A recording known after the Task was written: the Task is amended once per reference.

The whole path of ``test_sf_e2e`` (simulator -> callbridge over HTTP -> the fake org through
simple-salesforce); an operator's script names the recording with
``PUT /v1/calls/{call}/recording`` after hang-up.
"""

from __future__ import annotations

from test_sf_e2e import _task_of, e2e, records  # noqa: F401 - fixtures

from callbridge.testing import API_TOKEN, LivePbx, wait_until

LINK = "https://pbx.example.com/rec/2025/anna.wav"


def test_a_late_recording_amends_the_task_once(e2e: LivePbx) -> None:  # noqa: F811 - the fixture
    service, org = e2e.service, e2e.crm.fake
    e2e.play("inbound-answered", realtime=False)
    wait_until(lambda: len(org.tasks()) == 1, "the Task written at hang-up")
    assert service.wait_idle()
    call = service.call_of("201")
    task = _task_of(org, call.key)
    assert "Recording:" not in str(task["Description"])
    url = f"/v1/calls/{call.key}/recording"
    with service.api(API_TOKEN) as api:
        put = api.put(url, json={"reference": LINK})
        assert put.status_code == 200, put.text
        assert (put.json()["changed"], put.json()["url"]) == (True, LINK)
        wait_until(
            lambda: f"Recording: {LINK}" in str(_task_of(org, call.key)["Description"]),
            "the Task's Description with the recording",
        )
        assert api.put(url, json={"reference": LINK}).json()["changed"] is False
        saved = api.post(f"/v1/calls/{call.key}/wrap-up", json={"notes": "heard it again"})
        assert saved.status_code == 201, saved.text
        wait_until(
            lambda: "heard it again" in str(_task_of(org, call.key)["Description"]), "wrap-up"
        )
    assert service.wait_idle()
    task = _task_of(org, call.key)
    text = str(task["Description"])
    assert f"Recording: {LINK}" in text and "callbridge signature: " in text
    # One PATCH for the recording (the repeat sent none), one for the wrap-up.
    assert org.count("PATCH", f"/sobjects/Task/{task['Id']}") == 2
    assert len(org.tasks()) == 1
