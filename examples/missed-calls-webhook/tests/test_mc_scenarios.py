"""Whole calls through the real engine (callbridge.testing scenarios) against the fake chat."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest
from mc_chat import FakeChat

from callbridge import Contact, Outcome
from callbridge.testing import CallbridgeEnv, ScenarioRunner, make_record
from callbridge_missed_calls.plugin import MissedCallsPlugin, message_text


@pytest.fixture
def chat(callbridge_env: CallbridgeEnv) -> Iterator[FakeChat]:
    server = FakeChat()
    server.start()
    callbridge_env.set(CALLBRIDGE_MISSED_CALLS_WEBHOOK_URL=server.webhook_url)
    yield server
    server.stop()


def test_a_missed_call_is_posted_once(
    chat: FakeChat, scenarios: Callable[..., ScenarioRunner]
) -> None:
    result = scenarios(MissedCallsPlugin()).missed(remote="0612345678", extension="203")
    assert result.call.outcome is Outcome.MISSED
    assert len(chat.messages) == 1
    key, payload = chat.messages[0]
    assert key == result.records[0].idempotency_key("missed-calls")
    assert "+390612345678" in payload["text"] and "ext 203" in payload["text"]


def test_answered_and_outbound_calls_are_not_posted(
    chat: FakeChat, scenarios: Callable[..., ScenarioRunner]
) -> None:
    runner = scenarios(MissedCallsPlugin())
    answered = runner.inbound_answered()
    assert answered.results == [None]  # delivered, nothing to write
    runner.click_to_call(answered=False)
    assert chat.messages == []


def test_a_group_nobody_answers_is_one_message(
    chat: FakeChat, scenarios: Callable[..., ScenarioRunner]
) -> None:
    scenarios(MissedCallsPlugin()).group(answered_by=None, group="600")
    assert len(chat.messages) == 1
    assert "group 600" in chat.messages[0][1]["text"]


def test_the_contact_found_by_a_crm_is_named() -> None:
    contact = Contact(
        connector="crm", record_id="1", name="Mario Rossi", url="https://crm.example/c/1"
    )
    text = message_text(make_record(outcome=Outcome.MISSED, contacts={"crm": contact}))
    assert "<https://crm.example/c/1|Mario Rossi>" in text
