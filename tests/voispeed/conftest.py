"""Fixtures of the VOIspeed tests: a real local SOAP server (see ``pbx_soap_server``)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from pbx_soap_server import SoapServer, free_port


@pytest.fixture
def soap_server() -> Iterator[SoapServer]:
    with SoapServer() as server:
        yield server


@pytest.fixture
def closed_port_server() -> Iterator[SoapServer]:
    """A server object on a free port that is NOT listening until ``start()`` is called."""
    server = SoapServer(port=free_port(), listen=False)
    yield server
    server.stop()
