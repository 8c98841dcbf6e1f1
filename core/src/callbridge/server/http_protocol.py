"""uvicorn's httptools protocol, letting raw non-ASCII bytes in the request line through.

A PBX trigger that builds its curl URL by concatenating a caller's name sends the name's
bytes as they are: ``GET /pbx/events?...&identity=Nicolò|Rossi HTTP/1.1`` (UTF-8 or latin1
bytes, not percent-escapes). The HTTP grammar does not allow them, and both of uvicorn's
parsers refuse the request before any application code runs (llhttp via httptools: "Invalid
char in url query"; h11 likewise), answering 400 "Invalid HTTP request received": nothing is
recorded, and the PBX does not retry, so the pop and the activity are lost.

Neither parser has a setting for it (llhttp's leniencies cover headers, chunking and line
endings, not the URL). So this protocol percent-escapes every byte >= 0x80 of the *request
line* before the parser sees it: ``ò`` (``C3 B2``) becomes ``%C3%B2``, which is exactly what a
careful client would have sent. Nothing is lost (an escape is the byte), the ingress decodes
each parameter as it does any escape (UTF-8, else cp1252/latin-1), and everything else of the
request (headers, body) reaches the parser untouched. An ASCII request line, every normal
request, costs one ``find`` and one ``isascii`` per packet.

The protocol knows where a request line is: at the start of a connection and after each
complete message, up to the first line feed (possibly several packets later). The one case it
does not rewrite is a request *pipelined* in the same packet as the end of the previous one
(the parser has consumed it before the protocol learns the first one ended); such a request
gets the parser's 400 as before. curl does not pipeline.
"""

from __future__ import annotations

import re
from typing import Any

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

_HIGH_BYTE = re.compile(rb"[\x80-\xff]")


def _escape(match: re.Match[bytes]) -> bytes:
    return b"%%%02X" % match[0][0]


class LenientHttpProtocol(HttpToolsProtocol):
    """``HttpToolsProtocol`` with non-ASCII bytes of the request line percent-escaped."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        #: The next bytes received belong to a request line (or the blank lines before one).
        self._in_request_line = True

    def data_received(self, data: bytes) -> None:
        """Escape the request line's high bytes (if this packet has one), then parse."""
        if self._in_request_line:
            data = self._escape_request_line(data)
        super().data_received(data)

    def on_message_complete(self) -> None:
        """The request ended: the next bytes start the next request line."""
        super().on_message_complete()
        self._in_request_line = True

    def _escape_request_line(self, data: bytes) -> bytes:
        start = len(data) - len(data.lstrip(b"\r\n"))  # blank lines before a request line
        if start == len(data):
            return data
        end = data.find(b"\n", start)
        if end < 0:
            end = len(data)  # the line goes on in the next packet
        else:
            self._in_request_line = False
        line = data[start:end]
        if line.isascii():
            return data
        return data[:start] + _HIGH_BYTE.sub(_escape, line) + data[end:]
