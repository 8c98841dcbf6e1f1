"""Prometheus metrics of callbridge, defined once and shared by every part.

One registry per process (``REGISTRY``), served at ``/metrics``. Parts increment the metrics
here rather than defining their own, so names stay consistent:
``callbridge_<thing>_<unit>``. Label values are bounded (event codes, plugin names, results).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.parser import text_string_to_metric_families
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
#: Per company (a ``company`` label): one series per company and result, never per call or
#: agent, so 100 companies cost a few hundred series. Plugin-labelled metrics need no company
#: label: an instance's name (``hubspot@acme``) already says whose it is.
COMPANY_EVENTS = Counter(
    "callbridge_company_events_total",
    "PBX events per company: accepted, duplicate, or refused (a company id not the token's).",
    ["company", "result"],
    registry=REGISTRY,
)
COMPANY_POPS = Counter(
    "callbridge_company_pops_total",
    "Screen-pops published, by company.",
    ["company"],
    registry=REGISTRY,
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
ENGINE_RESTARTS = Counter(
    "callbridge_engine_restarts_total",
    "Engine child processes restarted by serve after they exited, by exit code.",
    ["code"],
    registry=REGISTRY,
)
ENGINE_UP = Gauge(
    "callbridge_engine_up",
    "1 while the engine child answers its health checks and reports no problem, else 0.",
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
        by_company = GaugeMetricFamily(
            "callbridge_company_deliveries",
            "Deliveries by company and state.",
            labels=["company", "state"],
        )
        try:
            counts = list(self._source())
        except Exception as exc:  # a scrape must not fail because the journal is away
            logging.getLogger(__name__).warning("deliveries not counted: %s", exc)
            counts = []
        totals: dict[tuple[str, str], int] = {}
        for plugin, state, count in counts:
            family.add_metric([plugin, state], count)
            key = (plugin.partition("@")[2] or "default", state)
            totals[key] = totals.get(key, 0) + count
        for (company, state), count in sorted(totals.items()):
            by_company.add_metric([company, state], count)
        yield family
        yield by_company


_delivery_collector: _DeliveryStates | None = None


def watch_deliveries(source: Callable[[], Iterable[tuple[str, str, int]]]) -> None:
    """Register (or replace) the function that counts deliveries for ``/metrics``."""
    global _delivery_collector
    if _delivery_collector is not None:
        REGISTRY.unregister(_delivery_collector)
    _delivery_collector = _DeliveryStates(source)
    REGISTRY.register(_delivery_collector)


def exposition(others: Iterable[bytes] = ()) -> bytes:
    """This process's metrics, with those of other processes (the engine child) added in.

    Each process counts in its own memory; ``serve`` asks its engine for its exposition text
    and adds it here, so one scrape of ``/metrics`` sees every process. Samples with the same
    name and labels are summed (a counter incremented in both processes), ``*_created`` keeps
    the earliest. A child that restarted starts its counters from zero again: Prometheus takes
    the drop as a counter reset, as after any restart.
    """
    families: dict[str, Metric] = {}
    values: dict[str, dict[tuple[str, tuple[tuple[str, str], ...]], float]] = {}

    def add(family: Metric) -> None:
        known = families.setdefault(
            family.name, Metric(family.name, family.documentation, family.type, family.unit)
        )
        samples = values.setdefault(known.name, {})
        for sample in family.samples:
            key = (sample.name, tuple(sorted(sample.labels.items())))
            if key not in samples:
                samples[key] = sample.value
            elif sample.name.endswith("_created"):
                samples[key] = min(samples[key], sample.value)
            else:
                samples[key] += sample.value

    for family in REGISTRY.collect():
        add(family)
    for text in others:
        for family in text_string_to_metric_families(text.decode("utf-8", errors="replace")):
            add(family)
    for name, family in families.items():
        for (sample_name, labels), value in values[name].items():
            family.add_sample(sample_name, dict(labels), value)
    registry = CollectorRegistry(auto_describe=False)
    registry.register(_Fixed(list(families.values())))
    return generate_latest(registry)


def only_company(text: bytes, company: str) -> bytes:
    """The samples of ``text`` that are ``company``'s: its ``company`` label, or a plugin
    instance of it (``plugin="hubspot@acme"``; ``default``'s plugins have no ``@``)."""

    def mine(labels: dict[str, str]) -> bool:
        if "company" in labels:
            return labels["company"] == company
        if "plugin" in labels:
            return (labels["plugin"].partition("@")[2] or "default") == company
        return False

    kept = []
    for family in text_string_to_metric_families(text.decode("utf-8", errors="replace")):
        samples = [s for s in family.samples if mine(s.labels)]
        if samples:
            copy = Metric(family.name, family.documentation, family.type, family.unit)
            copy.samples = samples
            kept.append(copy)
    registry = CollectorRegistry(auto_describe=False)
    registry.register(_Fixed(kept))
    return generate_latest(registry)


class _Fixed(Collector):
    """Families collected already (``exposition``'s merge), served as they are."""

    def __init__(self, families: list[Metric]) -> None:
        self._families = families

    def collect(self) -> Iterable[Metric]:
        return iter(self._families)
