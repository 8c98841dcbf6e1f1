"""``callbridge calls``: the most recent calls, how they ended, and where they were logged.

Reads the journal only (safe while the service runs). Each call shows its time, direction,
extension, remote number, the contact found, outcome, duration, and the state of each
plugin's delivery, so "why is this call not in the CRM?" has an answer at a glance.

``--requests`` lists the click-to-call requests of the last ``--hours`` instead: their state
(``unmatched``: no call of the agent to that number followed; ``unconfirmed``: the PBX's
answer could not be read, the phone may have rung), the call they became, and the error.
"""

from __future__ import annotations

import json
from collections import Counter
from datetime import UTC, datetime, timedelta
from typing import Any

import click
from rich.console import Console
from rich.table import Table
from rich.text import Text

from ..journal.base import Delivery, DeliveryState, Journal
from ..journal.factory import open_journal
from ..models import Call, Contact, Originate
from ..settings import load_settings

_DELIVERY_STYLE = {
    DeliveryState.DONE: "green",
    DeliveryState.PENDING: "yellow",
    DeliveryState.DEAD: "bold red",
}


def _duration(call: Call) -> int | None:
    if call.answer_at is None or call.end_at is None:
        return None
    return max(0, int((call.end_at - call.answer_at).total_seconds()))


def _contact(call: Call, deliveries: list[Delivery]) -> Contact | None:
    """The contact as recorded in the call's delivery payload (what the CRMs were given)."""
    for delivery in deliveries:
        contacts = delivery.payload.get("contacts") or {}
        for value in contacts.values():
            try:
                return Contact.model_validate(value)
            except ValueError:
                continue
    return None


def _as_dict(call: Call, deliveries: list[Delivery]) -> dict[str, Any]:
    contact = _contact(call, deliveries)
    started = call.ring_at or call.answer_at or call.end_at
    return {
        "key": call.key,
        "company": call.company,
        "time": None if started is None else started.isoformat(),
        "direction": call.direction.value,
        "extension": call.extension,
        "remote_number": call.remote_e164 or call.remote_number,
        "contact": None
        if contact is None
        else {"name": contact.name, "connector": contact.connector},
        "state": call.state.value,
        "outcome": None if call.outcome is None else call.outcome.value,
        "hung_up_by": None if call.hung_up_by is None else call.hung_up_by.value,
        "duration_s": _duration(call),
        "deliveries": [
            {
                "id": d.id,
                "plugin": d.plugin,
                "state": d.state.value,
                "attempts": d.attempts,
                "last_error": d.last_error,
            }
            for d in deliveries
        ],
    }


def _load(journal: Journal, last: int, company: str | None) -> list[tuple[Call, list[Delivery]]]:
    if company is None:
        calls = journal.list_calls(limit=last)
    else:  # the journal lists recent calls; one company's are among the last few thousand
        found = journal.list_calls(limit=min(last * 50, 50_000))
        calls = [c for c in found if c.company == company][:last]
    by_call: dict[str, list[Delivery]] = {}
    if calls:
        for delivery in journal.list_deliveries(
            call_keys=[c.key for c in calls], limit=len(calls) * 20
        ):
            by_call.setdefault(delivery.call_key, []).append(delivery)
    return [(call, sorted(by_call.get(call.key, []), key=lambda d: d.plugin)) for call in calls]


def _table(rows: list[tuple[Call, list[Delivery]]], companies: bool) -> Table:
    """The table; a company column only with a companies file (``default`` says nothing)."""
    table = Table(title="recent calls", title_justify="left")
    columns = ("time", "company", "dir", "ext", "remote", "contact", "outcome", "duration")
    for name in (*columns, "deliveries"):
        if companies or name != "company":
            table.add_column(name)
    for call, deliveries in rows:
        started = call.ring_at or call.answer_at or call.end_at
        contact = _contact(call, deliveries)
        duration = _duration(call)
        states = Text()
        for i, d in enumerate(deliveries):
            if i:
                states.append(", ")
            states.append(f"{d.plugin}:{d.state.value}", style=_DELIVERY_STYLE[d.state])
        table.add_row(
            started.astimezone().strftime("%Y-%m-%d %H:%M:%S") if started else "-",
            *([call.company] if companies else []),
            call.direction.value,
            call.extension or "-",
            call.remote_e164 or call.remote_number or "-",
            contact.name if contact else "-",
            call.outcome.value if call.outcome else call.state.value,
            "-" if duration is None else f"{duration}s",
            states if deliveries else Text("-"),
        )
    return table


