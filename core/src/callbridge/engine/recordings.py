"""Recordings: where the PBX recorded a call, as a reference and a link on its activity.

A call is known to be recorded from CallRecStart sent through the API, from the ``recording``
flags of the PBX's tables (``cb_recording`` on a MySQL source's events), or from an operator's
script naming the file (``PUT /v1/calls/{call}/recording``). Each of these calls ``mark``:

- the reference is journaled per call (``Journal.save_recording``), so a ``log_call`` not
  run yet picks it up when it runs (``WrapUps.attach`` calls ``with_recording``);
- for each connector implementing ``update_call`` whose ``log_call`` exists, one update is
  enqueued per reference (action ``update_call:recording:<digest>``, unique per call x
  plugin x action like every delivery): an activity written before the recording was known
  is amended once, and a repeated ``mark`` (a retried request) enqueues nothing new.

The link is made when the record is handed to a connector, from the settings of that moment
(``CALLBRIDGE_RECORDINGS__URL_TEMPLATE``), so the journal keeps the reference only.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Sequence
from datetime import UTC, datetime
from urllib.parse import quote

from ..journal.base import DeliveryState, Journal
from ..models import Call, CallRecord
from ..settings import RecordingSettings

log = logging.getLogger(__name__)

LOG_ACTION = "log_call"
RECORDING_PREFIX = "update_call:recording:"
#: Key of a delivery's result naming the recording reference the activity holds after it.
RECORDING_KEY = "recording"


def recording_action(reference: str) -> str:
    """The delivery action of the update bringing ``reference`` to an activity."""
    digest = hashlib.sha256(reference.encode()).hexdigest()[:16]
    return f"{RECORDING_PREFIX}{digest}"


def is_recording_update(action: str) -> bool:
    """Whether ``action`` is a recording's ``update_call``."""
    return action.startswith(RECORDING_PREFIX)


def _fields(call: Call) -> dict[str, str]:
    started = call.ring_at or call.answer_at or call.end_at
    return {
        "call_id": call.user_call_id,
        "company_id": call.company_id or "",
        "call_key": call.key,
        "extension": call.extension or "",
        "user_id": call.user_id or "",
        "date": started.astimezone(UTC).strftime("%Y-%m-%d") if started else "",
    }


def default_reference(settings: RecordingSettings, call: Call) -> str:
    """The reference of a recorded call when nothing names its file (the setting's template)."""
    return settings.reference.format(**_fields(call))


def recording_url(settings: RecordingSettings, call: Call, reference: str) -> str | None:
    """The link to a call's recording: the reference itself when it is an http(s) URL,
    else the template filled in (each field URL-quoted), else None (no link configured)."""
    if reference.startswith(("https://", "http://")):
        return reference
    if settings.url_template is None:
        return None
    values = {name: quote(value, safe="") for name, value in _fields(call).items()}
    # A reference may be a path (``2024/05/rec.wav``): its slashes stay.
    values["reference"] = quote(reference, safe="/")
    return settings.url_template.format(**values)


def with_recording(
    record: CallRecord, settings: RecordingSettings, reference: str | None
) -> CallRecord:
    """``record`` carrying ``reference`` and its link (unchanged when there is none)."""
    if reference is None or record.recording == reference:
        return record
    url = recording_url(settings, record.call, reference)
    return record.model_copy(update={"recording": reference, "recording_url": url})


def mark(journal: Journal, call_key: str, reference: str, updaters: Sequence[str]) -> bool:
    """Journal ``call_key``'s recording ``reference`` and enqueue the activities' amendments.

    Returns whether the reference is new for the call. The updates are enqueued even for a
    repeat (each is unique per action): a mark that failed half way is completed by its retry.
    """
    changed = journal.save_recording(call_key, reference, datetime.now(UTC))
    for delivery in journal.list_deliveries(call_keys=[call_key], limit=1000):
        if (
            delivery.action != LOG_ACTION
            or delivery.plugin not in updaters
            or delivery.state is DeliveryState.DEAD
        ):
            continue
        journal.enqueue_delivery(
            call_key=call_key,
            plugin=delivery.plugin,
            action=recording_action(reference),
            payload=delivery.payload,
        )
    if changed:
        log.info("call %s: recording %s", call_key, reference)
    return changed
