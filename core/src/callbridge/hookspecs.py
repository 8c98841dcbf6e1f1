"""The hooks a callbridge plugin can implement.

Hooks are plain synchronous functions (both CRM client libraries are synchronous). The core
calls them in worker threads, never on the event loop that answers the PBX, so a slow CRM
delays only its own work.

``lookup_contact`` and ``log_call`` are called *per plugin*, not as one pluggy fan-out: each
connector's answer is kept separately (a pop shows one record per CRM), each is time-boxed on
its own, and each ``log_call`` delivery is retried and recorded on its own.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import pluggy

if TYPE_CHECKING:
    from fastapi import APIRouter

    from .context import Context
    from .models import ActivityRef, Call, CallRecord, Contact, ScreenPop
    from .voispeed.events import AnyEvent

hookspec = pluggy.HookspecMarker("callbridge")
hookimpl = pluggy.HookimplMarker("callbridge")


@hookspec
def lookup_contact(number: str, call: Call) -> Contact | None:
    """Find the CRM record for ``number`` (E.164 when parseable) while ``call`` rings.

    Return None when nothing matches. Time-boxed (``CALLBRIDGE_DISPATCH__LOOKUP_BUDGET``) and
    cached by the core, so implementations need no cache of their own.
    """


@hookspec
def screen_pop(pop: ScreenPop) -> None:
    """A call rang, was answered or ended: show ``pop`` to the agent (e.g. a CRM push)."""


@hookspec
def log_call(record: CallRecord) -> ActivityRef | None:
    """Write one activity for a finished call; return where it was written.

    Called once per plugin and retried until it succeeds: use
    ``record.idempotency_key(name)`` so that a retry never writes a second activity. Raise
    ``RetryLater`` for passing failures and ``PermanentError`` for data the CRM refuses.
    """


@hookspec
def pbx_event(event: AnyEvent) -> None:
    """Observe every accepted PBX event (presence, analytics), after it is journaled."""


@hookspec
def register_routes(router: APIRouter) -> None:
    """Add HTTP endpoints (a softphone page, a CRM callback) under ``/plugins/<name>/``."""


@hookspec
def startup(context: Context) -> None:
    """The service is starting: open clients, warm caches."""


@hookspec
def shutdown(context: Context) -> None:
    """The service is stopping: close clients."""
