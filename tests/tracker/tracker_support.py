"""Builders shared by the tracker tests: real events through the real parser."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from callbridge.engine.tracker import Change, Tracker
from callbridge.models import CrmContext, Originate
from callbridge.settings import TrackerSettings
from callbridge.voispeed.events import CallEvent, parse_event

T0 = datetime(2024, 5, 6, 9, 0, tzinfo=UTC)
CALLER = "0612345678"
CALLER_E164 = "+390612345678"
OTHER = "3331234567"
ORIGINATE = Originate(
    external_id="cb-abc",
    user="auth-mario@acme",
    extension="201",
    number="0298765432",
    crm=CrmContext(connector="directory", record_type="Contact", record_id="C42"),
    created_at=T0,
)


def at(seconds: float) -> datetime:
    """T0 plus some seconds."""
    return T0 + timedelta(seconds=seconds)


def ev(
    code: int,
    call_id: str,
    number: str = "",
    ext: str = "",
    *,
    company: str | None = None,
    group: str | None = None,
    ext_id: str | None = None,
    identity: str | None = None,
    sender: str = "1",
) -> CallEvent:
    """One call event as the PBX would send it, parsed by the real parser."""
    params = {"ssn_event": str(code), "call_id": call_id, "number": number, "ext": ext}
    params["sender_id"] = sender
    params["sender_type"] = "0"
    for name, value in (
        ("company_id", company),
        ("group", group),
        ("ext_id", ext_id),
        ("identity", identity),
    ):
        if value is not None:
            params[name] = value
    event = parse_event(params)
    assert isinstance(event, CallEvent)
    return event


def inbound(call_id: str, caller: str, ext: str, **kw: Any) -> dict[int, CallEvent]:
    """The events of an incoming user call, by code, with the document's number/ext meanings."""
    return {
        16: ev(16, call_id, caller, ext, **kw),
        18: ev(18, call_id, ext, caller, **kw),
        19: ev(19, call_id, ext, caller, **kw),
        20: ev(20, call_id, caller, ext, **kw),
        21: ev(21, call_id, caller, ext, **kw),
    }


def outbound(call_id: str, callee: str, ext: str, **kw: Any) -> dict[int, CallEvent]:
    """The events of an outgoing user call, by code."""
    return {
        17: ev(17, call_id, callee, ext, **kw),
        18: ev(18, call_id, callee, ext, **kw),
        19: ev(19, call_id, callee, ext, **kw),
        20: ev(20, call_id, callee, ext, **kw),
        21: ev(21, call_id, callee, ext, **kw),
    }


def make_tracker(
    originates: Callable[[str], Originate | None] | None = None, **settings: Any
) -> Tracker:
    """A tracker with test settings and a click-to-call table holding ORIGINATE."""
    table = {ORIGINATE.external_id: ORIGINATE}
    return Tracker(
        TrackerSettings(**settings),
        region="IT",
        originates=originates or table.get,
    )


Step = tuple[float, CallEvent | None]
"""(seconds after T0, event); event None means ``tick`` at that time."""


def run(tracker: Tracker, steps: Iterable[Step]) -> list[Change]:
    """Feed the steps in order; collect every change."""
    changes: list[Change] = []
    for seconds, event in steps:
        if event is None:
            changes += tracker.tick(at(seconds))
        else:
            changes += tracker.apply(event, at(seconds))
    return changes


def kinds(changes: Sequence[Change]) -> list[tuple[str, str]]:
    """(kind, user call id without leading zeros) of each change, for compact assertions."""
    return [(c.kind, short(c.call.user_call_id)) for c in changes]


def short(user_call_id: str) -> str:
    """``000000A1`` -> ``A1``: test ids as written in the tests."""
    return user_call_id.lstrip("0") or "0"


def finished(changes: Sequence[Change]) -> dict[str, Change]:
    """user call id -> its finished change (asserting there is at most one each)."""
    result: dict[str, Change] = {}
    for change in changes:
        if change.kind == "finished":
            key = short(change.call.user_call_id)
            assert key not in result, "finished twice"
            result[key] = change
    return result
