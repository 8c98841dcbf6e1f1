"""A real local SOAP endpoint for the client tests: a threaded ``http.server`` on a free port.

(A uniquely named module rather than conftest, so tests can import the helpers.)

Each request takes the next scripted ``Reply`` (or the default one) and is recorded, so the
tests can count exactly how many requests the "PBX" saw.
"""

from __future__ import annotations

import socket
import threading
from dataclasses import dataclass

from callbridge.settings import PbxSettings
from callbridge.testing import FakeAnswer, FakeHttpService, FakeRequest

PASSWORD = "s3cret-pw"
PASSWORD_MD5 = "a6f7b4e1b2f1d5f4e1f0c5e3a1b2c3d4"


@dataclass
class Reply:
    """What the server does with one request."""

    status: int = 200
    body: bytes = b""
    #: Hold the answer until the server is released (makes the client's read time out).
    hang: bool = False
    #: Close the connection without answering.
    drop: bool = False
    content_type: str = "text/xml; charset=utf-8"


def response(command: str, **values: str) -> bytes:
    """A plausible success envelope, as the simulator answers."""
    children = "".join(f"<{k}>{v}</{k}>" for k, v in values.items())
    return (
        '<?xml version="1.0" encoding="UTF-8"?>'
        '<soap:Envelope xmlns:soap="http://www.w3.org/2001/12/soap-envelope" '
        'xmlns:vspbx="urn:vspbx"><soap:Body>'
        f"<vspbx:{command}Response>{children}</vspbx:{command}Response>"
        "</soap:Body></soap:Envelope>"
    ).encode()


def fault11(code: str, text: str) -> bytes:
    return (
        '<soap:Envelope xmlns:soap="http://schemas.xmlsoap.org/soap/envelope/"><soap:Body>'
        f"<soap:Fault><faultcode>{code}</faultcode><faultstring>{text}</faultstring>"
        "</soap:Fault></soap:Body></soap:Envelope>"
    ).encode()


class SoapServer(FakeHttpService):
    """The running server: its URL, the script of replies, the requests it saw (``seen``).

    ``listen=False``: not listening until ``start()`` (connections are refused till then).
    """

    headers = {"Connection": "close"}

    def __init__(self, port: int = 0, *, listen: bool = True) -> None:
        super().__init__(port=port, listen=listen)
        self.script: list[Reply] = []
        self.default = Reply(body=response("Any", result="ok"))
        #: Set at ``stop``: a hanging answer gives up.
        self.release = threading.Event()

    @property
    def soap_url(self) -> str:
        return f"{self.url}/soap"

    @property
    def seen(self) -> list[FakeRequest]:
        """The requests received, oldest first (``raw``: the envelope as sent)."""
        with self.lock:
            return list(self.requests)

    def settings(self, **overrides: object) -> PbxSettings:
        values: dict[str, object] = {
            "soap_url": self.soap_url,
            "user": "auth-integration@acme",
            "password": PASSWORD,
            "connect_timeout": 2.0,
            "read_timeout": 10.0,
            "retry_attempts": 3,
            "retry_max_seconds": 30.0,
        }
        values.update(overrides)
        return PbxSettings.model_validate(values)

    @property
    def count(self) -> int:  # type: ignore[override]
        with self.lock:
            return len(self.requests)

    def route(self, request: FakeRequest) -> FakeAnswer:
        with self.lock:
            reply = self.script.pop(0) if self.script else self.default
        if reply.hang:
            self.release.wait(30)
        if reply.drop or reply.hang:
            return FakeAnswer(drop=True)
        return FakeAnswer(reply.status, reply.body, content_type=reply.content_type)

    def stop(self) -> None:
        self.release.set()
        super().stop()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port
