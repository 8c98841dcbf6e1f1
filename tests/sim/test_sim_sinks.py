"""HttpSink against a real local receiver; QueuedSink ordering; secrets stay out of logs."""

from __future__ import annotations

import logging
import socket

import pytest
from sim_receiver import Receiver

from callbridge.sim import HttpSink, MemorySink, QueuedSink, Simulator

EVENT = {"ssn_event": "16", "call_id": "000A0001", "number": "+39 06 1234 5678", "ext": "201"}


def test_get_with_query_string_and_token(receiver: Receiver) -> None:
    sink = HttpSink(receiver.events_url, token="tok-123")
    sink.emit(EVENT)
    sink.close()
    assert receiver.paths == ["/pbx/events"]
    assert receiver.queries == [{**EVENT, "token": "tok-123"}]
    assert sink.statuses == [200]
    assert sink.deliveries[0].ok


def test_4xx_is_recorded_and_logged_not_retried(
    receiver: Receiver, caplog: pytest.LogCaptureFixture
) -> None:
    receiver.statuses = [403]
    sink = HttpSink(receiver.events_url, token="tok-secret", backoff=0)
    with caplog.at_level(logging.WARNING):
        sink.emit(EVENT)
        sink.emit(EVENT)  # the next event still goes out
    assert len(receiver.queries) == 2
    assert sink.statuses == [403, 200]
    assert sink.deliveries[0].attempts == 1
    assert "HTTP 403" in caplog.text
    assert "tok-secret" not in caplog.text
    assert "tok-secret" not in repr(sink)


def test_5xx_is_retried(receiver: Receiver) -> None:
    receiver.statuses = [503, 500]
    sink = HttpSink(receiver.events_url, backoff=0)
    sink.emit(EVENT)
    assert sink.statuses == [200]
    assert sink.deliveries[0].attempts == 3
    assert len(receiver.queries) == 3


def test_connection_errors_are_retried_then_recorded(caplog: pytest.LogCaptureFixture) -> None:
    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    sink = HttpSink(f"http://127.0.0.1:{port}/x", token="tok-secret", attempts=3, backoff=0)
    with caplog.at_level(logging.WARNING):
        sink.emit(EVENT)  # never raises
    delivery = sink.deliveries[0]
    assert delivery.status is None
    assert delivery.attempts == 3
    assert delivery.error == "ConnectError"
    assert "tok-secret" not in caplog.text


def test_bad_url_is_refused() -> None:
    with pytest.raises(ValueError, match="http"):
        HttpSink("ftp://example.org/")


def test_queued_sink_keeps_order_and_flushes() -> None:
    memory = MemorySink()
    queued = QueuedSink(memory)
    for index in range(200):
        queued.emit({"ssn_event": "16", "call_id": f"{index:08X}"})
    queued.flush(timeout=30)
    assert [e["call_id"] for e in memory.events] == [f"{i:08X}" for i in range(200)]
    queued.close()


def test_simulator_to_a_real_receiver(receiver: Receiver) -> None:
    """The whole path the demo uses: engine -> queue -> HTTP GET -> receiver."""
    sink = HttpSink(receiver.events_url, token="t0k")
    with Simulator(sink=sink) as sim:
        sim.device_login("000012A0")
        call = sim.incoming_call("+39 06 1234 5678", "201", caller_name="Anna Neri")
        sim.answer(call)
        sim.hangup(call, by="remote")
        sim.flush()
    assert [r["ssn_event"] for r in receiver.queries] == ["1", "16", "18", "20"]
    assert all(r["token"] == "t0k" for r in receiver.queries)
    assert receiver.queries[1]["number"] == "+39 06 1234 5678"
    assert receiver.queries[1]["identity"] == "Anna|Neri||0|0"
    assert sink.statuses == [200, 200, 200, 200]
