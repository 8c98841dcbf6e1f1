"""Load mode: many concurrent inbound calls at a steady rate, for benchmarks and soak tests.

Calls start on the calling thread at ``rate`` per second for ``duration`` seconds; each rings
an agent (round robin over the users that have devices), then is answered after
``ring_time`` and hung up by the caller after ``talk_time`` (16, 18, 20), or, for the share
``1 - answer_ratio``, abandoned after ``ring_time`` (16, 20). Answers and hang-ups run on the
simulator's scheduler, so hundreds of calls can be up at once without a thread each. When
``concurrency`` calls are already up a new one is skipped and counted, never queued: the
rate stays honest.

The report says what was sent: calls started, answered, missed, skipped, the rate reached,
and, when events go to an ``HttpSink``, how the receiver answered (statuses, latency).
"""

from __future__ import annotations

import random
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from functools import partial

from .emitter import FanoutSink, HttpSink, MemorySink
from .engine import SimCall
from .simulator import Simulator


@dataclass(frozen=True)
class LoadSpec:
    """What to generate."""

    rate: float = 10.0
    duration: float = 10.0
    concurrency: int = 500
    ring_time: float = 1.0
    talk_time: float = 3.0
    answer_ratio: float = 0.8
    seed: int | None = None

    def __post_init__(self) -> None:
        if self.rate <= 0 or self.duration <= 0:
            raise ValueError("rate and duration must be positive")
        if self.concurrency < 1:
            raise ValueError("concurrency must be at least 1")
        if self.ring_time < 0 or self.talk_time < 0:
            raise ValueError("ring and talk times must be >= 0")
        if not 0 <= self.answer_ratio <= 1:
            raise ValueError("answer_ratio must be between 0 and 1")

    @property
    def calls(self) -> int:
        """How many calls the run tries to start."""
        return max(1, round(self.rate * self.duration))


@dataclass
class LoadReport:
    """What a load run sent."""

    spec: LoadSpec
    started: int = 0
    answered: int = 0
    missed: int = 0
    skipped: int = 0
    peak_concurrency: int = 0
    elapsed: float = 0.0
    #: Events handed to the sink (counted from the sink where it can say).
    events: int | None = None
    statuses: dict[str, int] = field(default_factory=dict)
    latency_p50: float | None = None
    latency_p95: float | None = None
    latency_max: float | None = None
    call_ids: list[str] = field(default_factory=list)

    @property
    def achieved_rate(self) -> float:
        """Calls started per second of wall time spent starting them."""
        return self.started / self.elapsed if self.elapsed > 0 else 0.0

    def lines(self) -> list[str]:
        """A human summary."""
        out = [
            f"calls started {self.started} of {self.spec.calls} "
            f"({self.achieved_rate:.1f}/s, target {self.spec.rate:g}/s), "
            f"answered {self.answered}, missed {self.missed}, skipped {self.skipped}",
            f"peak concurrent calls {self.peak_concurrency}",
        ]
        if self.events is not None:
            out.append(f"events sent {self.events}")
        if self.statuses:
            shown = ", ".join(f"{k}: {v}" for k, v in sorted(self.statuses.items()))
            out.append(f"receiver statuses {shown}")
        if self.latency_p50 is not None:
            out.append(
                f"delivery latency p50 {self.latency_p50 * 1000:.1f} ms, "
                f"p95 {(self.latency_p95 or 0) * 1000:.1f} ms, "
                f"max {(self.latency_max or 0) * 1000:.1f} ms"
            )
        return out


def _percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


def run_load(sim: Simulator, spec: LoadSpec, *, settle_timeout: float = 60.0) -> LoadReport:
    """Generate the load on a simulator and wait until every call ended and was delivered."""
    rng = random.Random(spec.seed)
    agents = [u.extension for u in sim.directory.users if sim.directory.devices_of(u)]
    if not agents:
        raise ValueError("the directory has no user with a device to ring")
    report = LoadReport(spec)
    lock = threading.Lock()
    live = 0

    def finished() -> None:
        nonlocal live
        with lock:
            live -= 1

    def hang_up(call: SimCall) -> None:
        try:
            sim.hangup(call, by="remote")
        finally:
            finished()

    start = time.monotonic()
    for index in range(spec.calls):
        due = start + index / spec.rate
        delay = due - time.monotonic()
        if delay > 0:
            time.sleep(delay)
        with lock:
            if live >= spec.concurrency:
                report.skipped += 1
                continue
            live += 1
            report.peak_concurrency = max(report.peak_concurrency, live)
        number = f"+39 06 {rng.randrange(1000, 9999)} {rng.randrange(1000, 9999)}"
        call = sim.incoming_call(number, agents[index % len(agents)], caller_name="Load Test")
        report.started += 1
        report.call_ids.append(call.call_id)
        if rng.random() < spec.answer_ratio:
            report.answered += 1
            sim.later(spec.ring_time, partial(sim.answer, call))
            sim.later(spec.ring_time + spec.talk_time, partial(hang_up, call))
        else:
            report.missed += 1
            sim.later(spec.ring_time, partial(hang_up, call))
    report.elapsed = time.monotonic() - start
    if not sim.scheduler.wait_idle(settle_timeout):
        raise TimeoutError("calls still running after the settle timeout")
    sim.flush(settle_timeout)
    _describe_sink(sim, report)
    return report


def _describe_sink(sim: Simulator, report: LoadReport) -> None:
    sinks = sim.inner_sink.sinks if isinstance(sim.inner_sink, FanoutSink) else (sim.inner_sink,)
    http = [s for s in sinks if isinstance(s, HttpSink)]
    memory = [s for s in sinks if isinstance(s, MemorySink)]
    sink = http[0] if http else memory[0] if memory else None
    if isinstance(sink, MemorySink):
        ids = set(report.call_ids)
        owners = {
            leg.user_call_id for call in sim.calls if call.call_id in ids for leg in call.legs
        }
        report.events = sum(1 for e in sink.events if e.get("call_id") in owners)
    elif isinstance(sink, HttpSink):
        deliveries = sink.deliveries
        report.events = len(deliveries)
        report.statuses = dict(
            Counter("no answer" if d.status is None else str(d.status) for d in deliveries)
        )
        seconds = [d.seconds for d in deliveries]
        if seconds:
            report.latency_p50 = _percentile(seconds, 0.5)
            report.latency_p95 = _percentile(seconds, 0.95)
            report.latency_max = max(seconds)
