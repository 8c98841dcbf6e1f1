"""What a real VOIspeed site may send, end to end: simulator -> real HTTP -> engine -> plugin.

The simulator plays the PBX in the shapes the document leaves open (issue 13): names in latin1
or as raw bytes in the URL, 16's ``ext`` as the number called (a group's number, a DID),
group legs ended with 19, a hunt group that rings its members one after the other. Each test
checks the pops on the agents' streams and the activities a CRM plugin is asked to write.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import pytest

from callbridge.sim.emitter import TextForm
from callbridge.sim.model import default_directory
from callbridge.testing import LivePbx, LiveService, RecordingCrm, SseMessage, SseReader, wait_until

CALLER = "+39 06 1234 5678"
WINDOW = 8.0


@pytest.fixture
def recorder() -> RecordingCrm:
    return RecordingCrm()


@pytest.fixture
def site(live_pbx: Callable[..., LivePbx], recorder: RecordingCrm) -> Callable[..., LivePbx]:
    """``site(**shape)``: the kit's live PBX in one of a real site's shapes (``text``,
    ``directory``, ``ext_reading``, ``group_end``) in front of a live service whose only
    CRM is the recorder."""

    def start(**shape: Any) -> LivePbx:
        return live_pbx(
            {"CALLBRIDGE_TRACKER__GROUP_WINDOW": str(WINDOW)},
            service=LiveService(extra_plugins=[recorder]),
            **shape,
        )

    return start


def _pops(reader: SseReader, state: str, count: int = 1) -> list[SseMessage]:
    messages = reader.wait_for(
        lambda ms: sum(1 for m in ms if m.event == "pop" and m.data["state"] == state) >= count,
        f"{count} {state} pop(s)",
    )
    return [m for m in messages if m.event == "pop" and m.data["state"] == state]


def _settled(service: LiveService) -> None:
    """Every event handled and no call left open (held group legs decided)."""
    wait_until(
        lambda: service.wait_idle(5) and not service.journal.list_calls(50, open_only=True),
        "every call settled",
        timeout=WINDOW + 30,
    )
    assert service.wait_idle(30)


@pytest.mark.parametrize("text", ["latin1", "latin1-raw", "utf8-raw"])
def test_caller_names_in_latin1_or_raw_bytes_reach_the_pop_and_the_activity(
    site: Callable[..., LivePbx], recorder: RecordingCrm, text: TextForm
) -> None:
    pbx = site(text=text)
    service, sim = pbx.service, pbx.sim
    with pbx.agent_events("201") as reader:
        call = sim.incoming_call(CALLER, "201", "Nicolò|Dell'Orto|Vendite|0|0")
        sim.answer(call)
        (ringing,) = _pops(reader, "ringing")
        assert ringing.data["call"]["identity"]["name"] == "Nicolò"
        sim.hangup(call, by="remote")
        sim.flush()
    assert [d.status for d in pbx.sink.deliveries] == [200, 200, 200]
    wait_until(lambda: recorder.of({leg.user_call_id for leg in call.legs}), "the activity")
    (record,) = recorder.of({leg.user_call_id for leg in call.legs})
    assert record.call.identity is not None
    assert record.call.identity.surname == "Dell'Orto"
    assert service.journal.list_rejected() == []


def test_group_and_did_numbers_in_ext_pop_on_the_members_stream(
    site: Callable[..., LivePbx], recorder: RecordingCrm
) -> None:
    """16's ``ext`` is the number called; logins taught callbridge whose extension is whose."""
    directory = default_directory()
    directory.dids["0612340000"] = "203"
    directory.validate()
    pbx = site(directory=directory, ext_reading="dialled", group_end=19)
    service, sim = pbx.service, pbx.sim
    readers = {ext: pbx.agent_events(ext).start() for ext in ("201", "202", "203")}
    stray = pbx.agent_events("600").start()
    try:
        sim.login_all()
        sim.flush()
        assert service.wait_idle(30)

        did = sim.incoming_call(CALLER, "0612340000", "Anna Neri")
        (pop,) = _pops(readers["203"], "ringing")
        assert pop.data["call"]["extension"] == "203"
        assert pop.data["call"]["dialled_number"] == "0612340000"
        sim.hangup(did, by="remote")

        group = sim.incoming_call(CALLER, "600", "Anna Neri")
        for ext in ("201", "202"):
            (pop,) = _pops(readers[ext], "ringing")
            assert pop.data["call"]["extension"] == ext
            assert pop.data["call"]["dialled_number"] == "600"
        sim.answer(group, "202")  # 201's leg ends with 19
        sim.hangup(group, by="remote")
        sim.flush()
        _settled(service)
    finally:
        for reader in [*readers.values(), stray]:
            reader.close()
    assert not [m for m in stray.events() if m.event == "pop"]
    group_records = recorder.of({leg.user_call_id for leg in group.legs})
    assert [(r.call.extension, r.call.outcome.value) for r in group_records] == [  # type: ignore[union-attr]
        ("202", "answered")
    ]
    (did_record,) = recorder.of({leg.user_call_id for leg in did.legs})
    assert did_record.call.extension == "203"


def test_hunt_group_with_a_gap_between_members_is_one_answered_call(
    site: Callable[..., LivePbx], recorder: RecordingCrm
) -> None:
    pbx = site(group_end=19)  # 602: the default directory's hunt group
    service, sim = pbx.service, pbx.sim
    call = sim.incoming_call(CALLER, "602", "Anna Neri")
    time.sleep(1.0)
    sim.hunt_next(call)  # 203 stops ringing (19) ...
    time.sleep(5.0)  # ... a pause (5-30 s on real sites) ...
    sim.hunt_next(call)  # ... then 204 rings
    sim.answer(call, "204")
    sim.hangup(call, by="remote")
    sim.flush()
    _settled(service)
    records = recorder.of({leg.user_call_id for leg in call.legs})
    assert [(r.call.extension, r.call.outcome.value) for r in records] == [  # type: ignore[union-attr]
        ("204", "answered")
    ]


def test_hunt_group_nobody_answered_is_one_missed_call(
    site: Callable[..., LivePbx], recorder: RecordingCrm
) -> None:
    pbx = site(group_end=19)  # 602: the default directory's hunt group
    service, sim = pbx.service, pbx.sim
    call = sim.incoming_call(CALLER, "602", "Anna Neri")
    sim.hunt_next(call)
    time.sleep(5.0)
    sim.hunt_next(call)
    sim.hunt_next(call)  # 204 stops too: nobody left
    sim.flush()
    _settled(service)
    records = recorder.of({leg.user_call_id for leg in call.legs})
    assert [(r.call.extension, r.call.outcome.value) for r in records] == [  # type: ignore[union-attr]
        ("203", "missed")
    ]
