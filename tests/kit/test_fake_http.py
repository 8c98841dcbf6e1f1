"""The kit's ``FakeHttpService``: one base for every fake HTTP service (CRMs, webhooks, the
PBX's SOAP endpoint): routes, a request log, injected faults, HTTPS, a port freed on stop."""

from __future__ import annotations

import socket
import ssl
from pathlib import Path

import httpx
import pytest

from callbridge.testing import (
    CrmRefusal,
    FakeAnswer,
    FakeCrm,
    FakeHttpService,
    FakeRequest,
    LocalCa,
    QuietHandler,
)


class _Notes(FakeHttpService):
    headers = {"X-Service": "notes"}

    def __init__(self, **kwargs: object) -> None:
        super().__init__(**kwargs)  # type: ignore[arg-type]
        self.notes: list[str] = []

    def route(self, request: FakeRequest) -> FakeAnswer:
        if request.line == "POST /notes":
            with self.lock:
                self.notes.append(request.arg("text"))
            return FakeAnswer(201, {"id": len(self.notes)})
        if request.line == "GET /soap":
            return FakeAnswer(200, b"<ok/>", content_type="text/xml")
        raise CrmRefusal(404, {"error": "no such thing"}, {"X-Why": "unknown"})


def test_routes_answer_json_bytes_and_refusals_and_every_request_is_logged() -> None:
    with _Notes() as fake, httpx.Client(base_url=fake.url, timeout=10) as client:
        created = client.post("/notes", json={"text": "hello"})
        assert (created.status_code, created.json()) == (201, {"id": 1})
        assert created.headers["x-service"] == "notes"
        form = client.post("/notes", data={"text": "form"})
        assert form.status_code == 201 and fake.notes == ["hello", "form"]
        soap = client.get("/soap")
        assert (soap.text, soap.headers["content-type"]) == ("<ok/>", "text/xml")
        missing = client.get("/nothing", params={"q": "1"})
        assert (missing.status_code, missing.json()) == (404, {"error": "no such thing"})
        assert missing.headers["x-why"] == "unknown"
        bad = client.post(
            "/notes", content=b"{not json", headers={"Content-Type": "application/json"}
        )
        assert bad.status_code == 400
    assert [r.line for r in fake.requests] == [
        "POST /notes", "POST /notes", "GET /soap", "GET /nothing",
    ]  # fmt: skip
    assert fake.requests[-1].target == "GET /nothing?q=1"
    assert fake.count("POST", "/notes") == 2


def test_faults_fail_drop_or_lose_the_answer_of_matching_requests() -> None:
    with _Notes() as fake, httpx.Client(base_url=fake.url, timeout=10) as client:
        fake.fail_next("POST /notes", 429, {"error": "slow"}, headers={"Retry-After": "2"})
        limited = client.post("/notes", json={"text": "a"})
        assert (limited.status_code, limited.headers["retry-after"]) == (429, "2")
        assert fake.notes == []  # refused before the work
        fake.fail_next("/notes", 503, {"error": "lost"}, method="POST", after=True)
        client.get("/soap")  # another method: not matched
        lost = client.post("/notes", json={"text": "b"})
        assert lost.status_code == 503 and fake.notes == ["b"]  # done, the answer lost
        fake.drop_next("POST /notes")
        with pytest.raises(httpx.HTTPError):
            client.post("/notes", json={"text": "c"})
        assert fake.notes == ["b", "c"]  # carried out, then hung up
        fake.fail_next("", 500, times=5)
        fake.clear_faults()
        assert client.post("/notes", json={"text": "d"}).status_code == 201


def test_https_with_a_certificate_the_client_trusts(tmp_path: Path) -> None:
    ca = LocalCa(tmp_path / "ca")
    assert ca.pem.read_text().startswith("-----BEGIN CERTIFICATE-----")
    with _Notes(ssl_context=ca.server_context()) as fake:
        assert fake.url.startswith("https://127.0.0.1:")
        trusted = ssl.create_default_context(cafile=str(ca.pem))
        answer = httpx.post(f"{fake.url}/notes", json={"text": "x"}, verify=trusted)
        assert answer.status_code == 201
        with pytest.raises(httpx.ConnectError):  # a client that does not trust the CA
            httpx.post(f"{fake.url}/notes", json={"text": "y"})
    assert fake.notes == ["x"]


def test_the_port_is_known_before_start_and_free_after_stop() -> None:
    fake = _Notes()
    port = fake.port
    assert fake.url == f"http://127.0.0.1:{port}"
    with fake:
        assert httpx.get(f"{fake.url}/soap", timeout=10).status_code == 200
    with pytest.raises(OSError), socket.create_connection(("127.0.0.1", port), timeout=2):
        pass


def test_the_earlier_names_still_work() -> None:
    """``FakeCrm`` is the same class; a ``QuietHandler`` class still serves (deprecated)."""
    assert FakeCrm is FakeHttpService

    class Teapot(QuietHandler):
        def do_GET(self) -> None:
            self.reply(418, self.path.encode())

    with FakeHttpService(Teapot) as service:
        answer = httpx.get(f"{service.url}/brew?cup=1", timeout=10)
        assert (answer.status_code, answer.text) == (418, "/brew?cup=1")


class _Hangs(FakeHttpService):
    def route(self, request: FakeRequest) -> FakeAnswer:
        return FakeAnswer(drop=True) if request.path == "/hang-up" else FakeAnswer(204)


def test_a_route_can_hang_up_without_answering() -> None:
    with _Hangs() as fake, httpx.Client(base_url=fake.url, timeout=10) as client:
        with pytest.raises(httpx.HTTPError):
            client.get("/hang-up")
        assert client.get("/fine").status_code == 204
        assert fake.count("GET", "/hang-up") == 1


def test_a_service_not_listening_refuses_connections_until_started() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    fake = _Hangs(port=port, listen=False)
    try:
        assert fake.url == f"http://127.0.0.1:{port}"
        with pytest.raises(httpx.ConnectError):
            httpx.get(f"{fake.url}/fine", timeout=10)
        fake.start()
        assert httpx.get(f"{fake.url}/fine", timeout=10).status_code == 204
    finally:
        fake.stop()
