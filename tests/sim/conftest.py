"""Fixtures of the simulator tests: a started Simulator, the real SOAP client, a receiver."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from sim_receiver import Receiver

from callbridge.sim import MemorySink, Simulator
from callbridge.voispeed.soap import SoapClient


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    server = Receiver()
    yield server
    server.stop()


@pytest.fixture
def sink() -> MemorySink:
    return MemorySink()


@pytest.fixture
def sim(sink: MemorySink) -> Iterator[Simulator]:
    """A started simulator delivering events inline to ``sink`` (deterministic)."""
    with Simulator(sink=sink, queue_events=False) as simulator:
        yield simulator


@pytest.fixture
def client(sim: Simulator) -> Iterator[SoapClient]:
    with SoapClient(sim.pbx_settings(), sleep=lambda _s: None) as soap:
        yield soap
