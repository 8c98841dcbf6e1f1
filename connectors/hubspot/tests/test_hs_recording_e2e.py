"""A recording known after the engagement was written: ``hs_call_recording_url`` is set by
one PATCH per reference.

The whole path of ``test_hs_e2e`` (simulator -> callbridge over HTTP -> the fake HubSpot
through hubspot-api-client); an operator's script names the recording with
``PUT /v1/calls/{call}/recording`` after hang-up.
"""

from __future__ import annotations

from test_hs_e2e import CALLS, _engagement_of, account, e2e  # noqa: F401 - fixtures

from callbridge.testing import API_TOKEN, LivePbx, wait_until

LINK = "https://pbx.example.com/rec/2025/anna.wav"
FIXED = "https://pbx.example.com/rec/2025/anna-2.wav"


def test_a_late_recording_sets_the_engagements_recording_url_once(e2e: LivePbx) -> None:  # noqa: F811
    service, fake = e2e.service, e2e.crm.fake
    e2e.play("inbound-answered", realtime=False)
    wait_until(lambda: len(fake.calls) == 1, "the engagement written at hang-up")
    assert service.wait_idle()
    call = service.call_of("201")
    engagement = _engagement_of(fake, call.key)
    assert not engagement.get("hs_call_recording_url")
    url = f"/v1/calls/{call.key}/recording"

    def recording_url() -> object:
        return _engagement_of(fake, call.key).get("hs_call_recording_url")

    with service.api(API_TOKEN) as api:
        assert api.put(url, json={"reference": LINK}).status_code == 200
        wait_until(lambda: recording_url() == LINK, "the engagement's recording URL")
        assert api.put(url, json={"reference": LINK}).json()["changed"] is False
        assert service.wait_idle()
        assert fake.count("PATCH", f"{CALLS}/{engagement['id']}") == 1
        # A corrected reference is one more PATCH.
        assert api.put(url, json={"reference": FIXED}).json()["changed"] is True
        wait_until(lambda: recording_url() == FIXED, "the corrected recording URL")
    assert service.wait_idle()
    assert fake.count("PATCH", f"{CALLS}/{engagement['id']}") == 2
    assert len(fake.calls) == 1
