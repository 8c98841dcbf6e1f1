"""The webhook plugin against a real local HTTP receiver."""

from __future__ import annotations

import json
import logging
import socket
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import pytest
from click.testing import CliRunner
from pydantic import SecretStr

from callbridge.cli import main
from callbridge.errors import PermanentError, RetryLater
from callbridge.models import CallRecord, CrmContext, ScreenPop, WrapUp
from callbridge.plugins.builtin.webhook import (
    SIGNATURE_HEADER,
    TIMESTAMP_HEADER,
    WebhookPlugin,
    WebhookSettings,
    sign,
    verify_signature,
)
from callbridge.plugins.manager import load_plugins
from callbridge.settings import Settings
from callbridge.testing import FakeAnswer, FakeHttpService, FakeRequest

SECRET = "webhook-secret-0123456789"


@dataclass
class Reply:
    status: int = 200
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: bytes
    signature_ok: bool


class Receiver(FakeHttpService):
    """A webhook receiver that checks signatures and answers from a script."""

    def __init__(self) -> None:
        super().__init__()
        self.replies: list[Reply] = []
        self.hook_url = f"{self.url}/hook"

    @property
    def received(self) -> list[Received]:
        """The POSTs received, oldest first, with whether their signature checks out."""
        with self.lock:
            requests = [r for r in self.requests if r.method == "POST"]
        return [
            Received(
                r.target.partition(" ")[2],
                r.headers,
                r.raw,
                verify_signature(
                    SECRET,
                    r.headers.get(TIMESTAMP_HEADER.lower(), ""),
                    r.raw,
                    r.headers.get(SIGNATURE_HEADER.lower(), ""),
                ),
            )
            for r in requests
        ]

    def route(self, request: FakeRequest) -> FakeAnswer:
        with self.lock:
            reply = self.replies.pop(0) if self.replies else Reply()
        return FakeAnswer(reply.status, reply.body, reply.headers, content_type="text/plain")


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    with Receiver() as server:
        yield server


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@pytest.fixture
def make_plugin() -> Iterator[Callable[..., WebhookPlugin]]:
    made: list[WebhookPlugin] = []

    def make(*urls: str, **fields: object) -> WebhookPlugin:
        plugin = WebhookPlugin()
        plugin.configure(
            WebhookSettings(urls=list(urls), secret=SecretStr(SECRET), **fields)  # type: ignore[arg-type]
        )
        made.append(plugin)
        return plugin

    yield make
    for plugin in made:
        plugin.close()


def test_call_record_is_signed_and_carries_the_idempotency_key(
    receiver: Receiver,
    make_plugin: Callable[..., WebhookPlugin],
    make_record: Callable[..., CallRecord],
) -> None:
    record = make_record()
    ref = make_plugin(receiver.hook_url).log_call(record)
    [got] = receiver.received
    assert got.signature_ok
    assert got.path == "/hook"
    assert got.headers["idempotency-key"] == record.idempotency_key("webhook")
    assert got.headers["content-type"] == "application/json"
    assert got.headers[SIGNATURE_HEADER.lower()].startswith("v1=")
    payload = json.loads(got.body)
    assert payload["type"] == "call_record"
    assert payload["idempotency_key"] == "callbridge:c1:0000AB12@20250314T093000.000Z:webhook"
    assert payload["record"]["call"]["remote_e164"] == "+390612345678"
    assert payload["record"]["duration_s"] == 125
    assert (ref.connector, ref.record_type, ref.record_id) == (
        "webhook",
        "webhook",
        record.idempotency_key("webhook"),
    )
    assert not verify_signature(
        "another-secret-entirely",
        got.headers[TIMESTAMP_HEADER.lower()],
        got.body,
        got.headers[SIGNATURE_HEADER.lower()],
    )


def test_receiver_can_name_the_record(
    receiver: Receiver,
    make_plugin: Callable[..., WebhookPlugin],
    make_record: Callable[..., CallRecord],
) -> None:
    receiver.replies.append(
        Reply(201, b'{"record_id": "act-42", "url": "https://crm.example/a/42"}')
    )
    ref = make_plugin(receiver.hook_url).log_call(make_record())
    assert (ref.record_id, ref.url) == ("act-42", "https://crm.example/a/42")


