"""The Salesforce plugin object: the hooks callbridge calls, wired to the connector's parts.

Registered through the ``callbridge`` entry point group as ``plugin`` (the class: the plugin
manager makes one instance per load; tests and embedders make their own). Nothing talks to
Salesforce before the first hook call: a Salesforce outage at start-up does not stop
callbridge, it only makes lookups fail and deliveries wait.
"""

from __future__ import annotations

import logging
import threading
from collections import OrderedDict
from collections.abc import Callable
from datetime import UTC, tzinfo
from typing import TYPE_CHECKING, Any, TypeVar
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from callbridge import (
    ActivityRef,
    Call,
    CallRecord,
    ConfigurationError,
    Contact,
    ContactDraft,
    Direction,
    NotConfigured,
    PermanentError,
    hookimpl,
    same_call,
)

from . import activity, lookup
from .activity import wrapup_fields
from .client import (
    Backoff,
    SalesforceClient,
    SalesforceRefused,
    SessionFactory,
    sobject,
)
from .escape import select_ids
from .owners import OwnerResolver
from .queries import first_id, first_row, first_value, org_time_zone, upsert_task
from .settings import SalesforceSettings
from .urls import lightning_base, record_url

if TYPE_CHECKING:
    from fastapi import APIRouter

    from callbridge import Context, Settings

log = logging.getLogger(__name__)

T = TypeVar("T")
NAME = "salesforce"
_ACCOUNT_MEMORY = 10_000
#: Most records ``search_contacts`` returns (a list an agent picks from).
_SEARCHED = 20
#: Id prefix of Contacts (the only WhoId that has an Account).
_CONTACT_PREFIX = "003"


