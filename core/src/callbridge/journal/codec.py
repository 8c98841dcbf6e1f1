"""How both backends write values down and read them back: times, JSON and events.

One module, so that a stored event means the same thing in SQLite and in Redis: an event is
kept as its raw parameters (what the PBX sent), the name of its class and its parsed form,
and comes back typed through ``decode_event``, which never raises (see ``restore_event``).
Times are integers of microseconds since the epoch (UTC), which both backends sort and
compare without parsing.
"""

from __future__ import annotations

import json
import logging
import typing
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from pydantic import BaseModel, ValidationError

from ..voispeed.events import AnyEvent, EventParseError, UnknownEvent, parse_event

log = logging.getLogger(__name__)

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MICRO = timedelta(microseconds=1)

#: Event classes by name, to give ``events_after`` back the typed event it was given.
EVENT_CLASSES: dict[str, type[BaseModel]] = {
    cls.__name__: cls for cls in typing.get_args(AnyEvent) if isinstance(cls, type)
}


def to_us(when: datetime) -> int:
    """Microseconds since the epoch; naive datetimes are taken as UTC."""
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return (when - _EPOCH) // _MICRO


def from_us(value: str | int) -> datetime:
    """The datetime (UTC) of a stored time (``to_us``); Redis hands it back as a string."""
    return _EPOCH + timedelta(microseconds=int(value))


def opt_from_us(value: str | int | None) -> datetime | None:
    """``from_us`` for a time that may be absent (``None``, or ``""`` in a Redis hash)."""
    return None if value is None or value == "" else from_us(value)


def utc_now() -> datetime:
    """The current time, aware (UTC)."""
    return datetime.now(UTC)


def dumps(value: Any) -> str:
    """Compact JSON: stored values are read by machines, and every byte is written to disk."""
    return json.dumps(value, separators=(",", ":"))


@dataclass(frozen=True, slots=True)
class EncodedEvent:
    """An accepted event in the form both backends store (see the module docstring)."""

    received_at: int
    dedup_key: str
    raw: str
    kind: str
    parsed: str


def encode_event(
    event: AnyEvent, raw: Mapping[str, str], received_at: datetime | None
) -> EncodedEvent:
    """The stored form of an event; done in the caller's thread, not the writer's."""
    return EncodedEvent(
        received_at=to_us(received_at or utc_now()),
        dedup_key=event.dedup_key,
        raw=dumps(dict(raw)),
        kind=type(event).__name__,
        parsed=event.model_dump_json(),
    )


def decode_event(kind: str, parsed: str, raw: str) -> tuple[dict[str, str], AnyEvent]:
    """The raw parameters and the typed event of a stored event. Never raises."""
    params = stored_params(raw)
    return params, restore_event(kind, parsed, params)


def stored_params(raw: str) -> dict[str, str]:
    """An event's stored raw parameters; a stored form that is not a JSON object of strings
    (a damaged row) gives what can be read of it, never an error."""
    try:
        value = json.loads(raw)
    except (ValueError, TypeError):
        return {}
    if not isinstance(value, dict):
        return {}
    return {str(k): v if isinstance(v, str) else json.dumps(v) for k, v in value.items()}


def restore_event(kind: str, parsed: str, raw: Mapping[str, str]) -> AnyEvent:
    """The typed event from its stored form, for ``events_after``. Never raises.

    The stored parsed form comes first; when it no longer validates (a model changed, a row
    was damaged), the raw parameters are parsed again. When that fails too, the event comes
    back as an ``UnknownEvent`` (``ssn_event`` 0) carrying the raw parameters: the dispatcher
    reads events in order and retries a read that raises, so one event that cannot be rebuilt
    would otherwise stop every event after it, for good.
    """
    cls = EVENT_CLASSES.get(kind)
    if cls is not None:
        try:
            return cls.model_validate_json(parsed)  # type: ignore[return-value]
        except ValidationError:
            log.warning("stored event of kind %s no longer validates; re-parsing it", kind)
    try:
        return parse_event(raw)
    except EventParseError as exc:
        log.error(
            "stored event of kind %s cannot be rebuilt (%s); handed on as an unknown event",
            kind,
            exc,
        )
    return UnknownEvent(ssn_event=0, params=dict(raw))
