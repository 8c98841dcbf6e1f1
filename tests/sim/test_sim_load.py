"""Load mode: N calls at a rate, each ringing then answered or abandoned, every one ended."""

from __future__ import annotations

from collections import Counter

import pytest
from sim_receiver import Receiver

from callbridge.sim import HttpSink, MemorySink, Simulator
from callbridge.sim.load import LoadSpec, run_load


def test_load_emits_n_calls() -> None:
    sink = MemorySink()
    spec = LoadSpec(rate=40, duration=1, ring_time=0.05, talk_time=0.1, answer_ratio=0.5, seed=7)
    with Simulator(sink=sink) as sim:
        report = run_load(sim, spec)
    assert spec.calls == 40
    assert report.started == 40
    assert report.answered + report.missed == 40
    assert report.skipped == 0
    by_code = Counter(e["ssn_event"] for e in sink.events)
    assert by_code["16"] == 40
    assert by_code["18"] == report.answered
    assert by_code["20"] == 40  # every call ended (the caller hung up or gave up)
    assert report.events == len(sink.events)
    assert all(call.ended for call in sim.calls)


def test_concurrency_cap_skips_calls() -> None:
    spec = LoadSpec(rate=50, duration=0.4, concurrency=3, ring_time=1, answer_ratio=0)
    with Simulator(sink=MemorySink()) as sim:
        report = run_load(sim, spec, settle_timeout=60)
    assert report.started == 3
    assert report.skipped == spec.calls - 3
    assert report.peak_concurrency == 3


def test_load_to_http_reports_statuses(receiver: Receiver) -> None:
    spec = LoadSpec(rate=25, duration=0.4, ring_time=0.02, talk_time=0.02, answer_ratio=1)
    with Simulator(sink=HttpSink(receiver.events_url)) as sim:
        report = run_load(sim, spec)
    assert report.statuses == {"200": 30}
    assert len(receiver.queries) == 30
    assert report.latency_p95 is not None
    assert any("receiver statuses 200: 30" in line for line in report.lines())


def test_bad_specs() -> None:
    with pytest.raises(ValueError, match="positive"):
        LoadSpec(rate=0)
    with pytest.raises(ValueError, match="answer_ratio"):
        LoadSpec(answer_ratio=2)
