"""``callbridge serve`` over real HTTP: GET /pbx/events -> pops on the SSE stream -> one
activity in ``directory``; bad input is refused with the right 4xx and changes nothing."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlencode

import httpx
import pytest
from server_support import API_TOKEN, INGRESS_TOKEN, SseReader, wait_until
from service_support import CALLBRIDGE, Service, call_events, raw_get, service_env

from callbridge.journal.sqlite import SqliteJournal
from callbridge.plugins.builtin.directory import DirectoryPlugin

pytestmark = pytest.mark.slow


@pytest.fixture
def service(tmp_path: Path) -> Iterator[Service]:
    running = Service(tmp_path / "data").start()
    yield running
    running.stop()


def test_events_to_pops_and_one_activity(service: Service) -> None:
    reader = SseReader(
        service.port, "/v1/agents/201/events", {"Authorization": f"Bearer {API_TOKEN}"}
    )
    try:
        assert reader.status == 200
        wait_until(lambda: "connected" in reader.comments(), "the stream to open")
        for params in call_events("0000CA01", end="20"):
            response = httpx.get(
                f"{service.url}/pbx/events", params={**params, "token": INGRESS_TOKEN}
            )
            assert response.status_code == 200, response.text
            assert response.text.startswith("ok ")
        messages = reader.wait_for(
            lambda m: [x.json()["state"] for x in m if x.event == "pop"][-1:] == ["ended"],
            "the ended pop",
        )
        pops = [m.json() for m in messages if m.event == "pop"]
        assert [p["state"] for p in pops] == ["ringing", "answered", "ended"]
        assert {p["call"]["user_call_id"] for p in pops} == {"0000CA01"}
        wait_until(lambda: "heartbeat" in reader.comments(), "a heartbeat")
    finally:
        reader.close()
    directory = DirectoryPlugin.open(service.data_dir / "directory.sqlite3")
    wait_until(lambda: directory.list_activities(10), "the activity")
    result = service.cli("calls", "--json")
    assert result.returncode == 0, result.stderr
    assert "0000CA01" in result.stdout
    service.stop()
    activities = directory.list_activities(10)
    assert len(activities) == 1
    assert activities[0].call_key.endswith("0000CA01")
    assert activities[0].outcome == "answered"
    assert activities[0].hung_up_by == "remote"


GOOD = {**call_events("0000CB01")[0]}


def query(params: dict[str, str], token: str | None = INGRESS_TOKEN) -> bytes:
    full = dict(params)
    if token is not None:
        full["token"] = token
    return b"/pbx/events?" + urlencode(full).encode()


BAD: list[tuple[str, bytes, int, str]] = [
    ("no token", query(GOOD, None), 401, "token missing"),
    ("wrong token", query(GOOD, "wrong-token-0123456789"), 403, "token invalid"),
    ("two tokens", query(GOOD) + b"&token=other-token-0123456789", 403, "token invalid"),
    ("no ssn_event", query({k: v for k, v in GOOD.items() if k != "ssn_event"}), 400, "ssn_event"),
    ("bad ssn_event", query({**GOOD, "ssn_event": "1e3"}), 400, "ssn_event"),
    ("no call_id", query({k: v for k, v in GOOD.items() if k != "call_id"}), 400, "call_id"),
    ("bad call_id", query({**GOOD, "call_id": "0000CB01'; DROP"}), 400, "call_id"),
    ("huge identity", query({**GOOD, "identity": "a|" * 3000}), 400, "identity"),
    ("huge number", query({**GOOD, "number": "1" * 20000}), 413, "larger than"),
    ("repeated call_id", query(GOOD) + b"&call_id=0000CB02", 400, "repeated"),
    ("repeated ssn_event", query(GOOD) + b"&ssn_event=21", 400, "repeated"),
]


def test_bad_input_is_refused_and_changes_nothing(service: Service) -> None:
    for label, target, status, fragment in BAD:
        got, body = raw_get(service.port, target)
        assert got == status, (label, got, body[:200])
        assert fragment.encode() in body, (label, body[:200])
        assert len(body) < 2000, label
    # POST bodies: JSON, too large.
    post = httpx.post(
        f"{service.url}/pbx/events?token={INGRESS_TOKEN}",
        content=b'{"ssn_event": 16}',
        headers={"content-type": "application/json"},
    )
    assert post.status_code == 415
    large = httpx.post(
        f"{service.url}/pbx/events",
        data={**GOOD, "token": INGRESS_TOKEN, "pad": "x" * 20000},
    )
    assert large.status_code == 413
    # Still serving; the good event, and the same repeated identically, count once.
    ok = httpx.get(f"{service.url}/pbx/events", params={**GOOD, "token": INGRESS_TOKEN})
    assert ok.status_code == 200, ok.text
    same, body = raw_get(service.port, query(GOOD) + b"&call_id=" + GOOD["call_id"].encode())
    assert (same, body.split()[0]) == (200, b"duplicate"), body
    # Text that is not UTF-8, escaped or as raw bytes in the request line: read as cp1252.
    for call_id, identity in ((b"0000CB03", b"%C3%28"), (b"0000CB04", b"Nicol\xf2")):
        latin = {**GOOD, "call_id": call_id.decode()}
        got, body = raw_get(service.port, query(latin) + b"&identity=" + identity)
        assert got == 200, body
    unknown = httpx.get(
        f"{service.url}/pbx/events", params={"ssn_event": "99", "x": "y", "token": INGRESS_TOKEN}
    )
    assert unknown.status_code == 200
    service.stop()

    journal = SqliteJournal(service.data_dir / "journal.sqlite3")
    try:
        stored = journal.events_after(0)
        assert [s.raw.get("ssn_event") for s in stored] == ["16", "16", "16", "99"]
        assert stored[0].event.call_id == "0000CB01"
        assert [s.raw["identity"] for s in stored[1:3]] == ["\u00c3(", "Nicol\u00f2"]
        assert [s.raw["cb_raw_identity"] for s in stored[1:3]] == ["%C3(", "Nicol%F2"]
        rejected = journal.list_rejected(100)
        # Each refusal is kept once, with its reason (and the two POSTs).
        assert len(rejected) == len(BAD) + 2
        reasons = " ".join(r.reason for r in rejected)
        for _label, _target, _status, fragment in BAD:
            assert fragment in reasons
        for item in rejected:
            assert INGRESS_TOKEN not in item.raw
            assert "wrong-token-0123456789" not in item.raw
    finally:
        journal.close()
    assert INGRESS_TOKEN not in service.output()


def test_refuses_to_start_without_a_token(tmp_path: Path) -> None:
    env = service_env(tmp_path / "data")
    del env["CALLBRIDGE_INGRESS_TOKEN"]
    (tmp_path / "data").mkdir()
    run = subprocess.run(
        [CALLBRIDGE, "serve", "--port", "1"],
        cwd=tmp_path / "data",
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert run.returncode == 2, (run.returncode, run.stderr)
    assert "CALLBRIDGE_INGRESS_TOKEN" in run.stderr
    assert "Traceback" not in run.stderr


def test_insecure_flag_serves_without_a_token(tmp_path: Path) -> None:
    service = Service(tmp_path / "data", CALLBRIDGE_SERVER__INSECURE="true")
    del service.env["CALLBRIDGE_INGRESS_TOKEN"]
    service.start()
    try:
        response = httpx.get(f"{service.url}/pbx/events", params=GOOD)
        assert response.status_code == 200, response.text
    finally:
        assert service.stop() == 0
