"""``callbridge calls`` and ``callbridge deliveries`` over a real journal file."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner
from engine_helpers import Crm, incoming, local_hangup, make_engine

from callbridge.cli import main
from callbridge.errors import PermanentError
from callbridge.journal import DeliveryState
from callbridge.journal.sqlite import SqliteJournal


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    """A journal with two finished calls: one logged by both plugins, one dead for 'bad'."""
    good = Crm("good")
    bad = Crm("bad", failures=[PermanentError("Subject is required")])
    engine = make_engine(tmp_path, good, bad)
    engine.start()
    try:
        engine.ingest(incoming("00000001"))
        engine.ingest(local_hangup("00000001"))
        assert engine.wait_idle(30)
        engine.ingest(incoming("00000002", ext="202"))
        assert engine.wait_idle(30)
    finally:
        engine.stop()
        engine.journal.close()
    return tmp_path


def _run(data_dir: Path, *args: str) -> tuple[int, str]:
    result = CliRunner().invoke(main, list(args), env={"CALLBRIDGE_DATA_DIR": str(data_dir)})
    return result.exit_code, result.output


def test_calls_json_and_table(data_dir: Path) -> None:
    code, out = _run(data_dir, "calls", "--json")
    assert code == 0, out
    rows = json.loads(out)
    assert [r["key"] for r in rows] == ["1:00000002", "1:00000001"]
    ended = rows[1]
    assert ended["direction"] == "inbound"
    assert ended["extension"] == "201"
    assert ended["remote_number"] == "+390612345678"
    assert ended["contact"] == {"name": "Mario Rossi", "connector": "good"}
    assert ended["outcome"] == "missed"
    assert {d["plugin"]: d["state"] for d in ended["deliveries"]} == {
        "good": "done",
        "bad": "dead",
    }
    assert rows[0]["deliveries"] == []
    code, out = _run(data_dir, "calls", "--last", "1")
    assert code == 0, out
    assert "202" in out
    assert "00000001" not in out


def test_deliveries_list_and_retry(data_dir: Path) -> None:
    code, out = _run(data_dir, "deliveries", "list", "--json")
    assert code == 0, out
    assert sorted(d["state"] for d in json.loads(out)) == ["dead", "done"]
    code, out = _run(data_dir, "deliveries", "list", "--dead", "--json")
    (dead,) = json.loads(out)
    assert dead["plugin"] == "bad"
    assert dead["last_error"] == "PermanentError: Subject is required"
    code, out = _run(data_dir, "deliveries", "list", "--dead")
    assert code == 0
    assert "PermanentError" in out

    code, out = _run(data_dir, "deliveries", "retry", "999")
    assert code != 0
    assert "no delivery 999" in out
    done_id = next(
        d["id"]
        for d in json.loads(_run(data_dir, "deliveries", "list", "--json")[1])
        if d["state"] == "done"
    )
    code, out = _run(data_dir, "deliveries", "retry", str(done_id))
    assert code != 0
    assert "not dead" in out
    code, out = _run(data_dir, "deliveries", "retry")
    assert code == 2
    assert "--all-dead" in out

    code, out = _run(data_dir, "deliveries", "retry", str(dead["id"]))
    assert code == 0, out
    assert f"retrying 1 delivery: {dead['id']}" in out
    journal = SqliteJournal(data_dir / "journal.sqlite3")
    try:
        revived = journal.get_delivery(dead["id"])
        assert revived is not None
        assert revived.state is DeliveryState.PENDING
        journal.fail_delivery(dead["id"], error="again", next_attempt_at=None)
    finally:
        journal.close()
    code, out = _run(data_dir, "deliveries", "retry", "--all-dead", "--json")
    assert code == 0, out
    assert json.loads(out) == {"retried": [dead["id"]]}
    code, out = _run(data_dir, "deliveries", "retry", "--all-dead")
    assert "no dead deliveries" in out


def test_dead_deliveries_retried_by_plugin_and_reason(data_dir: Path) -> None:
    """After fixing a cause, only the deliveries dead for it are sent again, in one go."""
    code, out = _run(data_dir, "deliveries", "retry", "--reason", "  ")
    assert code == 2 and "--reason" in out
    code, out = _run(data_dir, "deliveries", "retry", "--all-dead", "--plugin", "bad")
    assert code == 2, out
    code, out = _run(data_dir, "deliveries", "retry", "--plugin", "good", "--json")
    assert code == 0, out
    assert json.loads(out) == {"retried": []}  # good has nothing dead
    code, out = _run(data_dir, "deliveries", "retry", "--plugin", "bad", "--reason", "scope")
    assert json.loads(_run(data_dir, "deliveries", "list", "--dead", "--json")[1])
    assert "no dead deliveries" in out  # dead for another reason: left alone
    code, out = _run(
        data_dir, "deliveries", "retry", "--plugin", "bad", "--reason", "SUBJECT IS", "--json"
    )
    assert code == 0, out
    (revived,) = json.loads(out)["retried"]
    assert json.loads(_run(data_dir, "deliveries", "list", "--dead", "--json")[1]) == []
    journal = SqliteJournal(data_dir / "journal.sqlite3")
    try:
        delivery = journal.get_delivery(revived)
        assert delivery is not None and delivery.state is DeliveryState.PENDING
        assert delivery.plugin == "bad"
    finally:
        journal.close()


def test_retried_dead_delivery_goes_through_on_the_next_run(data_dir: Path) -> None:
    code, _ = _run(data_dir, "deliveries", "retry", "--all-dead")
    assert code == 0
    good, bad = Crm("good"), Crm("bad")
    engine = make_engine(data_dir, good, bad)
    engine.start()
    try:
        assert engine.wait_idle(30)
        assert [k.split("@")[0] for k in bad.logged] == ["callbridge:1:00000001"]
        assert good.logged == {}  # already done: never again
    finally:
        engine.stop()
        engine.journal.close()


def test_calls_requests_show_unmatched_click_to_calls(tmp_path: Path) -> None:
    from datetime import UTC, datetime, timedelta

    from callbridge.models import Originate

    journal = SqliteJournal(tmp_path / "journal.sqlite3")
    now = datetime.now(UTC)
    for external_id, state, age in (("cb-old", "ended", 30), ("cb-lost", "unmatched", 10)):
        journal.create_originate(
            Originate(
                external_id=external_id,
                user="auth-mario@acme",
                extension="201",
                number="+390612345678",
                created_at=now - timedelta(minutes=age),
                state=state,
                error="no call of 201 to +390612345678 within 60 s"
                if state == "unmatched"
                else None,
            )
        )
    journal.create_originate(
        Originate(
            external_id="cb-ancient",
            user="auth-mario@acme",
            number="1",
            created_at=now - timedelta(days=3),
        )
    )
    journal.close()
    code, out = _run(tmp_path, "calls", "--requests", "--json")
    assert code == 0, out
    rows = json.loads(out)
    assert [(r["external_id"], r["state"]) for r in rows] == [
        ("cb-lost", "unmatched"),
        ("cb-old", "ended"),
    ]
    assert "within 60 s" in rows[0]["error"]
    code, out = _run(tmp_path, "calls", "--requests")
    assert code == 0, out
    assert "unmatched" in out and "cb-lost" in out
    code, out = _run(tmp_path, "calls")  # no calls, but the lost request is mentioned
    assert code == 0, out
    assert "no calls yet" in out
    assert "1 unmatched" in out and "--requests" in out