def test_wrapup_update_is_signed_with_a_key_per_revision(
    receiver: Receiver,
    make_plugin: Callable[..., WebhookPlugin],
    make_record: Callable[..., CallRecord],
) -> None:
    receiver.replies.append(Reply(201, b'{"record_id": "act-42"}'))
    receiver.replies.append(Reply(500, b"busy"))
    plugin = make_plugin(receiver.hook_url)
    record = make_record()
    ref = plugin.log_call(record)
    wrapup = WrapUp(
        call_key=record.call.key,
        revision=2,
        notes="call back on Monday",
        outcome="call back",
        record=CrmContext(connector="webhook", record_type="Contact", record_id="c-9"),
        saved_at=datetime(2025, 3, 14, 9, 40, tzinfo=UTC),
    )
    amended = record.model_copy(update={"wrapup": wrapup})
    with pytest.raises(RetryLater, match="busy"):
        plugin.update_call(amended, ref, 2)
    assert plugin.update_call(amended, ref, 2) == ref
    first, failed, update = receiver.received
    assert update.signature_ok
    key = f"{record.idempotency_key('webhook')}:wrapup:2"
    assert failed.headers["idempotency-key"] == update.headers["idempotency-key"] == key
    payload = json.loads(update.body)
    assert (payload["type"], payload["revision"]) == ("call_update", 2)
    assert payload["activity"]["record_id"] == "act-42"
    assert payload["wrapup"]["notes"] == "call back on Monday"
    assert payload["wrapup"]["record"]["record_id"] == "c-9"
    assert json.loads(first.body)["type"] == "call_record"


def test_rate_limit_with_retry_after(
    receiver: Receiver,
    make_plugin: Callable[..., WebhookPlugin],
    make_record: Callable[..., CallRecord],
) -> None:
    receiver.replies.append(Reply(429, b"slow down", {"Retry-After": "7"}))
    with pytest.raises(RetryLater, match="429") as caught:
        make_plugin(receiver.hook_url).log_call(make_record())
    assert caught.value.retry_after == 7


def test_server_error_is_retried(
    receiver: Receiver,
    make_plugin: Callable[..., WebhookPlugin],
    make_record: Callable[..., CallRecord],
) -> None:
    receiver.replies.append(Reply(503, b"maintenance"))
    with pytest.raises(RetryLater, match="503 Service Unavailable: maintenance") as caught:
        make_plugin(receiver.hook_url).log_call(make_record())
    assert caught.value.retry_after is None


def test_client_error_is_permanent_with_the_receivers_message(
    receiver: Receiver,
    make_plugin: Callable[..., WebhookPlugin],
    make_record: Callable[..., CallRecord],
) -> None:
    receiver.replies.append(Reply(400, b'{"error": "phone is not a valid field"}'))
    with pytest.raises(PermanentError, match="phone is not a valid field"):
        make_plugin(receiver.hook_url).log_call(make_record())


def test_unreachable_receiver_is_retried(
    make_plugin: Callable[..., WebhookPlugin], make_record: Callable[..., CallRecord]
) -> None:
    url = f"http://127.0.0.1:{free_port()}/hook?token=in-the-query"
    with pytest.raises(RetryLater, match="ConnectError") as caught:
        make_plugin(url).log_call(make_record())
    assert "in-the-query" not in str(caught.value)


def test_every_url_must_accept(
    receiver: Receiver,
    make_plugin: Callable[..., WebhookPlugin],
    make_record: Callable[..., CallRecord],
) -> None:
    with Receiver() as second:
        second.replies.append(Reply(500))
        plugin = make_plugin(receiver.hook_url, second.hook_url)
        with pytest.raises(RetryLater):
            plugin.log_call(make_record())
        plugin.log_call(make_record())  # the retry goes to both again
        assert len(receiver.received) == 2
        assert len(second.received) == 2
        keys = {r.headers["idempotency-key"] for r in receiver.received + second.received}
        assert len(keys) == 1


