"""Which company an ingress request belongs to: its token says, its parameters must agree.

With a companies file each company's URL in the PBX carries that company's own token, so
the token is the company: nothing a request says about itself (its ``company_id``
parameter) can move it to another. A parameter that contradicts the token is refused 403
with the reason and kept among rejected requests, like any other refusal.
"""

from __future__ import annotations

import hmac

from .. import metrics
from ..companies.registry import Companies, Company


class Refusal(Exception):
    """A request the ingress refuses: the HTTP status, the reason told, the metric label."""

    def __init__(self, status: int, reason: str, label: str) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason
        self.label = label


def check_token(pairs: list[tuple[str, str]], token: bytes | None, module: bytes | None) -> None:
    """One company: our ``token``, once. A SERI event may also carry the module's own
    ``token`` (when the URL configured in the module holds ours): ours must be there, and any
    other ``token`` must be the module's (``module``, CALLBRIDGE_PBX__SERI_TOKEN)."""
    if token is None:
        return  # only possible with the explicit insecure flag (checked at start-up)
    given = {v.encode() for k, v in pairs if k == "token"}
    if not given:
        raise Refusal(401, "token missing", "token_missing")
    ours = [g for g in given if hmac.compare_digest(g, token)]
    others = given - set(ours)
    if not ours or any(module is None or not hmac.compare_digest(g, module) for g in others):
        raise Refusal(403, "token invalid", "token_invalid")


def _insecure_company(
    companies: Companies, pairs: list[tuple[str, str]], company_param: str
) -> Company:
    """Without any ingress token (only with CALLBRIDGE_SERVER__INSECURE): the id decides."""
    ids = {v for k, v in pairs if k == company_param}
    name = companies.name_for(next(iter(ids))) if len(ids) == 1 else None
    if name is None:
        raise Refusal(403, f"{company_param}: no configured company", "company")
    return companies.get(name)


def company_of(
    companies: Companies, pairs: list[tuple[str, str]], seri: bool, company_param: str
) -> Company:
    """The company whose ingress token the request carries (several companies).

    A SERI event may carry the module's own ``token`` beside ours: any other token must be
    that company's ``pbx_client.seri_token``. Tokens of two companies at once are refused.
    """
    given = {v.encode() for k, v in pairs if k == "token"}
    if not given and not companies.has_ingress_tokens:
        return _insecure_company(companies, pairs, company_param)
    if not given:
        raise Refusal(401, "token missing", "token_missing")
    found = {token: companies.by_ingress_token(token) for token in given}
    named = {c.name: c for c in found.values() if c is not None}
    if len(named) != 1:
        raise Refusal(403, "token invalid", "token_invalid")
    company = next(iter(named.values()))
    module = company.pbx_settings.seri_token if seri else None
    for token, owner in found.items():
        if owner is None and (
            module is None or not hmac.compare_digest(token, module.get_secret_value().encode())
        ):
            raise Refusal(403, "token invalid", "token_invalid")
    return company


def own_company(
    pairs: list[tuple[str, str]], company: Company, company_param: str
) -> list[tuple[str, str]]:
    """The parameters, refused 403 when their company id is not the token's company's.

    A token identifies its company: company A's token sending an event with company B's id
    is a forgery (or a misconfigured PBX). An event without the parameter gets the id.
    """
    if company.company_id is None:
        return pairs  # one company, any id
    ids = {v for k, v in pairs if k == company_param}
    if not ids:
        return [*pairs, (company_param, company.company_id)]
    if ids != {company.company_id}:
        metrics.COMPANY_EVENTS.labels(company.name, "refused").inc()
        shown = ",".join(sorted(ids))[:40]
        raise Refusal(
            403,
            f"{company_param} {shown} is not the id of company {company.name} "
            f"({company.company_id}), whose token this is",
            "company_mismatch",
        )
    return pairs