_REQUEST_STYLE = {
    "unmatched": "bold red",
    "failed": "bold red",
    "unconfirmed": "yellow",
    "ended": "green",
}


#: Request states worth a line under the calls table: no call (yet) to show for them.
_TROUBLED = frozenset({"unmatched", "unconfirmed", "failed"})


def _request_dict(originate: Originate) -> dict[str, Any]:
    return {
        "external_id": originate.external_id,
        "company": originate.company,
        "time": originate.created_at.isoformat(),
        "agent": originate.user,
        "extension": originate.extension,
        "number": originate.number,
        "state": originate.state,
        "user_call_id": originate.user_call_id,
        "error": originate.error,
    }


def _requests_table(originates: list[Originate]) -> Table:
    table = Table(title="click-to-call requests", title_justify="left")
    for name in ("time", "ext", "number", "state", "user call", "external id", "error"):
        table.add_column(name)
    for o in originates:
        table.add_row(
            o.created_at.astimezone().strftime("%Y-%m-%d %H:%M:%S"),
            o.extension or o.user,
            o.number,
            Text(o.state, style=_REQUEST_STYLE.get(o.state, "")),
            o.user_call_id or "-",
            o.external_id,
            o.error or "",
        )
    return table


def _show_requests(hours: float, last: int, as_json: bool, company: str | None) -> None:
    journal = open_journal(load_settings())
    try:
        since = datetime.now(UTC) - timedelta(hours=hours)
        recent = reversed(journal.recent_originates(since))
        originates = [o for o in recent if company in (None, o.company)][:last]
    finally:
        journal.close()
    if as_json:
        click.echo(json.dumps([_request_dict(o) for o in originates], indent=2))
        return
    console = Console(soft_wrap=False)
    if not originates:
        console.print(f"no click-to-call requests in the last {hours:g} h")
        return
    console.print(_requests_table(originates))


@click.command()
@click.option(
    "--last",
    "last",
    default=20,
    show_default=True,
    type=click.IntRange(1, 10_000),
    help="How many calls to show.",
)
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
@click.option(
    "--requests",
    is_flag=True,
    help="List click-to-call requests (sent, unconfirmed, unmatched, ...) instead of calls.",
)
@click.option(
    "--hours",
    default=24.0,
    show_default=True,
    type=click.FloatRange(min=0, min_open=True),
    help="How far back click-to-call requests are looked for.",
)
@click.option("--company", default=None, help="Only this company's calls (or requests).")
def calls(last: int, as_json: bool, requests: bool, hours: float, company: str | None) -> None:
    """Recent calls: time, company, direction, extension, number, contact, outcome, deliveries."""
    if requests:
        _show_requests(hours, last, as_json, company)
        return
    settings = load_settings()
    journal = open_journal(settings)
    try:
        rows = _load(journal, last, company)
        since = datetime.now(UTC) - timedelta(hours=hours)
        troubled = [
            o
            for o in journal.recent_originates(since)
            if o.state in _TROUBLED and company in (None, o.company)
        ]
    finally:
        journal.close()
    if as_json:
        click.echo(json.dumps([_as_dict(c, d) for c, d in rows], indent=2))
        return
    console = Console(soft_wrap=False)
    if not rows:
        console.print("no calls yet")
    else:
        console.print(_table(rows, companies=settings.companies_file is not None))
    if troubled:
        # A click-to-call that became no call is not in the table above: say so.
        states = ", ".join(
            f"{n} {s}" for s, n in sorted(Counter(o.state for o in troubled).items())
        )
        console.print(
            f"click-to-call requests without a call in the last {hours:g} h: {states} "
            "(callbridge calls --requests)"
        )
