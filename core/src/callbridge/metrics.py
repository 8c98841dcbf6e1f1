"""Prometheus metrics of callbridge, defined once and shared by every part.

One registry per process (``REGISTRY``), served at ``/metrics``. Parts increment the metrics
here rather than defining their own, so names stay consistent:
``callbridge_<thing>_<unit>``. Label values are bounded (event codes, plugin names, results).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable

from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

REGISTRY = CollectorRegistry(auto_describe=True)

EVENTS_ACCEPTED = Counter(
    "callbridge_events_accepted_total",
    "PBX events accepted into the journal (duplicates included, see label).",
    ["ssn_event", "source", "duplicate"],
    registry=REGISTRY,
)
EVENTS_REJECTED = Counter(
    "callbridge_events_rejected_total",
    "PBX requests refused by the ingress, by reason.",
    ["reason", "source"],
    registry=REGISTRY,
)
INGRESS_CHARSET_FALLBACK = Counter(
    "callbridge_ingress_charset_fallback_total",
    "Ingress parameters that were not UTF-8 and were read in a fallback charset.",
    ["charset"],
    registry=REGISTRY,
)
ACK_LATENCY = Histogram(
    "callbridge_ingress_ack_seconds",
    "Time from request start to the PBX's answer (includes the durable journal write).",
    buckets=(0.0005, 0.001, 0.002, 0.003, 0.005, 0.0075, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0),
    registry=REGISTRY,
)
POPS_SENT = Counter(
    "callbridge_pops_total", "Screen-pops published, by call state.", ["state"], registry=REGISTRY
)
LOOKUPS = Counter(
    "callbridge_lookups_total",
    "Contact lookups by plugin and result (found, not_found, timeout, error, cache_hit).",
    ["plugin", "result"],
    registry=REGISTRY,
)
SOAP_COMMANDS = Counter(
    "callbridge_soap_commands_total",
    "SOAP commands sent to the PBX, by command and result.",
    ["command", "result"],
    registry=REGISTRY,
)
DELIVERY_ATTEMPTS = Counter(
    "callbridge_delivery_attempts_total",
    "log_call attempts by plugin and result (done, retry, dead).",
    ["plugin", "result"],
    registry=REGISTRY,
)

EVENTS_FAILED = Counter(
    "callbridge_events_failed_total",
    "Journaled events (or tracker changes) given up after retrying for "
    "CALLBRIDGE_DISPATCH__EVENT_RETRY_MAX_AGE, kept as dead letters among rejected requests.",
    ["item"],
    registry=REGISTRY,
)
REJECTED_UNRECORDED = Counter(
    "callbridge_rejected_unrecorded_total",
    "Refused ingress requests not kept among rejected requests: over the per-source limit.",
    ["reason"],
    registry=REGISTRY,
)
PRUNED = Counter(
    "callbridge_journal_pruned_total",
    "Journal entries deleted by retention, by kind.",
    ["kind"],
    registry=REGISTRY,
)


class _DeliveryStates(Collector):
    """Current deliveries by plugin and state, read from the journal at scrape time."""

    def __init__(self, source: Callable[[], Iterable[tuple[str, str, int]]]) -> None:
        self._source = source

    def collect(self) -> Iterable[Metric]:
        family = GaugeMetricFamily(
            "callbridge_deliveries", "Deliveries by plugin and state.", labels=["plugin", "state"]
        )
        try:
            counts = list(self._source())
        except Exception as exc:  # a scrape must not fail because the journal is away
            logging.getLogger(__name__).warning("deliveries not counted: %s", exc)
            counts = []
        for plugin, state, count in counts:
            family.add_metric([plugin, state], count)
        yield family


_delivery_collector: _DeliveryStates | None = None


def watch_deliveries(source: Callable[[], Iterable[tuple[str, str, int]]]) -> None:
    """Register (or replace) the function that counts deliveries for ``/metrics``."""
    global _delivery_collector
    if _delivery_collector is not None:
        REGISTRY.unregister(_delivery_collector)
    _delivery_collector = _DeliveryStates(source)
    REGISTRY.register(_delivery_collector)
