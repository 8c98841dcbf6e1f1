"""The simulator's switches for readings of the document a real PBX may follow (issue 13).

16's ``ext`` as the number called (group number, DID), group legs ended with 19, hunt groups
that ring one member at a time, and caller names in latin1 or as raw bytes in the URL.
"""

from __future__ import annotations

import pytest

from callbridge.sim import CallEngine, MemorySink, SimError, default_directory
from callbridge.sim.emitter import encode_query
from callbridge.sim.model import DirectoryError


def _codes(sink: MemorySink) -> list[tuple[str, str, str, str]]:
    return [(e["ssn_event"], e["call_id"][-2:], e["number"], e["ext"]) for e in sink.events]


def test_dialled_reading_puts_the_group_number_in_16s_ext() -> None:
    sink = MemorySink()
    engine = CallEngine(sink=sink, ext_reading="dialled", group_end=19)
    call = engine.incoming_call("0612345678", "600")
    engine.answer(call, "202")
    first, second = (leg.user_call_id[-2:] for leg in call.legs)
    assert _codes(sink) == [
        ("16", first, "0612345678", "600"),
        ("16", second, "0612345678", "600"),
        ("19", first, "201", "0612345678"),  # 201 did not answer: 19, callee = 201
        ("18", second, "202", "0612345678"),
    ]
    assert {e["sender_id"] for e in sink.events} == {"00000065", "00000066"}


def test_default_reading_is_unchanged() -> None:
    sink = MemorySink()
    engine = CallEngine(sink=sink)
    call = engine.incoming_call("0612345678", "600")
    engine.answer(call, "202")
    assert [(code, ext) for code, _, _, ext in _codes(sink)] == [
        ("16", "201"),
        ("16", "202"),
        ("20", "201"),
        ("18", "0612345678"),
    ]


def test_a_did_reaches_its_target_and_is_the_dialled_number() -> None:
    directory = default_directory()
    directory.dids["0612340000"] = "203"
    directory.validate()
    sink = MemorySink()
    engine = CallEngine(directory, sink, ext_reading="dialled")
    call = engine.incoming_call("0612345678", "0612340000")
    assert call.legs[0].user.extension == "203"
    assert sink.events[0]["ext"] == "0612340000"
    directory.dids["0699"] = "999"
    with pytest.raises(DirectoryError, match="0699"):
        directory.validate()


def test_hunt_group_rings_one_member_at_a_time() -> None:
    sink = MemorySink()
    engine = CallEngine(sink=sink, group_end=19)  # 602: the default directory's hunt group
    call = engine.incoming_call("0612345678", "602")
    assert [leg.user.extension for leg in call.legs] == ["203"]
    assert engine.hunt_next(call) is None  # 203 stops ringing
    leg = engine.hunt_next(call)  # 204 rings
    assert leg is not None and leg.user.extension == "204"
    engine.answer(call)
    assert [e["ssn_event"] for e in sink.events] == ["16", "19", "16", "18"]
    with pytest.raises(SimError, match="unanswered group call"):
        engine.hunt_next(call)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("utf-8", b"identity=Nicol%C3%B2|Rossi%20%26%20%E2%82%AC"),
        ("latin1", b"identity=Nicol%F2|Rossi%20%26%20%80"),
        ("utf8-raw", b"identity=Nicol\xc3\xb2|Rossi%20%26%20\xe2\x82\xac"),
        ("latin1-raw", b"identity=Nicol\xf2|Rossi%20%26%20\x80"),
    ],
)
def test_text_forms_of_the_query(text: str, expected: bytes) -> None:
    assert encode_query({"identity": "Nicolò|Rossi & €"}, text) == expected  # type: ignore[arg-type]
