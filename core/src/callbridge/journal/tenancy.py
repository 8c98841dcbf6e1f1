"""Which company a stored thing belongs to, and how one company's data is written out.

The journal records a company *name* (a slug such as ``acme``; ``default`` when callbridge
serves one company) on every event, call, delivery, originate, wrap-up and agent message,
so that ``callbridge companies export|purge NAME`` can select one company's data cheaply
(docs/operations.md). The name comes from whoever knows it: a caller that knows the company
(the ingress by the token, the API by the API token) passes ``company=``; otherwise the
journal asks ``company_of``, once, here, so that the companies model can change how names
are found without touching either backend.

``export_line`` is the one shape of an exported record for both backends: a JSON object
``{"record": KIND, "company": NAME, "data": {...}}``. Secrets never leave: parameters named
like a secret (an ingress token a PBX put in its URL, a password) are dropped from the raw
parameters of events and rejected requests before they are written out.
"""

from __future__ import annotations

import abc
import dataclasses
import json
import re
from collections.abc import Callable, Iterator, Mapping
from datetime import datetime
from typing import Any

from pydantic import BaseModel

#: The company of everything in a single-company deployment (no companies file).
DEFAULT_COMPANY = "default"

#: What a company name may be: the companies file's slug.
COMPANY_NAME_RE = re.compile(r"^[a-z0-9][a-z0-9-]{0,62}$")

#: The kinds of record a company's export holds, in the order they are written.
RECORD_KINDS = (
    "event",
    "rejected",
    "call",
    "originate",
    "wrapup",
    "recording",
    "delivery",
    "agent_event",
)

#: Finds a company's name from a PBX company id (and PBX name); None: not known.
Resolver = Callable[[str | None, str | None], str | None]

_resolver: Resolver | None = None

_SECRET_PARAM = re.compile(r"token|password|passwd|secret|api[_-]?key", re.IGNORECASE)


def set_company_resolver(resolver: Resolver | None) -> None:
    """Install how ``company_of`` maps a PBX company id to a name (None: everything is
    ``default``). The companies model calls this once its file is loaded."""
    global _resolver
    _resolver = resolver


def company_of(thing: object | None = None) -> str:
    """The company name of an event, a call, an originate or a wrap-up.

    A ``company`` attribute holding a name other than ``default`` wins; else the
    ``company_id`` (and ``pbx``) the PBX gave, through the installed resolver; else
    ``default``. Never raises: a stored thing always belongs to some company.
    """
    name = getattr(thing, "company", None)
    if isinstance(name, str) and name != DEFAULT_COMPANY and COMPANY_NAME_RE.match(name):
        return name
    if _resolver is not None:
        company_id = getattr(thing, "company_id", None)
        pbx = getattr(thing, "pbx", None)
        found = _resolver(
            company_id if isinstance(company_id, str) else None,
            pbx if isinstance(pbx, str) else None,
        )
        if found and COMPANY_NAME_RE.match(found):
            return found
    return DEFAULT_COMPANY


def agent_of(extension: str, company: str | None) -> tuple[str, str]:
    """(extension, company) of an agent stream. A caller that names the company passes it;
    one that does not may pass the agent's stream key, ``201@acme`` (the company after the
    ``@``); a plain extension without a company is the default company's."""
    if company:
        return extension, company
    bare, at, name = extension.rpartition("@")
    if at and bare and COMPANY_NAME_RE.match(name):
        return bare, name
    return extension, DEFAULT_COMPANY


def check_company_name(name: str) -> str:
    """``name`` when it is a valid company name; a ``ValueError`` that says why otherwise."""
    if not COMPANY_NAME_RE.match(name):
        raise ValueError(
            f"company name {name!r} must be 1-63 lower-case letters, digits or '-', "
            "starting with a letter or digit"
        )
    return name


def scrub(params: Mapping[str, Any]) -> dict[str, Any]:
    """Raw parameters without those named like a secret (see the module docstring)."""
    return {k: v for k, v in params.items() if not _SECRET_PARAM.search(str(k))}


def _plain(value: Any) -> Any:
    """A value as JSON can hold it: models and dataclasses as dicts, times as ISO text."""
    if isinstance(value, BaseModel):
        return value.model_dump(mode="json")
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: _plain(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if hasattr(value, "value") and isinstance(getattr(value, "value", None), str):
        return value.value  # an enum
    return value


def export_line(kind: str, company: str, data: Any) -> str:
    """One exported record as a line of JSON (no newline); see the module docstring."""
    body = _plain(data)
    if kind in ("event", "rejected") and isinstance(body, dict):
        raw = body.get("raw")
        if isinstance(raw, dict):
            body["raw"] = scrub(raw)
    return json.dumps({"record": kind, "company": company, "data": body}, sort_keys=True)


def stored_json(text: str) -> Any:
    """A stored JSON value as it is (a call, an originate, a wrap-up): an export writes out
    what the journal holds, and a row that no longer validates must not stop it."""
    try:
        return json.loads(text)
    except ValueError:
        return text


def empty_counts() -> dict[str, int]:
    """Counts of a purge (or of an export), one per kind of record, all zero."""
    return dict.fromkeys(RECORD_KINDS, 0)


class CompanyData(abc.ABC):
    """The part of the ``Journal`` that selects one company's data (each backend's
    ``companies.py``)."""

    @abc.abstractmethod
    def companies(self) -> list[str]:
        """The names of the companies the journal holds data of, sorted."""

    def holds_company(self, company: str) -> bool:
        """Whether the journal holds any record of ``company`` (backends answer cheaply)."""
        return company in self.companies()

    @abc.abstractmethod
    def export_company(self, company: str) -> Iterator[str]:
        """Every record of one company, as lines of JSON (``tenancy.export_line``).

        Kinds in the order of ``tenancy.RECORD_KINDS``; never a secret. Reads in pages, so a
        large company is written out without holding it in memory."""

    @abc.abstractmethod
    def purge_company(self, company: str, *, dry_run: bool = False) -> dict[str, int]:
        """Delete every record of one company; counts per kind (``tenancy.RECORD_KINDS``).

        Another company's data is untouched. In small steps, so acknowledgements slip
        between them. ``dry_run`` counts without deleting. The company should no longer be
        configured (its events would keep arriving)."""
