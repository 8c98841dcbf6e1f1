"""Who owns a call's Task: the Salesforce user behind the PBX extension.

Sources, in order: the explicit ``owner_map`` (user id, or a username resolved once), then
``User.Extension`` when ``owner_source=extension``. Answers (including "nobody") are cached
for ``owner_cache_ttl`` seconds, so a busy extension costs one query per TTL, not per call.
An unknown owner is not an error: the Task then belongs to the integration user.
"""

from __future__ import annotations

import re
from collections.abc import Callable

from simple_salesforce.api import Salesforce

from callbridge import TTLCache

from .escape import select_ids
from .settings import SalesforceSettings

#: User ids are 15 or 18 characters and start with 005.
_USER_ID = re.compile(r"^005[A-Za-z0-9]{12}(?:[A-Za-z0-9]{3})?$")

Runner = Callable[[Callable[[Salesforce], str | None]], str | None]


class OwnerResolver:
    """Maps extensions to User ids through the connector's client (cached, thread-safe)."""

    def __init__(self, settings: SalesforceSettings, run: Runner) -> None:
        self._settings = settings
        self._run = run
        self._cache: TTLCache[str, str | None] = TTLCache(10_000)

    def owner_for(self, extension: str | None) -> str | None:
        """The User id for ``extension``, or None (Task owned by the integration user)."""
        if not extension or self._settings.owner_source == "none":
            return None
        cached = self._cache.get(extension)
        if cached is None or isinstance(cached, str):  # "nobody" is cached too
            return cached
        owner = self._resolve(extension)
        self._cache.set(extension, owner, self._settings.owner_cache_ttl)
        return owner

    def _resolve(self, extension: str) -> str | None:
        mapped = self._settings.owner_map.get(extension)
        if mapped is not None:
            if _USER_ID.match(mapped):
                return mapped
            query = select_ids("User", {"Username": mapped})
            return self._run(lambda sf: _single(sf, query))
        if self._settings.owner_source != "extension":
            return None
        query = select_ids("User", {"Extension": extension, "IsActive": True}, limit=2)
        return self._run(lambda sf: _single(sf, query))


def _single(sf: Salesforce, query: str) -> str | None:
    """The Id of the only record ``query`` finds; None for none or several (no guessing)."""
    records = sf.query(query).get("records") or []
    return str(records[0]["Id"]) if len(records) == 1 else None
