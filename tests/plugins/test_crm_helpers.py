"""The shared CRM helpers of the public API (``callbridge.crm``): number forms, the match to
pop, the signature line, the agent's keys."""

from __future__ import annotations

from datetime import timedelta

from callbridge import (
    Contact,
    Originate,
    agent_keys,
    number_forms,
    pick_contact,
    same_call,
    signature_line,
)
from callbridge.testing import make_call, make_record, shifted_record


def test_number_forms_are_the_ways_users_type_a_number() -> None:
    assert number_forms("0612345678", "IT") == [
        "+390612345678",
        "+39 06 1234 5678",
        "06 1234 5678",
        "0612345678",
        "06 12345678",
        "+39 06 12345678",
    ]
    # A mobile has no trunk zero: the national digits are the national number.
    assert "3331234567" in number_forms("+39 333 123 4567", "IT")
    assert "333 1234567" in number_forms("+39 333 123 4567", "IT")
    assert "020 79460000" in number_forms("+44 20 7946 0000", "GB")  # the trunk 0 kept
    assert number_forms("201", "IT") == []
    # Not a possible number: only its digits are searched.
    assert number_forms("12-34-56-78-90-12-34-56", "IT") == ["1234567890123456"]


def _contact(record_type: str, record_id: str) -> Contact:
    return Contact(connector="acme", record_type=record_type, record_id=record_id, name=record_id)


def test_the_best_type_wins_and_a_tie_is_ambiguous() -> None:
    lead = _contact("Lead", "L1")
    assert pick_contact([[], [lead], [_contact("Account", "A1")]]) == lead
    tie = pick_contact([[_contact("Contact", "C1"), _contact("Contact", "C2")], [lead]])
    assert tie is not None and tie.ambiguous
    assert [c.record_id for c in tie.candidates] == ["C1", "C2"]
    assert pick_contact([[], []]) is None


def test_an_activity_is_the_call_only_with_its_signature() -> None:
    record = make_record("0000C0DE")
    later = shifted_record(record, timedelta(days=40))
    description = f"Outcome: answered\n{signature_line(record)}"
    assert same_call(description, record)
    assert not same_call(description, later)
    assert not same_call(None, record)


def test_agent_keys_include_the_click_to_call_and_come_once() -> None:
    call = make_call(extension="201", user_id="u1")
    assert agent_keys(call) == ["201", "u1"]
    originate = Originate(
        external_id="x",
        user="anna@pbx",
        extension="201",
        number="123456789",
        created_at=call.ring_at,
    )
    clicked = call.model_copy(update={"originate": originate})
    assert agent_keys(clicked) == ["201", "u1", "anna@pbx"]
