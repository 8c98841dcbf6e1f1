"""The hooks a callbridge plugin can implement: one line each here, the rules in docs/plugins.md.

Plain synchronous functions, called in worker threads. ``lookup_contact``, ``log_call`` and
``update_call`` are called per plugin (``Plugins.<hook>(name, ...)``), the others fan out.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import pluggy

if TYPE_CHECKING:
    from fastapi import APIRouter

    from .context import Context
    from .models import ActivityRef, Call, CallRecord, Contact, ContactDraft, ScreenPop
    from .voispeed.events import AnyEvent

hookspec = pluggy.HookspecMarker("callbridge")
hookimpl = pluggy.HookimplMarker("callbridge")


@hookspec
def lookup_contact(number: str, call: Call) -> Contact | None:
    """The CRM record for ``number`` while ``call`` rings, or None (time-boxed, cached)."""


@hookspec
def search_contacts(query: str) -> list[Contact]:  # type: ignore[empty-body]
    """Records matching what an agent types (name, company, number), best first, few."""


@hookspec
def create_contact(draft: ContactDraft) -> Contact:  # type: ignore[empty-body]
    """Create the contact (or lead) ``draft`` describes for an unknown number; return it."""


@hookspec
def screen_pop(pop: ScreenPop) -> None:
    """Show ``pop`` (a call rang, was answered or ended) to the agent."""


@hookspec
def log_call(record: CallRecord) -> ActivityRef | None:
    """Write one activity per finished call, exactly once under retries; return its ref."""


@hookspec
def update_call(record: CallRecord, activity: ActivityRef, revision: int) -> ActivityRef | None:
    """Amend ``activity`` (what ``log_call`` returned) with ``record.wrapup`` at ``revision``.

    Called once per wrap-up revision the activity does not hold yet, in revision order, with
    the delivery's retries; the chosen record (``record.wrapup.record``) may move the activity.
    """


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
