"""The agent's wrap-up on the delivery path: waiting for it, and amending activities with it.

A wrap-up (``models.WrapUp``: notes, outcome, chosen record, revision) is saved by the HTTP
API (``save``). From there:

- a ``log_call`` delivery not run yet picks the latest wrap-up up when it runs (``attach``),
  and its result records which revision it carried (``with_revision``);
- for each connector implementing ``update_call``, ``save`` enqueues one delivery per revision
  (action ``update_call:<n>``, unique per call x plugin x action, so each revision is
  delivered once whatever the retries), carrying the call's record with that wrap-up;
- an update runs only once the ``log_call`` it amends and the previous revision's update are
  done (``deferred`` moves it later meanwhile, counting no attempt), in revision order, and
  is skipped when the activity was written with that revision already (no second write);
- with ``CALLBRIDGE_WRAPUP__WAIT`` > 0 an agent's ``log_call`` waits that long after hang-up
  for a wrap-up (``deferred``); a wrap-up saved meanwhile pulls it forward (``save``).

Kept apart from the dispatcher, which calls in at three places: ``deferred`` when it
schedules, ``attach``/``update`` when it runs a delivery, ``with_revision`` when it records
the outcome.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta
from typing import Any, Protocol

from ..errors import PermanentError, RetryLater
from ..journal.base import Delivery, DeliveryState, Journal
from ..models import ActivityRef, CallRecord, WrapUp
from ..settings import Settings
from .recordings import RECORDING_KEY, is_recording_update, recording_action, with_recording

log = logging.getLogger(__name__)

LOG_ACTION = "log_call"
UPDATE_PREFIX = "update_call:"
#: Key of a delivery's result naming the wrap-up revision the activity holds after it.
REVISION_KEY = "wrapup_revision"
#: Seconds an update waits before it looks again at the delivery it waits behind.
_RECHECK = timedelta(seconds=1)


class UpdatingPlugins(Protocol):
    """What this module needs of ``plugins.manager.Plugins``."""

    def update_call(
        self, name: str, record: CallRecord, activity: ActivityRef, revision: int
    ) -> object: ...


def update_action(revision: int) -> str:
    """The delivery action of one revision's update."""
    return f"{UPDATE_PREFIX}{revision}"


def is_update(action: str) -> bool:
    """Whether ``action`` runs ``update_call`` (a wrap-up revision's, or a recording's)."""
    return revision_of(action) is not None or is_recording_update(action)


def revision_of(action: str) -> int | None:
    """The revision an ``update_call:<n>`` action amends (None for any other action)."""
    if not action.startswith(UPDATE_PREFIX):
        return None
    text = action[len(UPDATE_PREFIX) :]
    return int(text) if text.isdecimal() else None


def _of(journal: Journal, call_key: str, plugin: str) -> list[Delivery]:
    return [
        d for d in journal.list_deliveries(call_keys=[call_key], limit=1000) if d.plugin == plugin
    ]


def _find(deliveries: Sequence[Delivery], action: str) -> Delivery | None:
    return next((d for d in deliveries if d.action == action), None)


def held_revision(delivery: Delivery) -> int:
    """The wrap-up revision a done delivery left on the activity (0: none)."""
    value = (delivery.result or {}).get(REVISION_KEY, 0)
    return value if isinstance(value, int) else 0


def save(journal: Journal, wrapup: WrapUp, updaters: Sequence[str], now: datetime) -> WrapUp:
    """Journal ``wrapup``, enqueue its updates, pull a ``log_call`` waiting for it forward.

    ``updaters``: the plugins implementing ``update_call``. Raises ``WrapUpConflictError``
    (nothing enqueued) for a revision that is not the next one. A repeated save enqueues
    nothing new (deliveries are unique per action).
    """
    kept = journal.save_wrapup(wrapup)
    for delivery in journal.list_deliveries(call_keys=[kept.call_key], limit=1000):
        if delivery.action != LOG_ACTION:
            continue
        if delivery.state is DeliveryState.PENDING and (delivery.next_attempt_at or now) > now:
            journal.reschedule_delivery(delivery.id, now)
        if delivery.plugin not in updaters or delivery.state is DeliveryState.DEAD:
            continue
        # Not yet written: the log_call will carry this revision, and this update is
        # then skipped; enqueued all the same, since it may have read the wrap-up before.
        payload = {**delivery.payload, "wrapup": kept.model_dump(mode="json")}
        journal.enqueue_delivery(
            call_key=kept.call_key,
            plugin=delivery.plugin,
            action=update_action(kept.revision),
            payload=payload,
        )
    return kept


