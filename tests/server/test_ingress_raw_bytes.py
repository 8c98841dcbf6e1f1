"""Text that is not percent-encoded UTF-8, sent over a real socket to the real service.

A PBX trigger that concatenates names into a curl URL sends either latin1 percent-escapes
(``identity=Nicol%F2``) or the raw bytes of the name in the request line
(``GET /pbx/events?...identity=Nicolò|Rossi``). The PBX does not retry a 400, so refusing
either loses the pop and the activity. These tests speak HTTP by hand over a TCP socket to
``LiveService`` (uvicorn as ``callbridge serve`` runs it), because the raw-bytes form never
reaches the ASGI app unless the server's own parser lets it through.
"""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator

import pytest

from callbridge import metrics
from callbridge.testing import CallbridgeEnv, LiveService, wait_until
from callbridge.voispeed import CallIncoming

TOKEN = "raw-bytes-ingress-token-0123456789"
BASE = b"ssn_event=16&number=0612345678&ext=201&sender_id=7&token=" + TOKEN.encode()


@pytest.fixture
def service(callbridge_env: CallbridgeEnv) -> Iterator[LiveService]:
    callbridge_env.set(CALLBRIDGE_INGRESS_TOKEN=TOKEN)
    live = LiveService().start()
    try:
        yield live
    finally:
        live.stop()


def _read_response(sock: socket.socket) -> tuple[int, bytes]:
    """One HTTP/1.1 response (status, body) with a Content-Length, read off the socket."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(4096)
        assert chunk, f"connection closed mid-response: {data!r}"
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    status = int(head.split(b" ", 2)[1])
    length = next(
        int(line.split(b":", 1)[1])
        for line in head.split(b"\r\n")[1:]
        if line.lower().startswith(b"content-length:")
    )
    while len(body) < length:
        chunk = sock.recv(4096)
        assert chunk, "connection closed mid-body"
        body += chunk
    return status, body


def _connect(service: LiveService) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", service.port), timeout=30)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return sock


def _get(target: bytes) -> bytes:
    return b"GET " + target + b" HTTP/1.1\r\nHost: pbx\r\n\r\n"


def _identity(service: LiveService, call_id: str) -> tuple[str, dict[str, str]]:
    (stored,) = [
        s
        for s in service.journal.events_after(0)
        if isinstance(s.event, CallIncoming) and s.event.call_id == call_id
    ]
    assert isinstance(stored.event, CallIncoming)
    assert stored.event.identity is not None
    return stored.event.identity.name, stored.event.params


def _fallbacks() -> float:
    return sum(
        metrics.REGISTRY.get_sample_value(
            "callbridge_ingress_charset_fallback_total", {"charset": charset}
        )
        or 0.0
        for charset in ("cp1252", "latin-1")
    )


def test_raw_utf8_bytes_in_the_request_line_are_accepted(service: LiveService) -> None:
    with _connect(service) as sock:
        target = b"/pbx/events?" + BASE + b"&call_id=A1&identity=" + "Nicolò|Rossi".encode()
        sock.sendall(_get(target))
        status, body = _read_response(sock)
    assert status == 200, body
    name, params = _identity(service, "000000A1")
    assert name == "Nicolò"
    assert "cb_raw_identity" not in params  # UTF-8: the text is the bytes, nothing to keep


def test_raw_latin1_bytes_in_the_request_line_are_accepted_and_kept(
    service: LiveService,
) -> None:
    before = _fallbacks()
    with _connect(service) as sock:
        name = "Nicolò|Rossi".encode("latin-1")
        target = b"/pbx/events?" + BASE + b"&call_id=A2&identity=" + name
        sock.sendall(_get(target))
        status, body = _read_response(sock)
    assert status == 200, body
    name, params = _identity(service, "000000A2")
    assert name == "Nicolò"
    assert params["cb_raw_identity"] == "Nicol%F2|Rossi"
    assert _fallbacks() == before + 1


def test_latin1_percent_escapes_are_accepted(service: LiveService) -> None:
    before = _fallbacks()
    with _connect(service) as sock:
        sock.sendall(_get(b"/pbx/events?" + BASE + b"&call_id=A3&identity=Nicol%F2%7CRossi"))
        status, body = _read_response(sock)
    assert status == 200, body
    name, params = _identity(service, "000000A3")
    assert name == "Nicolò"
    assert params["cb_raw_identity"] == "Nicol%F2|Rossi"
    assert _fallbacks() == before + 1


def test_cp1252_only_characters_and_raw_latin1_form_bodies(service: LiveService) -> None:
    body = BASE + b"&call_id=A4&identity=Fran\xe7ois \x80|Dupont"
    with _connect(service) as sock:
        sock.sendall(
            b"POST /pbx/events HTTP/1.1\r\nHost: pbx\r\n"
            b"Content-Type: application/x-www-form-urlencoded\r\n"
            b"Content-Length: " + str(len(body)).encode() + b"\r\n\r\n" + body
        )
        status, answer = _read_response(sock)
    assert status == 200, answer
    name, _ = _identity(service, "000000A4")
    assert name == "François €"


def test_keep_alive_and_a_request_line_split_across_packets(service: LiveService) -> None:
    """The second request on a connection, its request line arriving in three pieces."""
    with _connect(service) as sock:
        sock.sendall(_get(b"/pbx/events?" + BASE + b"&call_id=A5&identity=Anna"))
        assert _read_response(sock)[0] == 200
        request = _get(b"/pbx/events?" + BASE + b"&call_id=A6&identity=" + "Nicolò".encode())
        cut = request.index(b"\xc3") + 1  # inside the two bytes of "ò"
        for piece in (request[:20], request[20:cut], request[cut:]):
            sock.sendall(piece)
            time.sleep(0.05)
        status, body = _read_response(sock)
    assert status == 200, body
    assert _identity(service, "000000A6")[0] == "Nicolò"


def test_a_raw_byte_request_that_is_refused_keeps_its_text(service: LiveService) -> None:
    """Bad in another way (no call_id): the rejected record shows the decoded name."""
    with _connect(service) as sock:
        sock.sendall(_get(b"/pbx/events?" + BASE + b"&identity=Nicol\xf2"))
        status, body = _read_response(sock)
    assert status == 400, body
    wait_until(lambda: service.journal.list_rejected(), "the rejected request is kept")
    (rejected,) = service.journal.list_rejected()
    assert "identity=Nicolò" in rejected.raw
    assert TOKEN not in rejected.raw
