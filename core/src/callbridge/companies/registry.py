"""The companies callbridge serves, and how a request or an event finds its company.

Without ``CALLBRIDGE_COMPANIES_FILE`` there is one company, ``default``, made of today's
variables (``CALLBRIDGE_INGRESS_TOKEN``, ``CALLBRIDGE_SERVER__API_TOKENS``,
``CALLBRIDGE_PBX__*``, every configured plugin), so a single-company deployment changes
nothing. With the file, each company has its own tokens, PBX credentials, agents and plugin
instances, and everything that crosses the service (an event, an API request, a plugin
call) is tied to exactly one company.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import SecretStr

from ..errors import ConfigurationError
from ..settings import PbxSettings, Settings
from .model import company_pbx_settings, read_companies_file

#: The company of a single-company deployment (no companies file).
DEFAULT = "default"


def company_of_plugin(name: str) -> str:
    """The company of plugin instance ``name``: ``acme`` for ``hubspot@acme``, else ``default``.

    Deliveries and metrics name the instance; its company is part of the name.
    """
    return name.partition("@")[2] or DEFAULT


def agent_key(company: str, extension: str) -> str:
    """The agent stream of ``extension`` in ``company``: ``201``, or ``201@acme``.

    Two companies both have an extension 201; their pops must never share a stream. Without
    a companies file the key is the extension, as it always was.
    """
    return extension if company == DEFAULT else f"{extension}@{company}"


@dataclass(frozen=True, eq=False)
class Company:
    """One tenant: who it is on the PBX, its tokens, its PBX client settings, its plugins."""

    name: str
    #: The PBX's company id; None for ``default`` without a file (any id is ours).
    company_id: str | None
    pbx: str
    ingress_token: SecretStr | None = field(repr=False)
    api_tokens: tuple[SecretStr, ...] = field(repr=False)
    pbx_settings: PbxSettings = field(repr=False)
    #: Plugin name -> its settings table; None: every configured plugin (no file).
    plugins: dict[str, dict[str, Any]] | None = field(repr=False)
    #: Where this company's plugins keep their files (a directory database...).
    data_dir: Path = field(repr=False)


def _digest(token: bytes) -> bytes:
    return hashlib.sha256(token).digest()


class Companies:
    """Every company, by name, by ingress token and by (PBX, company id)."""

    def __init__(self, companies: list[Company], *, single: bool) -> None:
        self.single = single
        self._by_name = {company.name: company for company in companies}
        self._by_id = {(c.pbx, c.company_id): c for c in companies if c.company_id is not None}
        #: By the SHA-256 of the token: one hash and one lookup per request, whatever the
        #: number of companies, and a lookup that reveals nothing about the tokens' text.
        self._tokens = {
            _digest(c.ingress_token.get_secret_value().encode()): c
            for c in companies
            if c.ingress_token is not None
        }

    # -- what there is ------------------------------------------------------------------------
    @property
    def names(self) -> list[str]:
        """Company names, in the file's order."""
        return list(self._by_name)

    def get(self, name: str) -> Company:
        """The company called ``name`` (KeyError when there is none)."""
        return self._by_name[name]

    def __contains__(self, name: object) -> bool:
        return name in self._by_name

    def __iter__(self) -> Iterator[Company]:
        return iter(self._by_name.values())

    def __len__(self) -> int:
        return len(self._by_name)

    # -- finding the company ------------------------------------------------------------------
    def by_ingress_token(self, given: bytes) -> Company | None:
        """The company whose ingress token ``given`` is (None: no company's)."""
        return self._tokens.get(_digest(given))

    @property
    def has_ingress_tokens(self) -> bool:
        """Whether any company has an ingress token (else only ``insecure`` may serve)."""
        return bool(self._tokens)

    def name_for(self, company_id: str | None, pbx: str | None = None) -> str | None:
        """The name of the company with this PBX company id; None when none is configured.

        Events that carry no company name (the MySQL source reads the monitor tables, which
        carry the id) find their company here. Without ``pbx``: the one company with this
        id on any PBX, else the one on the PBX ``default`` (an id two PBXes share is theirs
        to tell apart, by their tokens).
        """
        if self.single:
            return DEFAULT
        if company_id is None:
            return None
        if pbx is not None:
            found = self._by_id.get((pbx, company_id))
            return found.name if found is not None else None
        matches = [c for (_pbx, cid), c in self._by_id.items() if cid == company_id]
        if len(matches) == 1:
            return matches[0].name
        found = self._by_id.get((DEFAULT, company_id))
        return found.name if found is not None else None

    def __repr__(self) -> str:
        return f"Companies({', '.join(self._by_name)})"


def _default_company(settings: Settings) -> Company:
    return Company(
        name=DEFAULT,
        company_id=None,
        pbx=DEFAULT,
        ingress_token=settings.ingress_token,
        api_tokens=tuple(settings.server.api_tokens),
        pbx_settings=settings.pbx,
        plugins=None,
        data_dir=settings.data_dir,
    )


def _unique(companies: list[Company]) -> None:
    """Two companies may not share an id on one PBX, an ingress token or an API token."""
    problems: list[str] = []
    seen_ids: dict[tuple[str, str | None], str] = {}
    seen_tokens: dict[str, str] = {}
    for company in companies:
        key = (company.pbx, company.company_id)
        if key in seen_ids:
            problems.append(
                f"companies.{company.name}.company_id: {company.company_id} on PBX "
                f"{company.pbx!r} is already companies.{seen_ids[key]}'s"
            )
        seen_ids.setdefault(key, company.name)
        secrets = [("ingress_token", company.ingress_token)] if company.ingress_token else []
        secrets += [("api_tokens", t) for t in company.api_tokens]
        for what, secret in secrets:
            text = secret.get_secret_value().partition(":")[0] if what == "api_tokens" else None
            token = text if text is not None else secret.get_secret_value()
            other = seen_tokens.get(token)
            if other is not None and other != company.name:
                problems.append(f"companies.{company.name}.{what}: a token of companies.{other}")
            seen_tokens.setdefault(token, company.name)
    if problems:
        raise ConfigurationError("invalid companies file:\n" + "\n".join(problems))


def install(companies: Companies) -> Companies:
    """Make ``companies`` the journal's resolver of PBX company ids (``journal.tenancy``):
    what it stores without a company name (the MySQL source's events) is filed under the
    company with that id. One company: everything is ``default``'s."""
    from ..journal.tenancy import set_company_resolver

    set_company_resolver(None if companies.single else companies.name_for)
    return companies


def load_companies(settings: Settings) -> Companies:
    """The companies of ``settings``: the file's, or ``default`` from today's variables."""
    if settings.companies_file is None:
        return Companies([_default_company(settings)], single=True)
    path = settings.companies_file.expanduser()
    companies = []
    for name, config in read_companies_file(path).items():
        companies.append(
            Company(
                name=name,
                company_id=config.company_id,
                pbx=config.pbx,
                ingress_token=config.ingress_token,
                api_tokens=tuple(config.api_tokens),
                pbx_settings=company_pbx_settings(name, settings.pbx, config.pbx_client),
                plugins=config.plugins,
                data_dir=settings.data_dir / "companies" / name,
            )
        )
    _unique(companies)
    return Companies(companies, single=False)
