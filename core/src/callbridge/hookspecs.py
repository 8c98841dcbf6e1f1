"""The hooks a callbridge plugin can implement: one line each here, the rules in docs/plugins.md.

Plain synchronous functions, called in worker threads. ``lookup_contact`` and ``log_call``
are called per plugin (``Plugins.lookup_contact`` / ``Plugins.log_call``), the others fan out.
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
    """The CRM record for ``number`` while ``call`` rings, or None (time-boxed, cached)."""


@hookspec
def screen_pop(pop: ScreenPop) -> None:
    """Show ``pop`` (a call rang, was answered or ended) to the agent."""


@hookspec
def log_call(record: CallRecord) -> ActivityRef | None:
    """Write one activity per finished call, exactly once under retries; return its ref."""


@hookspec
def pbx_event(event: AnyEvent) -> None:
    """Observe every accepted PBX event, after it is journaled."""


@hookspec
def register_routes(router: APIRouter) -> None:
    """Add HTTP endpoints (a softphone page, a CRM callback) under ``/plugins/<name>/``."""


@hookspec
def startup(context: Context) -> None:
    """The service is starting: open clients."""


@hookspec
def shutdown(context: Context) -> None:
    """The service is stopping: close clients."""
