"""``/v1/contacts``: search a CRM's records as an agent types, create one for an unknown number.

For the wrap-up form (docs/wrap-up.md): the record a call belongs to when the lookup was
ambiguous or empty. Unlike the rest of the API these go to a connector at once (an agent
waits for the list), in a worker thread, through the plugin's own ``search_contacts`` /
``create_contact`` hooks and so through its own pacing: a CRM's rate limit answers 429 with
``Retry-After`` (the form tries again), never a burst of retries from here.
"""

from __future__ import annotations

import math
from typing import Any

import anyio.to_thread
from fastapi import APIRouter, Depends, HTTPException, Query, Request
from pydantic import BaseModel, Field

from ..errors import PermanentError, RetryLater
from ..models import Contact, ContactDraft
from .auth import Grant, TokenAuth
from .services import Services

#: Longest query passed on (a CRM's search refuses far shorter ones than a page could send).
MAX_QUERY = 100


class NewContact(BaseModel):
    """``POST /v1/contacts``: which connector, and the contact."""

    connector: str = Field(min_length=1, max_length=100)
    name: str = Field(min_length=1, max_length=200)
    number: str = Field(min_length=1, max_length=40)
    company: str | None = Field(default=None, max_length=200)
    email: str | None = Field(default=None, max_length=200)
    kind: str = Field(default="contact", pattern="^(contact|lead)$")
    extension: str | None = Field(
        default=None, description="The agent creating it (a CRM may make them its owner)."
    )


def build_router(services: Services, auth: TokenAuth) -> APIRouter:
    """The contact search and create routes, bound to ``services``."""
    plugins = services.plugins
    router = APIRouter(prefix="/v1/contacts", tags=["Contacts"])

    def grant(request: Request) -> Grant:
        return auth.require(request)

    def implementer(connector: str, hook: str, who: Grant) -> str:
        """The token's company's connector: another company's CRM is not even named."""
        if "@" not in connector and who.company != "default":
            connector = (
                f"{connector}@{who.company}"  # the softphone names the CRM, not the instance
            )
        if plugins is None or connector not in plugins.implementers(hook, who.company):
            raise HTTPException(404, f"connector {connector!r:.60} does not offer {hook}")
        return connector

    async def run(what: str, fn: Any) -> object:
        try:
            return await anyio.to_thread.run_sync(fn)
        except RetryLater as exc:
            wait = math.ceil(exc.retry_after or 1.0)
            raise HTTPException(
                429, f"the CRM asks to wait ({what}): {exc}", {"Retry-After": str(wait)}
            ) from None
        except (PermanentError, ValueError) as exc:
            raise HTTPException(422, f"the CRM refused to {what}: {exc}") from None

    @router.get("/search", response_model=list[Contact], summary="Search a CRM's records")
    async def search(
        connector: str,
        q: str = Query(min_length=1, max_length=MAX_QUERY),
        who: Grant = Depends(grant),  # noqa: B008
    ) -> list[Contact]:
        """Records of ``connector`` matching ``q`` (name, company or number), best first."""
        name = implementer(connector, "search_contacts", who)
        assert plugins is not None
        found = await run("search", lambda: plugins.search_contacts(name, q.strip()))
        if not isinstance(found, list) or not all(isinstance(c, Contact) for c in found):
            raise HTTPException(502, f"search_contacts of {name} did not return contacts")
        return [c if c.connector else c.model_copy(update={"connector": name}) for c in found]

    @router.post("", response_model=Contact, status_code=201, summary="Create a contact")
    async def create(body: NewContact, who: Grant = Depends(grant)) -> Contact:  # noqa: B008
        """Create a contact (or lead) in ``connector`` for an unknown number."""
        if body.extension and not who.allows(body.extension):
            raise HTTPException(403, "this token may not act for that extension")
        name = implementer(body.connector, "create_contact", who)
        assert plugins is not None
        draft = ContactDraft.model_validate(body.model_dump(exclude={"connector"}))
        made = await run("create the contact", lambda: plugins.create_contact(name, draft))
        if not isinstance(made, Contact):
            raise HTTPException(502, f"create_contact of {name} did not return a contact")
        return made if made.connector else made.model_copy(update={"connector": name})

    return router