class WrapUps:
    """The dispatcher's side: waiting for wrap-ups and running the updates."""

    def __init__(
        self,
        journal: Journal,
        plugins: UpdatingPlugins,
        settings: Settings,
        clock: Callable[[], datetime],
    ) -> None:
        self.journal = journal
        self.plugins = plugins
        self.wait = timedelta(seconds=settings.wrapup.wait)
        self.recordings = settings.recordings
        self._clock = clock

    # -- scheduling ----------------------------------------------------------------------------
    def deferred(self, delivery: Delivery, now: datetime) -> bool:
        """Whether a due ``delivery`` must wait (and was moved later, attempts untouched)."""
        if delivery.action == LOG_ACTION:
            return self._waits_for_wrapup(delivery, now)
        revision = revision_of(delivery.action)
        if revision is None and not is_recording_update(delivery.action):
            return False
        deliveries = _of(self.journal, delivery.call_key, delivery.plugin)
        before = [_find(deliveries, LOG_ACTION)]
        if revision is not None and revision > 1:
            before.append(_find(deliveries, update_action(revision - 1)))
        pending = [d for d in before if d is not None and d.state is DeliveryState.PENDING]
        if not pending:
            return False
        after = max((d.next_attempt_at or now) for d in pending)
        self.journal.reschedule_delivery(delivery.id, max(now, after) + _RECHECK)
        return True

    def _waits_for_wrapup(self, delivery: Delivery, now: datetime) -> bool:
        """An agent's first ``log_call`` attempt within the wait, with no wrap-up yet."""
        if not self.wait or delivery.attempts or delivery.retried_at is not None:
            return False
        call = delivery.payload.get("call")
        if (
            not isinstance(call, dict)
            or not call.get("extension")
            or delivery.payload.get("wrapup")
        ):
            return False
        until = delivery.created_at + self.wait
        if until <= now or self.journal.get_wrapup(delivery.call_key) is not None:
            return False
        self.journal.reschedule_delivery(delivery.id, until)
        # A wrap-up saved between the look and the move pulled nothing forward: look again.
        if self.journal.get_wrapup(delivery.call_key) is not None:
            self.journal.reschedule_delivery(delivery.id, now)
            return False
        log.debug("call %s waits for its wrap-up until %s", delivery.call_key, until)
        return True

    # -- running -------------------------------------------------------------------------------
    def attach(self, record: CallRecord) -> CallRecord:
        """``record`` with the call's latest wrap-up and its recording (a ``log_call`` about
        to run, or a recording's update)."""
        record = self.with_recording(record)
        wrapup = self.journal.get_wrapup(record.call.key)
        if wrapup is None or (record.wrapup and record.wrapup.revision >= wrapup.revision):
            return record
        return record.model_copy(update={"wrapup": wrapup})

    def with_recording(self, record: CallRecord) -> CallRecord:
        """``record`` with the call's recording reference and link, when one is known."""
        reference = self.journal.get_recording(record.call.key)
        return with_recording(record, self.recordings, reference)

    def update(self, delivery: Delivery, record: CallRecord) -> tuple[CallRecord, object]:
        """Run one ``update_call``: a wrap-up revision's (the record carries it) or a
        recording's (the latest wrap-up); skipped when the activity holds it already.

        Returns the record the activity now reflects (``with_revision`` reads what it holds
        from it: the delivery's own record when skipped) and the outcome.
        """
        revision = revision_of(delivery.action)
        recording = is_recording_update(delivery.action)
        if not recording and (revision is None or record.wrapup is None):
            raise PermanentError(f"delivery {delivery.id} is no wrap-up update")
        deliveries = _of(self.journal, delivery.call_key, delivery.plugin)
        logged = _find(deliveries, LOG_ACTION)
        if logged is None or logged.state is DeliveryState.DEAD:
            raise PermanentError("the activity to amend was never written (log_call is dead)")
        if logged.state is DeliveryState.PENDING:
            raise RetryLater("the activity to amend is not written yet", retry_after=1.0)
        done = [d for d in deliveries if d.state is DeliveryState.DONE]
        if recording:
            sent = self.attach(record)
            skipped = _recording_skip(delivery.action, sent, done)
            if skipped:
                return record, {"skipped": skipped}
            revision = sent.wrapup.revision if sent.wrapup else 0
        else:
            held = max((held_revision(d) for d in done), default=0)
            if held >= (revision or 0):
                return record, {"skipped": f"the activity holds revision {held} already"}
            sent = self.with_recording(record)
        return sent, self._amend(delivery, sent, done, revision or 0)

    def _amend(
        self, delivery: Delivery, record: CallRecord, done: list[Delivery], revision: int
    ) -> object:
        """``update_call`` on the activity the newest written delivery left."""
        written = [d for d in done if _activity(d) is not None]
        newest = max(written, key=lambda d: (held_revision(d), d.id)) if written else None
        activity = _activity(newest) if newest else None
        if activity is None:
            raise PermanentError("log_call returned no ActivityRef: there is nothing to amend")
        result = self.plugins.update_call(delivery.plugin, record, activity, revision)
        if result is None:
            return activity
        if not isinstance(result, ActivityRef):
            raise PermanentError(
                f"update_call of {delivery.plugin} returned {type(result).__name__}, "
                "not an ActivityRef"
            )
        return result


def _activity(delivery: Delivery) -> ActivityRef | None:
    """The activity a done delivery left (its result), if it names one."""
    data = delivery.result or {}
    if not data.get("record_id"):
        return None
    ours = (REVISION_KEY, RECORDING_KEY)
    return ActivityRef.model_validate({k: v for k, v in data.items() if k not in ours})


def _recording_skip(action: str, record: CallRecord, done: Sequence[Delivery]) -> str | None:
    """Why a recording's update has nothing to do, if it has not: the call's reference
    changed since (that one's update brings it), or the activity holds it already."""
    if record.recording is None or recording_action(record.recording) != action:
        return "superseded by a newer recording reference"
    held = [
        (d.id, (d.result or {})[RECORDING_KEY]) for d in done if RECORDING_KEY in (d.result or {})
    ]
    if held and max(held)[1] == record.recording:
        return "the activity holds this recording already"
    return None


def with_revision(result: dict[str, Any] | None, record: CallRecord) -> dict[str, Any] | None:
    """A delivery's result with the wrap-up revision and recording the activity now holds."""
    extra: dict[str, Any] = {}
    if record.wrapup is not None:
        extra[REVISION_KEY] = record.wrapup.revision
    if record.recording is not None:
        extra[RECORDING_KEY] = record.recording
    return {**(result or {}), **extra} if extra else result
