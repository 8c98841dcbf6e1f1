"""A recording known late, alone (no wrap-up yet), is one PATCH of the Task (fake org)."""

from __future__ import annotations

from collections.abc import Callable

from sf_fake import FakeOrg
from sf_helpers import make_call, make_record

from callbridge_salesforce.plugin import SalesforcePlugin

Make = Callable[..., SalesforcePlugin]
LINK = "https://pbx.example.com/rec/000012A0.wav"


def test_a_recording_alone_adds_its_line_with_one_patch(org: FakeOrg, make_plugin: Make) -> None:
    plugin = make_plugin()
    record = make_record(make_call(), None)
    ref = plugin.log_call(record)
    assert ref is not None
    late = record.model_copy(update={"recording": "000012A0", "recording_url": LINK})
    assert plugin.update_call(late, ref, 0) == ref
    (task,) = org.tasks()
    assert f"Recording: {LINK}" in str(task["Description"])
    assert "callbridge signature: " in str(task["Description"])
    assert org.count("PATCH", f"/sobjects/Task/{task['Id']}") == 1
    plugin.update_call(record, ref, 0)  # nothing to change: no request
    assert org.count("PATCH", f"/sobjects/Task/{task['Id']}") == 1
