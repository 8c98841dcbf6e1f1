"""One call log per finished call: its fields, its links, and exactly once across retries."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta

import pytest
from pd_fake import FakePipedrive, error_body

from callbridge import Contact, CrmContext, Direction, Outcome, PermanentError, RetryLater
from callbridge.testing import make_record, shifted_record
from callbridge_pipedrive.plugin import PipedrivePlugin

CALL_LOGS = "/v1/callLogs"
REMOTE = "+390612345678"


def _person(fake: FakePipedrive) -> tuple[int, int, Contact]:
    org = fake.add_org("Rossi Srl")
    pid = fake.add_person("Mario Rossi", REMOTE, org_id=org)
    contact = Contact(
        connector="pipedrive", record_type="person", record_id=str(pid), name="Mario Rossi"
    )
    return pid, org, contact


def test_an_answered_inbound_call_becomes_a_connected_call_log_on_person_and_org(
    fake: FakePipedrive, make_plugin: Callable[..., PipedrivePlugin]
) -> None:
    pid, org, contact = _person(fake)
    user = fake.add_user("anna@acme.example")
    plugin = make_plugin(users={"201": str(user)})
    record = make_record(
        remote_e164=REMOTE, remote_number=REMOTE, extension="201",
        contacts={"pipedrive": contact}, recording_url="https://rec.example/1.mp3",
    )  # fmt: skip
    ref = plugin.log_call(record)
    assert ref is not None and ref.record_type == "call_log"
    assert ref.url == f"https://acme.pipedrive.com/person/{pid}"
    with fake.lock:
        sent = len(fake.requests)
    assert make_plugin(users={"201": str(user)}).log_call(record) == ref  # a restart, a replay
    assert len(fake.requests) == sent  # the ledger answers: not one request
    (log,) = fake.logs_with(record.idempotency_key("pipedrive"))
    assert log["id"] == ref.record_id
    assert log["outcome"] == "connected"
    assert (log["from_phone_number"], log["to_phone_number"]) == (REMOTE, "201")
    start = record.call.ring_at
    assert start is not None and record.call.end_at is not None
    assert log["start_time"] == start.strftime("%Y-%m-%d %H:%M:%S")
    assert log["end_time"] == record.call.end_at.strftime("%Y-%m-%d %H:%M:%S")
    assert log["duration"] == str(record.duration_s) and record.duration_s > 0
    assert (log["person_id"], log["org_id"], log["user_id"]) == (pid, org, user)
    assert log["subject"] == f"Call from {REMOTE}"
    assert "https://rec.example/1.mp3" in log["note"]
    assert "deal_id" not in log


@pytest.mark.parametrize(
    ("outcome", "direction", "expected", "subject"),
    [
        (Outcome.MISSED, Direction.INBOUND, "no_answer", "Missed call from"),
        (Outcome.REJECTED, Direction.OUTBOUND, "busy", "Unanswered call to"),
        (Outcome.ANSWERED, Direction.OUTBOUND, "connected", "Call to"),
    ],
)
def test_outcomes_and_directions_map_to_pipedrive_outcomes(
    fake: FakePipedrive,
    make_plugin: Callable[..., PipedrivePlugin],
    outcome: Outcome,
    direction: Direction,
    expected: str,
    subject: str,
) -> None:
    record = make_record(outcome=outcome, direction=direction, remote_e164=REMOTE)
    make_plugin().log_call(record)
    (log,) = fake.logs_with(record.idempotency_key("pipedrive"))
    assert log["outcome"] == expected
    assert log["subject"] == f"{subject} {REMOTE}"
    if direction is Direction.OUTBOUND:
        assert log["to_phone_number"] == REMOTE


def test_a_click_from_a_deal_logs_the_call_on_the_deal_and_the_found_person(
    fake: FakePipedrive, make_plugin: Callable[..., PipedrivePlugin]
) -> None:
    pid, org, contact = _person(fake)
    crm = CrmContext(connector="pipedrive", record_type="deal", record_id="7001")
    record = make_record(
        direction=Direction.OUTBOUND, remote_e164=REMOTE, crm=crm,
        contacts={"pipedrive": contact},
    )  # fmt: skip
    make_plugin().log_call(record)
    (log,) = fake.logs_with(record.idempotency_key("pipedrive"))
    assert (log["deal_id"], log["person_id"], log["org_id"]) == (7001, pid, org)


def test_the_user_is_found_by_e_mail_once_and_a_refusal_does_not_lose_the_log(
    fake: FakePipedrive, make_plugin: Callable[..., PipedrivePlugin]
) -> None:
    user = fake.add_user("mario@acme.example")
    plugin = make_plugin(user_emails={"201": "mario@acme.example"})
    first = make_record("000000A1", remote_e164=REMOTE)
    second = make_record("000000A2", remote_e164=REMOTE)
    plugin.log_call(first)
    plugin.log_call(second)
    assert fake.count("GET", "/v1/users/find") == 1  # cached
    assert fake.logs_with(second.idempotency_key("pipedrive"))[0]["user_id"] == user
    refused = make_plugin(user_emails={"201": "mario@acme.example"})
    fake.fail_next("GET /v1/users/find", 403, error_body("Forbidden"), times=5)
    third = make_record("000000A3", remote_e164=REMOTE)
    refused.log_call(third)
    (log,) = fake.logs_with(third.idempotency_key("pipedrive"))
    assert log["user_id"] == 900  # the token's user
    assert any("user lookup refused" in note for note in refused.notes())


def test_a_lost_answer_is_adopted_on_retry_not_written_twice(
    fake: FakePipedrive, make_plugin: Callable[..., PipedrivePlugin]
) -> None:
    record = make_record(remote_e164=REMOTE)
    key = record.idempotency_key("pipedrive")
    fake.drop_next("POST /v1/callLogs")  # created, but the answer never arrives
    with pytest.raises(RetryLater):
        make_plugin().log_call(record)
    assert len(fake.logs_with(key)) == 1
    ref = make_plugin().log_call(record)  # a restart: the ledger says "pending"
    (log,) = fake.logs_with(key)
    assert ref is not None and ref.record_id == log["id"]
    assert fake.count("POST", CALL_LOGS) == 1


def test_adoption_checks_the_start_so_another_calls_log_is_never_taken(
    fake: FakePipedrive, make_plugin: Callable[..., PipedrivePlugin]
) -> None:
    """A log whose note holds our key but whose start is not this call's is not adopted."""
    record = make_record(remote_e164=REMOTE)
    key = record.idempotency_key("pipedrive")
    plugin = make_plugin()
    plugin.ledger().mark_pending(key, signature=record.signature)
    other = shifted_record(record, timedelta(minutes=3))
    with fake.lock:
        fake.call_logs["forged"] = {
            "id": "forged", "outcome": "connected", "to_phone_number": REMOTE,
            "start_time": "2020-01-01 00:00:00", "end_time": "2020-01-01 00:01:00",
            "note": f"<p>callbridge key: {key}</p>", "_seq": 1,
        }  # fmt: skip
    ref = plugin.log_call(record)
    assert ref is not None and ref.record_id != "forged"
    assert len(fake.logs_with(key)) == 2  # the forged one and ours
    assert other.idempotency_key("pipedrive") != key


def test_a_refused_log_is_permanent_and_leaves_no_pending_mark(
    fake: FakePipedrive, make_plugin: Callable[..., PipedrivePlugin]
) -> None:
    record = make_record(remote_e164=REMOTE)
    plugin = make_plugin()
    fake.fail_next("POST /v1/callLogs", 400, error_body("to_phone_number is required"))
    with pytest.raises(PermanentError, match="to_phone_number is required"):
        plugin.log_call(record)
    entry = plugin.ledger().get(record.idempotency_key("pipedrive"))
    assert entry is not None and entry.state == "clear"
    plugin.log_call(record)
    assert fake.count("GET", CALL_LOGS) == 0  # nothing uncertain: no adoption search
    assert len(fake.logs_with(record.idempotency_key("pipedrive"))) == 1


def test_internal_calls_are_not_logged(
    fake: FakePipedrive, make_plugin: Callable[..., PipedrivePlugin]
) -> None:
    assert make_plugin().log_call(make_record(direction=Direction.INTERNAL)) is None
    assert fake.count("POST", CALL_LOGS) == 0