def test_pops_are_best_effort(
    receiver: Receiver,
    make_plugin: Callable[..., WebhookPlugin],
    make_pop: Callable[..., ScreenPop],
    caplog: pytest.LogCaptureFixture,
) -> None:
    receiver.replies.append(Reply(500, b"down"))
    plugin = make_plugin(receiver.hook_url)
    with caplog.at_level(logging.WARNING):
        plugin.screen_pop(make_pop())  # no exception
        plugin.screen_pop(make_pop())
    assert len(receiver.received) == 2
    assert all(r.signature_ok for r in receiver.received)
    assert json.loads(receiver.received[1].body)["type"] == "screen_pop"
    assert "500" in caplog.text
    assert SECRET not in caplog.text

    dead = make_plugin(f"http://127.0.0.1:{free_port()}/hook")
    with caplog.at_level(logging.WARNING):
        dead.screen_pop(make_pop())
    assert "ConnectError" in caplog.text


def test_pops_can_be_turned_off(
    receiver: Receiver,
    make_plugin: Callable[..., WebhookPlugin],
    make_pop: Callable[..., ScreenPop],
) -> None:
    make_plugin(receiver.hook_url, pops=False).screen_pop(make_pop())
    assert receiver.received == []


# --- the signature ---


def test_verify_signature() -> None:
    body = b'{"type":"call_record"}'
    now = 1_700_000_000
    header = sign(SECRET, str(now), body)
    assert verify_signature(SECRET, str(now), body, header, now=now)
    assert verify_signature(SecretStr(SECRET), str(now), body, header, now=now + 299)
    assert verify_signature(SECRET.encode(), str(now), body, f"v1=deadbeef, {header}", now=now)
    assert not verify_signature(SECRET, str(now), body, header, now=now + 301)  # replay
    assert not verify_signature(SECRET, str(now), body + b" ", header, now=now)  # tampered
    assert not verify_signature(SECRET, str(now + 1), body, header, now=now)  # other time
    assert not verify_signature(SECRET, "yesterday", body, header, now=now)
    assert not verify_signature(SECRET, str(now), body, "", now=now)
    assert verify_signature(
        SECRET, str(int(time.time())), body, sign(SECRET, str(int(time.time())), body)
    )


# --- settings and secrets ---


def test_not_configured_without_urls(settings: Callable[..., Settings]) -> None:
    info = load_plugins(settings(), entry_points=False).get("webhook")
    assert info.state == "not configured"


def test_urls_without_secret_fail_naming_the_variable(
    settings: Callable[..., Settings], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CALLBRIDGE_WEBHOOK_URLS", "https://crm.example/hook,ftp://nope")
    info = load_plugins(settings(), entry_points=False).get("webhook")
    assert info.state == "failed"
    assert "CALLBRIDGE_WEBHOOK_SECRET: Field required" in (info.reason or "")
    assert "CALLBRIDGE_WEBHOOK_URLS: Value error, 'ftp://nope' is not an http(s) URL" in (
        info.reason or ""
    )


def test_secret_never_in_repr_logs_or_listing(
    settings: Callable[..., Settings],
    monkeypatch: pytest.MonkeyPatch,
    receiver: Receiver,
    make_record: Callable[..., CallRecord],
    caplog: pytest.LogCaptureFixture,
    tmp_path: Path,
) -> None:
    monkeypatch.setenv("CALLBRIDGE_WEBHOOK_URLS", receiver.hook_url)
    monkeypatch.setenv("CALLBRIDGE_WEBHOOK_SECRET", SECRET)
    with caplog.at_level(logging.DEBUG):
        plugins = load_plugins(settings(), entry_points=False)
        info = plugins.get("webhook")
        assert info.state == "active"
        # a real connector is configured: the console steps aside
        assert plugins.get("console").state == "disabled"
        receiver.replies.append(Reply(500, b"oops"))
        with pytest.raises(RetryLater) as caught:
            plugins.log_call("webhook", make_record())
        plugins.log_call("webhook", make_record())
        plugins.shutdown(None)
    texts = [
        repr(info),
        repr(info.settings),
        str(info.settings),
        repr(info.plugin),
        repr(plugins),
        str(caught.value),
        caplog.text,
        json.dumps(info.settings.model_dump(mode="json") if info.settings else {}),
    ]
    for text in texts:
        assert SECRET not in text
    result = CliRunner().invoke(
        main, ["plugins", "--json"], env={"CALLBRIDGE_DATA_DIR": str(tmp_path / "cli")}
    )
    assert result.exit_code == 0, result.output
    assert SECRET not in result.output
    assert all(r.signature_ok for r in receiver.received)
