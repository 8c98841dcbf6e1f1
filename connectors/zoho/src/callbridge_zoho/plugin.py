"""The Zoho CRM connector as a callbridge plugin (entry point ``callbridge_zoho.plugin:plugin``).

It finds callers among Contacts, Leads and Accounts (``lookup_contact``) and writes one
record in the Calls module per finished call (``log_call``). All Zoho traffic goes through
``ZohoApi``; what the Calls record contains is in ``activity``; how a number is searched and
several matches resolved is in ``lookup``; how exactly-once holds is in ``log_call``.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable
from datetime import UTC, tzinfo
from typing import TYPE_CHECKING, TypeVar
from zoneinfo import ZoneInfo

from callbridge import (
    MISSING,
    ActivityRef,
    Call,
    CallRecord,
    ConfigurationError,
    Contact,
    Direction,
    PermanentError,
    PluginError,
    TTLCache,
    agent_keys,
    digits,
    hookimpl,
    is_extension,
    number_forms,
    pick_contact,
    same_call,
)

from . import activity, lookup
from .api import ZohoApi
from .settings import ENV_PREFIX, ZohoSettings

if TYPE_CHECKING:
    from callbridge import Context, Settings

log = logging.getLogger(__name__)

NAME = "zoho"
T = TypeVar("T")
_UNCONFIGURED = (
    f"{ENV_PREFIX}CLIENT_ID, {ENV_PREFIX}CLIENT_SECRET and {ENV_PREFIX}REFRESH_TOKEN are not set"
)
#: Seconds a Contact's Account (the Call's What_Id) is remembered from a search.
ACCOUNT_TTL = 3600.0

#: CRM context record types (as the agent panel or an API client sends them) -> modules.
CONTEXT_MODULES: dict[str, str] = {
    "contact": "Contacts", "contacts": "Contacts",
    "lead": "Leads", "leads": "Leads",
    "account": "Accounts", "accounts": "Accounts",
    "deal": "Deals", "deals": "Deals", "potentials": "Deals",
}  # fmt: skip


class ZohoPlugin:
    """One configured Zoho CRM organisation."""

    name = NAME
    settings_class = ZohoSettings

    def __init__(self) -> None:
        self._settings: ZohoSettings | None = None
        self._api: ZohoApi | None = None
        self._region = "IT"
        self._zone: tzinfo = UTC
        self._lock = threading.Lock()
        self._org_path: str | None = None
        self._owners: TTLCache[str, str | None] = TTLCache(10_000)
        #: Contact id -> its Account's id, learnt from searches (the Call's What_Id).
        self._accounts: TTLCache[str, str | None] = TTLCache(10_000)
        self._notes: dict[str, str] = {}

    def __repr__(self) -> str:
        state = "configured" if self._settings is not None else "not configured"
        return f"ZohoPlugin({state})"

    # -- configuration --------------------------------------------------------------------

    def configure(self, settings: ZohoSettings, core: Settings | None = None) -> None:
        """Receive validated settings; no network here (start-up must not wait on Zoho)."""
        self._settings = settings
        self._api = ZohoApi(settings)
        self._org_path = settings.org_path()
        region = settings.default_region
        if region is None and core is not None:
            region = core.default_region
        if region is None:
            region = os.environ.get("CALLBRIDGE_DEFAULT_REGION", "").strip().upper() or "IT"
        self._region = region
        self._zone = ZoneInfo(settings.time_zone) if settings.time_zone else UTC

    @property
    def settings(self) -> ZohoSettings:
        """The settings, or a ConfigurationError naming the variables when unconfigured."""
        if self._settings is None:
            raise ConfigurationError(_UNCONFIGURED)
        return self._settings

    @property
    def api(self) -> ZohoApi:
        """The API client (built by ``configure``)."""
        if self._api is None:
            raise ConfigurationError(_UNCONFIGURED)
        return self._api

    # -- lifecycle hooks -------------------------------------------------------------------

    @hookimpl
    def startup(self, context: Context) -> None:
        """Adopt the core's region; read the organisation (for record links) once."""
        if self._settings is None:
            return
        if self._settings.default_region is None:
            self._region = context.settings.default_region
        try:
            self.org_path()
        except PluginError as exc:
            log.warning("zoho: organisation details not available yet: %s", exc)

    @hookimpl
    def shutdown(self, context: Context) -> None:
        """Close the connection pool."""
        if self._api is not None:
            self._api.close()

    # -- record links ----------------------------------------------------------------------

    def org_path(self) -> str:
        """``org12345678``: configured, else read from the org API once."""
        with self._lock:
            if self._org_path is not None:
                return self._org_path
        org = self.api.org()
        path = str(org.get("domain_name") or "").strip() or f"org{org.get('zgid')}"
        with self._lock:
            self._org_path = path
        return path

    def record_url(self, module: str, record_id: str) -> str:
        """``https://crm.zoho.<dc>/crm/org<id>/tab/<Module>/<record id>``."""
        return f"{self.api.crm_url}/crm/{self.org_path()}/tab/{module}/{record_id}"

    def _url_or_none(self, module: str, record_id: str) -> str | None:
        try:
            return self.record_url(module, record_id)
        except PluginError as exc:
            log.warning("zoho: no record link (%s)", exc)
            return None

    # -- lookup ----------------------------------------------------------------------------

    @hookimpl
    def lookup_contact(self, number: str, call: Call) -> Contact | None:
        """Search the modules by phone, best first; one record, an ambiguous one, or None.

        A lower module is searched only when the better ones found nobody (each search
        costs Zoho API credits). A failing search raises: "no match" is never guessed.
        """
        if not digits(number) or is_extension(number):
            return None
        forms = number_forms(number, self._region)
        groups: list[list[Contact]] = []
        for module in self.settings.modules:
            matches = self._search(module, number, forms)
            groups.append(matches)
            if matches:
                break
        return pick_contact(groups)

    def _search(self, module: str, number: str, forms: list[str]) -> list[Contact]:
        found: list[Contact] = []
        seen: set[str] = set()
        for criteria in lookup.criteria(module, forms):
            for record in self.api.search(module, criteria, lookup.search_fields(module)):
                record_id = str(record.get("id") or "")
                phones = lookup.matching_phones(module, record, number, self._region)
                if not record_id or not phones or record_id in seen:
                    continue
                seen.add(record_id)
                if module == "Contacts":
                    self._accounts.set(record_id, lookup.account_id(record), ACCOUNT_TTL)
                url = self._url_or_none(module, record_id)
                found.append(lookup.to_contact(module, record, phones, url))
        return found

    # -- owners ----------------------------------------------------------------------------

    def owner_for(self, call: Call) -> str | None:
        """The Zoho user of the agent: explicit map, then e-mail through the users API."""
        settings = self.settings
        present = agent_keys(call)
        for key in present:
            if key in settings.owners:
                return settings.owners[key]
        emails = [settings.owner_emails[k] for k in present if k in settings.owner_emails]
        if settings.owner_from_user_email:
            emails += [k for k in present if "@" in k and "." in k.rpartition("@")[2]]
        for email in emails:
            cached = self._owners.get(email.lower())
            if cached is MISSING:
                cached = self.api.user_id_for_email(email)
                self._owners.set(email.lower(), cached, settings.owner_cache_ttl)
            if isinstance(cached, str):
                return cached
        return None

    def _optional(self, what: str, read: Callable[[], T]) -> T | None:
        """``read()``, or None when Zoho refuses it for good (warned once, kept as a note).

        What only enriches the Calls record (its owner, the Contact's Account) never loses
        it. A passing failure (RetryLater) is raised: the delivery is retried with it.
        """
        try:
            value = read()
        except PermanentError as exc:
            note = f"the {what} lookup is refused, calls are logged without it: {exc}"
            with self._lock:
                first = what not in self._notes
                self._notes[what] = note
            if first:
                log.warning("zoho: %s", note)
            return None
        with self._lock:
            self._notes.pop(what, None)
        return value

    def notes(self) -> list[str]:
        """What the operator should know (shown by ``callbridge plugins``)."""
        with self._lock:
            return list(self._notes.values())

    # -- activities ------------------------------------------------------------------------

    def _relations(self, record: CallRecord) -> tuple[str | None, tuple[str, str] | None]:
        """``(Who_Id, (module, What_Id))``: the clicked record, else the caller found."""
        context = record.call.crm_context
        if context is not None and context.connector == self.name:
            module = CONTEXT_MODULES.get(context.record_type.lower())
            if module is not None and context.record_id.isdigit():
                if module == "Contacts":
                    return context.record_id, self._account_of(context.record_id)
                return None, (module, context.record_id)
            log.warning("zoho: ignoring CRM context %s/%s", context.record_type, context.record_id)
        contact = record.contact_for(self.name)
        if contact is None or contact.ambiguous:
            return None, None  # candidates are listed in the Description
        module = lookup.MODULES.get(contact.record_type)
        if module == "Contacts":
            return contact.record_id, self._account_of(contact.record_id)
        return None, (module, contact.record_id) if module else None

    def _account_of(self, contact_id: str) -> tuple[str, str] | None:
        """``("Accounts", id)`` of a Contact's Account: from the search, else read once."""
        account = self._accounts.get(contact_id)
        if account is MISSING:
            fields = ["Account_Name"]
            row = self._optional(
                "account", lambda: self.api.get_record("Contacts", contact_id, fields)
            )
            account = lookup.account_id(row) if row else None
            self._accounts.set(contact_id, account, ACCOUNT_TTL)
        return ("Accounts", account) if isinstance(account, str) else None

    def _existing(self, key: str) -> tuple[str, str | None] | None:
        """``(id, Description)`` of the Calls record under ``key``, if there is one."""
        field = self.settings.key_field
        try:
            rows = self.api.search(
                "Calls", f"({field}:equals:{lookup.escape(key)})", ["Description", field]
            )
        except PermanentError as exc:
            raise PermanentError(
                f"{exc}. Is there a Calls field with the API name {field!r} "
                f"({ENV_PREFIX}KEY_FIELD, see docs/connectors/zoho.md)?"
            ) from None
        for row in rows:
            if row.get(field) == key and row.get("id"):
                text = row.get("Description")
                return str(row["id"]), str(text) if text is not None else None
        return None

    def _ref(self, call_id: str) -> ActivityRef:
        return ActivityRef(
            connector=self.name,
            record_type="Calls",
            record_id=call_id,
            url=self._url_or_none("Calls", call_id),
        )

    @hookimpl
    def log_call(self, record: CallRecord) -> ActivityRef | None:
        """Write the call's one Calls record (exactly once, across retries and restarts).

        1. Search Calls for the call's key (``KEY_FIELD``): a record carrying this call's
           signature is adopted, nothing is written. One carrying another signature is an
           earlier call with the same key: this call is logged under its alternate key.
        2. Otherwise upsert on ``KEY_FIELD`` (a field Zoho keeps unique): should an earlier
           attempt have been written without our learning it (a lost answer, and a search
           index that lags behind writes), Zoho updates that record instead of adding one.
        """
        call = record.call
        if call.direction is Direction.INTERNAL:
            return None
        settings = self.settings
        key = record.idempotency_key(self.name)
        existing = self._existing(key)
        if existing is not None:
            call_id, text = existing
            if same_call(text, record):
                log.info("zoho: call %s already logged as %s", call.key, call_id)
                return self._ref(call_id)
            log.warning(
                "zoho: Calls record %s has the key of call %s but is another call; logging "
                "this one under its alternate key",
                call_id,
                call.key,
            )
            key = record.idempotency_key(self.name, alternate=True)
            existing = self._existing(key)
            if existing is not None:
                return self._ref(existing[0])
        owner = self._optional("owner", lambda: self.owner_for(call))
        who, what = self._relations(record)
        data = activity.fields(
            record,
            key_field=settings.key_field,
            key=key,
            zone=self._zone,
            owner_id=owner,
            who=who,
            what=what,
            call_results=settings.call_results,
        )
        call_id = self.api.upsert("Calls", data, settings.key_field)
        log.info("zoho: call %s logged as Calls record %s", call.key, call_id)
        return self._ref(call_id)


#: What the ``callbridge`` entry point names: the class, so that each load of the plugin
#: manager gets a fresh instance (its caches and client) rather than shared state.
plugin = ZohoPlugin