class SalesforcePlugin:
    """callbridge's Salesforce connector (see ``docs/connectors/salesforce.md``)."""

    name = NAME
    settings_class = SalesforceSettings

    def __init__(self, *, session_factory: SessionFactory | None = None) -> None:
        self._session_factory = session_factory
        self._settings: SalesforceSettings | None = None
        self._client: SalesforceClient | None = None
        self._owners: OwnerResolver | None = None
        self._region = "IT"
        self._accounts: OrderedDict[str, str] = OrderedDict()
        self._lock = threading.Lock()
        #: Optional lookups already warned about (each kind once per process).
        self._warned: set[str] = set()
        self._org_zone: tzinfo | None = None

    def __repr__(self) -> str:
        state = "configured" if self._client is not None else "not configured"
        return f"SalesforcePlugin({state})"

    # --- configuration --------------------------------------------------------------------

    def configure(self, settings: SalesforceSettings, core: Settings | None = None) -> None:
        """Take validated settings; raise ConfigurationError naming missing credentials.

        No credentials at all means the connector is simply not in use (NotConfigured), not
        that it failed; the reason still lists what each authentication mode needs.
        """
        try:
            auth = settings.auth()
        except ConfigurationError as exc:
            if not settings.has_credentials():
                raise NotConfigured(str(exc)) from None
            raise
        self._settings = settings
        self._client = SalesforceClient(
            auth,
            api_version=settings.api_version,
            timeout=settings.timeout,
            ca_bundle=str(settings.ca_bundle) if settings.ca_bundle else None,
            session_factory=self._session_factory,
            backoff=Backoff(
                outage=settings.backoff_outage,
                network=settings.backoff_network,
                auth=settings.backoff_auth,
            ),
        )
        self._owners = OwnerResolver(settings, self._client.call)
        if settings.default_region:
            self._region = settings.default_region
        elif core is not None:
            self._region = core.default_region

    @property
    def settings(self) -> SalesforceSettings:
        """The settings given to :meth:`configure`."""
        if self._settings is None:
            raise ConfigurationError("the Salesforce connector is not configured")
        return self._settings

    @property
    def client(self) -> SalesforceClient:
        """The Salesforce connection (tests and commands use it)."""
        if self._client is None:
            raise ConfigurationError("the Salesforce connector is not configured")
        return self._client

    @property
    def lookup_cache_ttl(self) -> float | None:
        """Seconds the core caches a contact found here (``CACHE_TTL``; None: the core's)."""
        return self._settings.cache_ttl if self._settings else None

    @property
    def lookup_negative_ttl(self) -> float | None:
        """Seconds the core caches a "not found" here (``CACHE_NEGATIVE_TTL``)."""
        return self._settings.cache_negative_ttl if self._settings else None

    def lightning_base(self) -> str:
        """``https://acme.lightning.force.com`` (configured, or derived from the instance)."""
        return self.settings.lightning_url or lightning_base(self.client.instance)

    # --- hooks ----------------------------------------------------------------------------

    @hookimpl
    def startup(self, context: Context) -> None:
        """Adopt the core's default region unless the connector has its own."""
        if self._settings is not None and not self._settings.default_region:
            self._region = context.settings.default_region

    @hookimpl
    def shutdown(self, context: Context) -> None:
        """Close the HTTP session."""
        if self._client is not None:
            self._client.close()

    @hookimpl
    def register_routes(self, router: APIRouter) -> None:
        """The Open CTI softphone page (``/plugins/salesforce/softphone``)."""
        from .softphone import add_routes

        add_routes(router, self._settings or SalesforceSettings())

    @hookimpl
    def lookup_contact(self, number: str, call: Call) -> Contact | None:
        """Search Contacts, Leads and Accounts by phone; the best object wins."""
        settings = self.settings
        terms = lookup.search_terms(number, self._region)
        if not terms:
            return None
        sosl = lookup.build_sosl(terms, settings.objects)
        result = self.client.call(lambda sf: sf.search(sosl))
        found = lookup.choose(
            result,
            number,
            region=self._region,
            objects=settings.objects,
            lightning_base=self.lightning_base(),
        )
        self._remember_accounts(found.accounts)
        return found.contact

    @hookimpl
    def search_contacts(self, query: str) -> list[Contact]:
        """Contacts, Leads and Accounts whose name (or company) holds every word typed.

        One SOSL search in name fields, through the same client (and rate-limit handling)
        as the phone lookup.
        """
        terms = lookup.name_terms(query)
        if not terms:
            return []
        sosl = lookup.build_sosl(terms, self.settings.objects, scope="NAME")
        result = self.client.call(lambda sf: sf.search(sosl))
        found, accounts = lookup.found_by_name(result, terms, self.lightning_base(), _SEARCHED)
        self._remember_accounts(accounts)
        return found

    @hookimpl
    def create_contact(self, draft: ContactDraft) -> Contact:
        """Create a Contact (or a Lead: ``draft.kind``) with the number as its Phone."""
        first, _, last = draft.name.strip().rpartition(" ")
        fields: dict[str, Any] = {"LastName": last or first, "Phone": draft.number}
        if first and last:
            fields["FirstName"] = first
        object_name = "Lead" if draft.kind == "lead" else "Contact"
        if object_name == "Lead":
            fields["Company"] = draft.company or draft.name
        if draft.email:
            fields["Email"] = draft.email
        created = self.client.call(lambda sf: sobject(sf, object_name).create(fields))
        record_id = str(created["id"])
        return Contact(
            connector=NAME,
            record_type=object_name,
            record_id=record_id,
            name=draft.name.strip(),
            company=draft.company,
            url=record_url(self.lightning_base(), object_name, record_id),
            numbers=[draft.number],
        )

    @hookimpl
    def log_call(self, record: CallRecord) -> ActivityRef | None:
        """Write the call's one Task (exactly once, across retries and restarts).

        A Task already under the call's key (CallObject, or the external-id field) is
        adopted only when its Description carries this call's signature; otherwise (another
        call got the same key) this call is logged under its alternate key. What only
        enriches the Task (owner, Account, Lead, the org's time zone) never loses it: a
        refusal there is warned about once and the Task is written without it.
        """
        key = activity.activity_key(record, NAME)
        # A delivery enqueued before keys carried the start: its Task (if an earlier attempt
        # wrote it) has the older CallObject and no signature; find it as before.
        legacy = record.key_format < 2
        call_object = record.call.key if legacy else key
        existing = self._existing(self._lookup_value(key, call_object))
        if existing is not None:
            task_id, description = existing
            if legacy or same_call(description, record):
                log.info("salesforce: Task %s already logged for %s", task_id, record.call.key)
                return self._ref(task_id)
            log.warning(
                "salesforce: Task %s has the key of call %s but is another call; logging this "
                "one under its alternate key",
                task_id,
                record.call.key,
            )
            key = call_object = activity.activity_key(record, NAME, alternate=True)
            existing = self._existing(key)
            if existing is not None:
                return self._ref(existing[0])
        call = record.call
        extension = call.extension or (call.originate.extension if call.originate else None)
        owners = self._owners
        owner = self._optional("owner", lambda: owners.owner_for(extension) if owners else None)
        lead = self._optional("lead", lambda: self._lead_for(record, owner))
        accounts = self._optional("account", lambda: self._accounts_for(record))
        fields = activity.task_fields(
            record,
            self.settings,
            connector=NAME,
            owner_id=owner,
            accounts=accounts if accounts is not None else self._known_accounts(),
            who_id=lead,
            zone=self._zone(),
            key=call_object,
        )
        task_id = self._write(key, fields)
        log.info("salesforce: Task %s logged for %s", task_id, record.call.key)
        return self._ref(task_id)

    @hookimpl
    def update_call(self, record: CallRecord, activity: ActivityRef, revision: int) -> ActivityRef:
        """PATCH the Task ``log_call`` wrote with the agent's wrap-up (``wrapup_fields``).

        A PATCH sets fields, so one repeated after a crash changes nothing more; the core
        sends each revision once, in order.
        """
        fields = wrapup_fields(record, NAME, self._known_accounts())
        task_id = activity.record_id
        if fields:
            self.client.call(lambda sf: sobject(sf, "Task").update(task_id, fields))
            log.info("salesforce: Task %s amended (wrap-up %d)", task_id, revision)
        return self._ref(task_id)

    # --- writing the Task -----------------------------------------------------------------

    def _lookup_value(self, key: str, call_object: str) -> str:
        """What the Task is found by: the external-id field's key, else the CallObject."""
        return key if self.settings.task_external_id_field else call_object

    def _match(self, key: str) -> str:
        field = self.settings.task_external_id_field or "CallObject"
        return select_ids("Task", {field: key}, fields=("Id", "Description"))

    def _existing(self, key: str) -> tuple[str, str | None] | None:
        """``(Id, Description)`` of the Task under ``key``, if there is one."""
        query = self._match(key)
        row = self.client.call(lambda sf: first_row(sf, query))
        if row is None:
            return None
        description = row.get("Description")
        return str(row["Id"]), str(description) if description is not None else None

    def _write(self, key: str, fields: dict[str, Any]) -> str:
        """Create (or upsert) the Task; a refusal of a field we chose drops that field.

        A relation (WhoId, WhatId) or an owner that Salesforce refuses is our choice, not
        the call's data: the Task is written without it and its Description says so, so
        the activity is never lost for it. Any other refusal is raised (a dead delivery
        with Salesforce's answer).
        """
        for _ in range(len(_OUR_FIELDS) + 1):
            try:
                return self._send(key, fields)
            except SalesforceRefused as exc:
                dropped = _our_fields(exc, fields)
                if not dropped:
                    raise
                named = ", ".join(f"{name} {fields[name]}" for name in dropped)
                note = f"callbridge could not set {named}: {exc}"
                log.warning("salesforce: writing the Task without %s (%s)", named, exc)
                fields = {k: v for k, v in fields.items() if k not in dropped}
                fields["Description"] = activity.with_note(str(fields["Description"]), note)
        return self._send(key, fields)

    def _send(self, key: str, fields: dict[str, Any]) -> str:
        field = self.settings.task_external_id_field
        if field:
            retry = self.client.backoff.network
            match = self._match(key)
            return self.client.call(lambda sf: upsert_task(sf, field, key, fields, match, retry))
        return self.client.call(lambda sf: str(sobject(sf, "Task").create(fields)["id"]))

    def _optional(self, what: str, lookup: Callable[[], T]) -> T | None:
        """``lookup()``, or None when Salesforce refuses it for good (warned once per kind).

        A passing failure (RetryLater) is raised: the delivery is retried, with it.
        """
        try:
            return lookup()
        except PermanentError as exc:
            with self._lock:
                first = what not in self._warned
                self._warned.add(what)
            if first:
                log.warning(
                    "salesforce: the %s lookup is refused (%s); Tasks are written without it",
                    what,
                    exc,
                )
            return None

    def _zone(self) -> tzinfo:
        """The time zone of ActivityDate: configured, else the org's (read once), else UTC."""
        configured = self.settings.time_zone
        if configured:
            return ZoneInfo(configured)
        with self._lock:
            if self._org_zone is not None:
                return self._org_zone
        name = self._optional("time zone", lambda: self.client.call(org_time_zone))
        try:
            zone: tzinfo = ZoneInfo(name) if name else UTC
        except (ZoneInfoNotFoundError, ValueError):
            log.warning("salesforce: unknown org time zone %r; ActivityDate in UTC", name)
            zone = UTC
        with self._lock:
            self._org_zone = zone
        return zone

    # --- helpers --------------------------------------------------------------------------

    def _ref(self, task_id: str) -> ActivityRef:
        return ActivityRef(
            connector=NAME,
            record_type="Task",
            record_id=task_id,
            url=record_url(self.lightning_base(), "Task", task_id),
        )

    def _remember_accounts(self, accounts: dict[str, str]) -> None:
        with self._lock:
            for contact_id, account_id in accounts.items():
                self._accounts[contact_id] = account_id
                self._accounts.move_to_end(contact_id)
            while len(self._accounts) > _ACCOUNT_MEMORY:
                self._accounts.popitem(last=False)

    def _known_accounts(self) -> dict[str, str]:
        with self._lock:
            return dict(self._accounts)

    def _accounts_for(self, record: CallRecord) -> dict[str, str]:
        """Contact -> Account ids for the Task's WhatId, asking Salesforce when not known.

        The lookup remembers each Contact's Account, but only in this process: a delivery
        retried after a restart, or a click-to-call from a Contact nobody searched for, would
        otherwise lose the Account. ``""`` remembers a Contact without one.
        """
        with self._lock:
            accounts = dict(self._accounts)
        who, _what = activity.target(record, NAME, accounts)
        if who is None or not who.startswith(_CONTACT_PREFIX) or who in accounts:
            return accounts
        query = select_ids("Contact", {"Id": who}, fields=("Id", "AccountId"))
        account = self.client.call(lambda sf: first_value(sf, query, "AccountId")) or ""
        self._remember_accounts({who: account})
        accounts[who] = account
        return accounts

    def _lead_for(self, record: CallRecord, owner: str | None) -> str | None:
        """The Lead for an unknown caller when ``create_leads`` is on (found or created)."""
        settings = self.settings
        call = record.call
        if not settings.create_leads or call.direction is Direction.INTERNAL:
            return None
        if not call.remote_e164 or activity.target(record, NAME, {}) != (None, None):
            return None
        contact = record.contact_for(NAME)
        if contact is not None:  # ambiguous: the agent chooses, we create nothing
            return None
        phone = call.remote_e164
        # Our own Leads carry the E.164 number, so an exact SOQL match finds a Lead created by
        # an earlier attempt of this delivery (SOSL's index may lag behind the create).
        query = select_ids("Lead", {"Phone": phone, "IsConverted": False})
        found = self.client.call(lambda sf: first_id(sf, query))
        if found is not None:
            return found
        name = call.identity.display_name if call.identity else ""
        data: dict[str, Any] = {
            "LastName": name or f"Caller {phone}",
            "Company": settings.lead_company,
            "Phone": phone,
        }
        if settings.lead_source:
            data["LeadSource"] = settings.lead_source
        if owner:
            data["OwnerId"] = owner
        lead_id = self.client.call(lambda sf: str(sobject(sf, "Lead").create(data)["id"]))
        log.info("salesforce: Lead %s created for an unknown caller", lead_id)
        return lead_id


#: Fields the connector chooses for a Task (not the call's own data): a refusal of one of
#: them drops it instead of losing the Task.
_OUR_FIELDS = ("WhoId", "WhatId", "OwnerId")
#: Salesforce's answers to a relation of the wrong kind or to a record that is gone.
_RELATION_CODES = frozenset(
    {"FIELD_INTEGRITY_EXCEPTION", "INVALID_CROSS_REFERENCE_KEY", "ENTITY_IS_DELETED"}
)


def _our_fields(exc: SalesforceRefused, fields: dict[str, Any]) -> list[str]:
    """The fields we chose that caused the refusal (all relations when none is named)."""
    named = [name for name in _OUR_FIELDS if name in exc.fields and name in fields]
    if named:
        return named
    if exc.code in _RELATION_CODES and not exc.fields:
        return [name for name in ("WhoId", "WhatId") if name in fields]
    return []


#: What the ``callbridge`` entry point names: the class, so that each load of the plugin
#: manager (a restart of the service in the same process, as in tests and the demo) gets a
#: fresh instance with its own client and caches rather than the previous run's state.
plugin = SalesforcePlugin
