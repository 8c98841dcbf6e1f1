"""The directory's record page: one contact as plain, accessible HTML.

The directory stands in for a CRM, so a pop needs somewhere to link to ("Open in directory"):
this renders that page. It is deliberately static HTML (no script, no external resource) so it
works behind any host and proxy, reads well in a screen reader (a heading, a definition list,
a table with a caption and header cells) and can carry a strict Content-Security-Policy. Every
value comes from a contacts file or a caller, so every value is HTML-escaped.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from html import escape
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .directory_data import DirectoryActivity, DirectoryContact

#: No script, no frame, no outside resource: the page needs only its own inline style.
SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'none'; style-src 'unsafe-inline'; base-uri 'none'; form-action 'none';"
        " frame-ancestors 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
}

_STYLE = (
    "body{font-family:system-ui,sans-serif;margin:2rem;max-width:60rem;line-height:1.5}"
    "dt{font-weight:600}dd{margin:0 0 .5rem 0}"
    "table{border-collapse:collapse}th,td{border:1px solid #999;padding:.25rem .5rem;"
    "text-align:left}caption{text-align:left;font-weight:600;padding:.5rem 0}"
)


def _text(value: object | None, empty: str = "—") -> str:
    """``value`` escaped, or a visible dash for a missing value (a blank cell reads as nothing)."""
    if value is None or value == "":
        return empty
    return escape(str(value), quote=True)


def _when(value: datetime | None) -> str:
    if value is None:
        return "—"
    iso = escape(value.isoformat(), quote=True)
    shown = escape(value.strftime("%Y-%m-%d %H:%M:%S %Z").strip(), quote=True)
    return f'<time datetime="{iso}">{shown}</time>'


def _numbers(numbers: Sequence[str]) -> str:
    if not numbers:
        return "<dd>—</dd>"
    items = "".join(
        f'<li><a href="tel:{escape(number, quote=True)}">{escape(number)}</a></li>'
        for number in numbers
    )
    return f"<dd><ul>{items}</ul></dd>"


def _recording(url: str | None) -> str:
    """A link to the call's recording; only an http(s) one is a link (never ``javascript:``)."""
    if not url:
        return "—"
    if not url.startswith(("https://", "http://")):
        return _text(url)
    return f'<a href="{escape(url, quote=True)}" rel="noopener noreferrer">listen</a>'


def _activities(activities: Sequence[DirectoryActivity]) -> str:
    if not activities:
        return (
            '<section aria-labelledby="activities"><h2 id="activities">Last activities</h2>'
            "<p>No call logged yet.</p></section>"
        )
    rows = "".join(
        "<tr>"
        f"<td>{_when(a.ring_at or a.created_at)}</td>"
        f"<td>{_text(a.direction)}</td>"
        f"<td>{_text(a.remote_number)}</td>"
        f"<td>{_text(a.local_extension)}</td>"
        f"<td>{_text(a.outcome)}</td>"
        f"<td>{_text(a.duration_s)}</td>"
        f"<td>{_recording(a.recording_url)}</td>"
        "</tr>"
        for a in activities
    )
    return (
        '<section aria-labelledby="activities"><h2 id="activities">Last activities</h2>'
        f"<table><caption>The {len(activities)} most recent calls, newest first</caption>"
        '<thead><tr><th scope="col">When</th><th scope="col">Direction</th>'
        '<th scope="col">Number</th><th scope="col">Extension</th>'
        '<th scope="col">Outcome</th><th scope="col">Duration (s)</th>'
        '<th scope="col">Recording</th></tr></thead>'
        f"<tbody>{rows}</tbody></table></section>"
    )


def render_contact(contact: DirectoryContact, activities: Sequence[DirectoryActivity]) -> str:
    """The whole page for ``contact`` and its ``activities`` (newest first)."""
    name = _text(contact.name)
    email = (
        f'<a href="mailto:{escape(contact.email, quote=True)}">{escape(contact.email)}</a>'
        if contact.email
        else "—"
    )
    return (
        "<!DOCTYPE html>"
        '<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{name} · directory</title><style>{_STYLE}</style></head>"
        f'<body><main><h1 id="contact-name">{name}</h1>'
        '<section aria-labelledby="details"><h2 id="details">Details</h2><dl>'
        f'<dt>Company</dt><dd id="contact-company">{_text(contact.company)}</dd>'
        f"<dt>Numbers</dt>{_numbers(contact.numbers)}"
        f'<dt>Owner extension</dt><dd id="contact-owner">{_text(contact.owner_extension)}</dd>'
        f"<dt>Email</dt><dd>{email}</dd>"
        f"<dt>Directory id</dt><dd>{_text(contact.id)}</dd>"
        "</dl></section>"
        f"{_activities(activities)}"
        "</main></body></html>"
    )


def render_not_found(contact_id: str) -> str:
    """The 404 page: says which id was asked for (escaped), so a stale link is recognisable."""
    return (
        "<!DOCTYPE html>"
        '<html lang="en"><head><meta charset="utf-8"><title>Contact not found · directory'
        f"</title><style>{_STYLE}</style></head><body><main><h1>Contact not found</h1>"
        f"<p>The directory has no contact with id {_text(contact_id)}.</p></main></body></html>"
    )
