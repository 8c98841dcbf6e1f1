"""Tie click-to-call requests (Originates) to the PBX's calls, with or without ``ext_id``.

The document says the events of a call placed with CallReq carry its external id as
``ext_id``. A real PBX may not echo it (a firmware that leaves it out, a trigger on a table
that lacks it), and an internal call may echo it on the callee's leg too. The rules here:

- **Binding.** An originate belongs to one leg: the caller's. It binds to the first event
  that is the agent's outgoing start (17), or an end (20/21) whose local side is the agent's
  extension; an incoming leg (16, the callee of an internal click-to-call) never takes it.
  Once bound (``user_call_id`` set), only that user call's events move it. The rule lives
  beside the tracker, which is pure (``tracker_leg.originate_belongs`` for the dispatcher's
  moves, ``Leg.takes`` for the call the activity is written from).
- **No ext_id.** A 17 without ``ext_id`` is matched to the oldest pending originate (state
  ``requested``, ``sent`` or ``unconfirmed``, not yet bound) of the same agent (its
  extension) to the same number (``numbers.same_number``) created at most
  ``CALLBRIDGE_PBX__ORIGINATE_WINDOW`` seconds before the event. The match is written (the
  originate is bound) before the event goes on, under one lock, so two legs never take the
  same originate; handling the event again after a crash finds the originate already bound
  to this user call and matches it again.
- **Refusal after the fact.** The SERI dialect may accept a ``call_request`` and report
  later that it could not place it: a ``cmd_failed`` event naming our ``extid`` or the
  ``request_id`` it answered. ``refuse`` moves that request from pending to ``failed`` with
  the PBX's error, rather than leave it to expire as ``unmatched``.
- **Expiry.** A pending originate not bound within the window becomes ``unmatched``: it never
  stays ``sent``. A ``requested`` one (the HTTP process may still be sending it) is given the
  SOAP client's own time bound on top.

Everything reads and writes the journal, which both processes share; no state of its own but
the time of the last sweep.
"""

from __future__ import annotations

import threading
from datetime import datetime, timedelta
from typing import Final, TypeVar

from ..journal.base import Journal
from ..models import Originate
from ..numbers import same_number
from ..settings import Settings
from ..voispeed.events import AnyEvent, CallEvent
from ..voispeed.seri import command_failure

#: States of a request the PBX has not reported yet.
PENDING: Final = frozenset({"requested", "sent", "unconfirmed"})
#: A request sent, or possibly sent, that no event of the PBX ever matched.
UNMATCHED: Final = "unmatched"
#: The first sweep after a start looks this far back (the engine may have been down).
_FIRST_SWEEP = timedelta(days=2)
#: Later sweeps also look this much further back: a request written late, or stamped by a
#: clock behind the engine's, is still found.
_SWEEP_SLACK = timedelta(minutes=10)
#: Sweeps run at most this often (the dispatcher ticks every second).
_SWEEP_EVERY = timedelta(seconds=5)
#: A click made this long after the event (clocks of two processes) may still be its own.
_CLOCK_SKEW = timedelta(seconds=5)

_E = TypeVar("_E", bound=CallEvent)

_OUTGOING = 17


class OriginateMatcher:
    """Correlation and expiry of originates, for the dispatcher (thread-safe)."""

    def __init__(self, journal: Journal, settings: Settings) -> None:
        self.journal = journal
        self.window = timedelta(seconds=settings.pbx.originate_window)
        #: A ``requested`` originate may still be on its way for this long on top.
        self.sending = timedelta(seconds=settings.pbx.retry_max_seconds + settings.pbx.read_timeout)
        self.region = settings.default_region
        self.names = settings.pbx.seri
        self._lock = threading.Lock()
        self._swept_at: datetime | None = None

    # -- events without ext_id -------------------------------------------------------------
    def correlate(self, event: _E, at: datetime) -> _E:
        """The event, with ``ext_id`` filled in when it is a click-to-call's leg without one."""
        if event.ext_id or event.ssn_event != _OUTGOING:
            return event
        extension, number = event.local_number, event.remote_number
        if not extension or not number:
            return event
        with self._lock:
            found = self._match(event, at, extension, number)
        if found is None:
            return event
        return event.model_copy(update={"ext_id": found.external_id})

    def _match(
        self, event: CallEvent, at: datetime, extension: str, number: str
    ) -> Originate | None:
        company = event.company or "default"
        candidates = [
            o
            for o in self.journal.recent_originates(at - self.window)
            if o.company == company
            and o.extension == extension
            and o.created_at <= at + _CLOCK_SKEW
            and same_number(o.number, number, self.region)
        ]
        for originate in candidates:  # handled again after a crash: already ours
            if originate.user_call_id == event.call_id:
                return originate
        for originate in candidates:  # oldest first
            if originate.state not in PENDING or originate.user_call_id:
                continue
            bound = self.journal.update_originate(
                originate.external_id, only_if=PENDING, user_call_id=event.call_id
            )
            if bound is not None and bound.user_call_id == event.call_id:
                return bound
        return None

    # -- cmd_failed (SERI) ------------------------------------------------------------------
    def refuse(self, event: AnyEvent, at: datetime) -> Originate | None:
        """The click-to-call a SERI ``cmd_failed`` names, moved to ``failed``; else None.

        Found by ``extid`` (our external id), else by the ``request_id`` the PBX answered
        (looked for among the requests of the window before the event). Only a pending
        request moves: one the events already showed ringing stays as it is.
        """
        failure = command_failure(event.params, self.names)
        if failure is None:
            return None
        external_id = failure.external_id
        if external_id is None and failure.request_id is not None:
            since = at - self.window - self.sending - _SWEEP_SLACK
            external_id = next(
                (
                    o.external_id
                    for o in self.journal.recent_originates(since)
                    if o.request_id == failure.request_id
                    and o.company == (event.company or "default")
                ),
                None,
            )
        if external_id is None:
            return None
        current = self.journal.get_originate(external_id)
        if current is None or current.company != (event.company or "default"):
            return None  # another company's request: its events cannot fail it
        with self._lock:
            updated = self.journal.update_originate(
                external_id, only_if=PENDING, state="failed", error=failure.error
            )
        return updated if updated is not None and updated.state == "failed" else None

    # -- expiry --------------------------------------------------------------------------------
    def expire(self, now: datetime) -> list[Originate]:
        """Move pending originates older than the window to ``unmatched``; return them.

        The first sweep looks two days back (the engine may have been down); later ones, at
        most every 5 s, look back the window, the SOAP client's bound and 10 minutes.
        """
        if self._swept_at is not None and now - self._swept_at < _SWEEP_EVERY:
            return []
        due = now - self.window
        since = now - _FIRST_SWEEP if self._swept_at is None else due - self.sending - _SWEEP_SLACK
        self._swept_at = now
        expired = []
        for originate in self.journal.recent_originates(since):
            if originate.state not in PENDING or originate.user_call_id:
                continue
            limit = due - (self.sending if originate.state == "requested" else timedelta(0))
            if originate.created_at > limit:
                continue
            updated = self.journal.update_originate(
                originate.external_id,
                only_if=PENDING,
                state=UNMATCHED,
                error=(
                    f"no call of {originate.extension or originate.user} to {originate.number} "
                    f"within {self.window.total_seconds():g} s of the request"
                ),
            )
            if updated is not None and updated.state == UNMATCHED:
                expired.append(updated)
        return expired
