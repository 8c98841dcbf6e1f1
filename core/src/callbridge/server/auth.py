"""Bearer tokens for the API and the agent stream, each bound to the extensions it may act for.

Tokens come from ``CALLBRIDGE_SERVER__API_TOKENS`` as ``token:201|202`` entries (``*`` for
every extension). Browsers' EventSource cannot send headers, so the stream also accepts the
token as an ``access_token`` query parameter (documented; use TLS). Comparison is constant
time; tokens are never logged.

With a companies file each token is also bound to its company (``api_tokens`` of
``[companies.NAME]``): a grant never reaches another company's calls, wrap-ups, agents'
streams or connectors, whatever extensions it names.
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass
from typing import TYPE_CHECKING

from fastapi import HTTPException, Request

from ..errors import ConfigurationError

if TYPE_CHECKING:
    from ..companies import Companies


@dataclass(frozen=True)
class Grant:
    """What one token may do: act for these extensions (or all)."""

    digest: bytes
    extensions: frozenset[str]
    everything: bool
    #: The company the token belongs to (``default`` without a companies file).
    company: str = "default"

    def allows(self, extension: str) -> bool:
        """Whether the token may act for ``extension``."""
        return self.everything or extension in self.extensions

    def __repr__(self) -> str:
        scope = "*" if self.everything else ",".join(sorted(self.extensions))
        return f"Grant(company={self.company}, extensions={scope})"


def _digest(token: str) -> bytes:
    return hashlib.sha256(token.encode()).digest()


class TokenAuth:
    """Checks bearer tokens against the configured grants."""

    def __init__(self, entries: list[str], *, company: str = "default") -> None:
        self._grants: list[Grant] = []
        self.add(entries, company)

    @classmethod
    def of_companies(cls, companies: Companies) -> TokenAuth:
        """Every company's API tokens, each grant bound to its company."""
        auth = cls([])
        for company in companies:
            auth.add([t.get_secret_value() for t in company.api_tokens], company.name)
        return auth

    def reset(self, companies: Companies) -> None:
        """Every company's grants anew (a reload): removed companies' tokens stop at once."""
        self._grants = TokenAuth.of_companies(companies)._grants

    def add(self, entries: list[str], company: str) -> None:
        """Grants for ``token:ext1|ext2`` entries of ``company``."""
        where = (
            "CALLBRIDGE_SERVER__API_TOKENS"
            if company == "default"
            else f"companies.{company}.api_tokens"
        )
        for entry in entries:
            token, sep, scope = entry.partition(":")
            if not sep or len(token) < 16:
                raise ConfigurationError(
                    f"{where}: each entry must be 'token:ext1|ext2' "
                    "(or 'token:*') with a token of at least 16 characters"
                )
            exts = frozenset(e.strip() for e in scope.split("|") if e.strip())
            self._grants.append(Grant(_digest(token), exts - {"*"}, "*" in exts, company))

    @property
    def enabled(self) -> bool:
        """False when no token is configured (the API is then closed)."""
        return bool(self._grants)

    def grant_for(self, token: str) -> Grant | None:
        """The grant of ``token``, comparing digests in constant time."""
        digest = _digest(token)
        found = None
        for grant in self._grants:
            if hmac.compare_digest(grant.digest, digest):
                found = grant
        return found

    def require(self, request: Request, *, allow_query: bool = False) -> Grant:
        """The request's grant, or 401."""
        header = request.headers.get("authorization", "")
        token = header[7:].strip() if header.lower().startswith("bearer ") else ""
        if not token and allow_query:
            token = request.query_params.get("access_token", "")
        if not token:
            raise HTTPException(401, "bearer token required", {"WWW-Authenticate": "Bearer"})
        grant = self.grant_for(token)
        if grant is None:
            raise HTTPException(401, "invalid token", {"WWW-Authenticate": "Bearer"})
        return grant
