"""The ``CallRecord`` of a finished call, and the contact lookups it still needs at log time.

Kept out of the dispatcher's thread plumbing so that what a record holds can be read in one
place:

- durations to the millisecond (``duration_ms``, ``ring_ms``) next to the whole seconds,
  so a CRM that takes milliseconds (HubSpot) gets them, and one that takes seconds rounds;
- per connector, whether its contact lookup *answered* (``found`` / ``not_found``) or not
  (``unsettled``: the search failed, or had not had its turn when the call ended);
- :func:`settle_lookup`, run on the delivery thread just before ``log_call``: an unsettled
  lookup is done then, and its failure fails the delivery attempt (retried by the delivery's
  own policy) instead of writing an activity attached to no record.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from typing import Any, TypeVar

from .. import metrics
from ..errors import PermanentError, RetryLater
from ..models import SETTLED_LOOKUPS, Call, CallRecord, Contact, LookupStatus, Outcome
from ..plugins.tenants import base_name
from .cache import MISSING, TTLCache

_V = TypeVar("_V")

log = logging.getLogger(__name__)

LookupCache = TTLCache[tuple[str, str], Contact | None]
#: ``Plugins.lookup_contact``: (plugin name, number, call) -> what the plugin returned.
LookupContact = Callable[[str, str, Call], object]


def duration_ms(call: Call) -> int:
    """Milliseconds from answer to end, never negative; 0 when the call was not answered."""
    if call.answer_at is None or call.end_at is None or call.outcome is not Outcome.ANSWERED:
        return 0
    return max(0, round((call.end_at - call.answer_at).total_seconds() * 1000))


def ring_ms(call: Call) -> int:
    """Milliseconds from ring to answer (or to end when unanswered); 0 when unknown."""
    stop = call.answer_at or call.end_at
    if call.ring_at is None or stop is None:
        return 0
    return max(0, round((stop - call.ring_at).total_seconds() * 1000))


def lookup_number(call: Call) -> str:
    """The number lookups search for: E.164 when parsed, else the number as given."""
    return call.remote_e164 or call.remote_number.strip()


def lookup_states(
    call: Call, names: Iterable[str], contacts: dict[str, Contact], cache: LookupCache
) -> tuple[dict[str, Contact], dict[str, LookupStatus]]:
    """The contacts and lookup states of a finishing call, per lookup plugin.

    A contact already known is ``found``. Otherwise the lookup cache holds the answer of a
    lookup that came back after the pop's budget (a contact, or a cached "no match"); with
    nothing there, the lookup failed or never ran, and the state is ``unsettled``.
    """
    number = lookup_number(call)
    found = dict(contacts)
    states: dict[str, LookupStatus] = {}
    for name in names:
        if name in found:
            states[name] = LookupStatus.FOUND
            continue
        if not number:
            states[name] = LookupStatus.NO_NUMBER
            continue
        cached = cache.get((name, number))
        if isinstance(cached, Contact):
            found[name] = cached
            states[name] = LookupStatus.FOUND
        elif cached is MISSING:
            states[name] = LookupStatus.UNSETTLED
        else:
            states[name] = LookupStatus.NOT_FOUND
    return by_plugin_name(found), by_plugin_name(states)


def by_plugin_name(by_instance: dict[str, _V]) -> dict[str, _V]:
    """Keyed by plugin name (``hubspot``), as plugins and pages look them up
    (``record.contact_for(self.name)``), not by instance (``hubspot@acme``): a call is one
    company's, so its instances' plugin names are unique."""
    return {base_name(name): value for name, value in by_instance.items()}


def build_record(
    call: Call,
    contacts: dict[str, Contact],
    lookups: dict[str, LookupStatus] | None = None,
) -> CallRecord:
    """The CallRecord for a finished call: durations to the ms and in whole seconds."""
    d_ms, r_ms = duration_ms(call), ring_ms(call)
    return CallRecord(
        call=call,
        contacts=contacts,
        duration_ms=d_ms,
        ring_ms=r_ms,
        duration_s=d_ms // 1000,
        ring_s=r_ms // 1000,
        lookups=lookups or {},
    )


def record_from_payload(payload: dict[str, Any]) -> CallRecord:
    """The CallRecord of a delivery; one enqueued before keys carried the start keeps its key.

    Such a payload has no ``key_format``: its first attempts may have written the activity
    under the older key, so the retry must look for that one (raises ValidationError).
    """
    data = dict(payload)
    data.setdefault("key_format", 1)
    return CallRecord.model_validate(data)


def settle_lookup(
    record: CallRecord,
    plugin: str,
    lookup_contact: LookupContact,
    cache: LookupCache,
    ttl: Callable[[str, Contact | None], float],
) -> CallRecord:
    """``record`` with ``plugin``'s lookup answered, searching now when it is unsettled.

    Runs before ``log_call``. A failing search raises (``RetryLater`` / ``PermanentError``
    with the lookup named in the message), so the delivery attempt fails and is retried by
    the delivery's own policy: the activity is never written on no record just because the
    search had failed. A cached answer (a late lookup came back meanwhile) is used as is.
    """
    key = base_name(plugin)  # the record's name for it; ``plugin`` is the instance
    if record.lookup_for(key) in SETTLED_LOOKUPS or key not in record.lookups:
        return record
    number = lookup_number(record.call)
    contact: Contact | None
    cached = cache.get((plugin, number)) if number else None
    if not number:
        return _with(record, key, None, LookupStatus.NO_NUMBER)
    if cached is not MISSING:
        contact = cached if isinstance(cached, Contact) else None
    else:
        try:
            result = lookup_contact(plugin, number, record.call)
        except RetryLater as exc:
            metrics.LOOKUPS.labels(plugin, "error").inc()
            raise RetryLater(
                f"contact lookup before logging failed: {exc}", retry_after=exc.retry_after
            ) from exc
        except PermanentError as exc:
            metrics.LOOKUPS.labels(plugin, "error").inc()
            raise PermanentError(f"contact lookup before logging failed: {exc}") from exc
        if result is not None and not isinstance(result, Contact):
            raise PermanentError(
                f"lookup_contact of {plugin} returned {type(result).__name__}, not a Contact"
            )
        contact = result
        if contact is not None and not contact.connector:
            contact = contact.model_copy(update={"connector": plugin})
        metrics.LOOKUPS.labels(plugin, "found" if contact is not None else "not_found").inc()
        cache.set((plugin, number), contact, ttl(plugin, contact))
    status = LookupStatus.FOUND if contact is not None else LookupStatus.NOT_FOUND
    log.info("lookup by %s settled at log time for call %s: %s", plugin, record.call.key, status)
    return _with(record, key, contact, status)


def _with(
    record: CallRecord, plugin: str, contact: Contact | None, status: LookupStatus
) -> CallRecord:
    contacts = dict(record.contacts)
    if contact is not None:
        contacts[plugin] = contact
    return record.model_copy(
        update={"contacts": contacts, "lookups": {**record.lookups, plugin: status}}
    )
