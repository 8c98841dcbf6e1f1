"""The HubSpot connector as a callbridge plugin (entry point ``callbridge_hubspot.plugin:plugin``).

It finds callers among contacts (``lookup_contact``), writes one call engagement per finished
call (``log_call``), and serves the calling-extension page (``register_routes``). All HubSpot
traffic goes through ``HubSpotApi``; what an engagement contains is in ``engagement``; how
several matches are resolved is in ``lookup``; how exactly-once holds is in ``log_call``.
"""

from __future__ import annotations

import logging
import os
import time
from typing import TYPE_CHECKING

from callbridge import (
    MISSING,
    ActivityRef,
    Call,
    CallRecord,
    ConfigurationError,
    Contact,
    ContactDraft,
    CrmContext,
    Direction,
    LazyLedger,
    PermanentError,
    PluginError,
    RetryLater,
    TTLCache,
    agent_keys,
    digits,
    email_keys,
    hookimpl,
    is_extension,
    to_e164,
)

from . import engagement, lookup
from .api import CALL_ASSOCIATION_TYPES, HubSpotApi, Record
from .failures import HubSpotUncertain
from .ledger import Ledger
from .settings import HubSpotSettings

if TYPE_CHECKING:
    from fastapi import APIRouter

    from callbridge import Context, Settings

log = logging.getLogger(__name__)

#: CRM context record types (as the calling page or an API client sends them) -> API names.
#: Most contacts ``search_contacts`` returns (a list an agent picks from).
_SEARCHED = 20
RECORD_TYPES: dict[str, str] = {
    "contact": "contacts", "contacts": "contacts", "0-1": "contacts",
    "company": "companies", "companies": "companies", "0-2": "companies",
    "deal": "deals", "deals": "deals", "0-3": "deals",
    "ticket": "tickets", "tickets": "tickets", "0-5": "tickets",
}  # fmt: skip
#: HubSpot keeps at most this many associations worth showing for an ambiguous caller.
MAX_CANDIDATE_ASSOCIATIONS = 10
LEDGER_FILE = "hubspot-engagements.sqlite3"
#: The ledger note kept while the owners API refuses us.
_OWNER_NOTE = "owners"
#: ``_owner_lookup``'s answer when HubSpot refused the lookup.
_REFUSED = object()


class HubSpotPlugin:
    """One configured HubSpot account."""

    name = "hubspot"
    settings_class = HubSpotSettings

    def __init__(self) -> None:
        self._settings: HubSpotSettings | None = None
        self._api: HubSpotApi | None = None
        self._ledger = LazyLedger(LEDGER_FILE)
        self._owners: TTLCache[str, object] = TTLCache(10_000)
        self._region = "IT"

    def __repr__(self) -> str:
        state = "configured" if self._settings is not None else "not configured"
        return f"HubSpotPlugin({state})"

    # -- configuration --------------------------------------------------------------------

    def configure(self, settings: HubSpotSettings, core: Settings | None = None) -> None:
        """Receive validated settings; no network here (start-up must not wait on HubSpot).

        ``core`` (the core's settings, when the plugin manager passes them) gives the default
        region and data directory unless the connector's own variables set them.
        """
        self._settings = settings
        self._api = HubSpotApi(settings)
        region = settings.default_region
        if region is None and core is not None:
            region = core.default_region
        if region is None:
            region = os.environ.get("CALLBRIDGE_DEFAULT_REGION", "").strip().upper() or "IT"
        self._region = region
        self._ledger.place(settings.data_dir, core.data_dir if core is not None else None)

    @property
    def settings(self) -> HubSpotSettings:
        """The settings, or a ConfigurationError naming the variable when unconfigured."""
        if self._settings is None:
            raise ConfigurationError("CALLBRIDGE_HUBSPOT_ACCESS_TOKEN is not set")
        return self._settings

    @property
    def lookup_cache_ttl(self) -> float | None:
        """Seconds the core caches a contact found here (``LOOKUP_CACHE_TTL``)."""
        return self._settings.lookup_cache_ttl if self._settings is not None else None

    @property
    def lookup_negative_ttl(self) -> float | None:
        """Seconds the core caches a "not found" here (``LOOKUP_NEGATIVE_TTL``)."""
        return self._settings.lookup_negative_ttl if self._settings is not None else None

    @property
    def api(self) -> HubSpotApi:
        """The API wrapper (built by ``configure``)."""
        if self._api is None:
            raise ConfigurationError("CALLBRIDGE_HUBSPOT_ACCESS_TOKEN is not set")
        return self._api

    def ledger(self) -> Ledger:
        """The engagement ledger, opened on first use in the data directory."""
        return self._ledger.open()

    # -- lifecycle hooks -------------------------------------------------------------------

    @hookimpl
    def startup(self, context: Context) -> None:
        """Adopt the core's data dir and region; read the account details once."""
        if self._settings is None:
            return
        self._ledger.place(self._settings.data_dir, context.settings.data_dir)
        if self._settings.default_region is None:
            self._region = context.settings.default_region
        try:
            self.record_url("0")
        except PluginError as exc:
            log.warning("hubspot: account details not available yet: %s", exc)

    @hookimpl
    def shutdown(self, context: Context) -> None:
        """Close the ledger."""
        self._ledger.close()

    @hookimpl
    def register_routes(self, router: APIRouter) -> None:
        """Serve the calling-extension page under ``/plugins/hubspot/``."""
        from .routes import add_routes

        add_routes(router)

    # -- lookup ----------------------------------------------------------------------------

    def record_url(self, record_id: str, object_type: str = "0-1") -> str:
        """``https://<uiDomain>/contacts/<portalId>/record/<type>/<id>``."""
        settings = self.settings
        portal, domain = settings.portal_id, settings.ui_domain
        if not portal or not domain:
            details = self.api.account()
            portal, domain = portal or details.portal_id, domain or details.ui_domain
        return f"https://{domain}/contacts/{portal}/record/{object_type}/{record_id}"

    def _url_or_none(self, record_id: str) -> str | None:
        try:
            return self.record_url(record_id)
        except PluginError as exc:
            log.warning("hubspot: no record link (%s)", exc)
            return None

    def _contact(self, record: Record) -> Contact:
        props = record.properties
        return Contact(
            connector=self.name,
            record_type="contact",
            record_id=record.id,
            name=lookup.display_name(record),
            company=props.get("company") or None,
            url=self._url_or_none(record.id),
            owner_id=props.get("hubspot_owner_id") or None,
            numbers=[v for f in lookup.PHONE_FIELDS if (v := props.get(f))],
        )

    @hookimpl
    def lookup_contact(self, number: str, call: Call) -> Contact | None:
        """Search contacts for ``number``; one contact, an ambiguous one, or None."""
        if not digits(number) or is_extension(number):
            return None
        settings = self.settings
        records = self.api.search_contacts(
            lookup.filter_groups(number, self._region),
            lookup.PROPERTIES,
            settings.max_search_pages,
        )
        choice = lookup.choose(
            lookup.confirmed(records, number, self._region), settings.ambiguity_margin
        )
        contact: Contact | None
        if choice.winner is not None:
            contact = self._contact(choice.winner)
        elif choice.candidates:
            candidates = [self._contact(r) for r in choice.candidates]
            first = candidates[0]
            contact = first.model_copy(
                update={"name": f"{len(candidates)} contacts match", "candidates": candidates}
            )
        else:
            contact = None
        return contact

    @hookimpl
    def search_contacts(self, query: str) -> list[Contact]:
        """Contacts whose name or company holds every word typed: one search request,
        paced like the lookups (a 429 pauses both)."""
        words = [w for w in query.split() if w.strip("*")][:5]
        if not words:
            return []
        records = self.api.search_contacts(
            lookup.name_filter_groups(words), lookup.PROPERTIES, max_pages=1
        )
        return [self._contact(r) for r in records if lookup.holds_words(r, words)][:_SEARCHED]

    @hookimpl
    def create_contact(self, draft: ContactDraft) -> Contact:
        """Create a contact (HubSpot has no leads: a lead is a contact with lifecycle
        stage ``lead``) with the number as its phone."""
        first, _, last = draft.name.strip().rpartition(" ")
        props = {"lastname": last or first, "phone": draft.number}
        if first and last:
            props["firstname"] = first
        if draft.company:
            props["company"] = draft.company
        if draft.email:
            props["email"] = draft.email
        if draft.kind == "lead":
            props["lifecyclestage"] = "lead"
        contact_id = self.api.create_contact(props)
        return self._contact(Record(contact_id, dict[str, str | None](props)))

    # -- owners ----------------------------------------------------------------------------

    def owner_for(self, call: Call) -> str | None:
        """The HubSpot owner of the agent: explicit map, then e-mail via the owners API."""
        settings = self.settings
        present = agent_keys(call)
        for key in present:
            if key in settings.owners:
                return settings.owners[key]
        emails = [settings.owner_emails[k] for k in present if k in settings.owner_emails]
        if settings.owner_from_user_email:
            emails += email_keys(present)
        for email in emails:
            cached = self._owners.get(email.lower())
            if cached is MISSING:
                cached = self._owner_lookup(email)  # a refusal too is asked again after the TTL
                self._owners.set(email.lower(), cached, settings.owner_cache_ttl)
            if isinstance(cached, str):
                return cached
        return None

    def _owner_lookup(self, email: str) -> object:
        """The owner id for ``email``, None, or ``_REFUSED`` when HubSpot refuses the lookup.

        The owner only enriches the engagement: a refusal (a 403 when the private app lacks
        ``crm.objects.owners.read``, any other 4xx) must not kill it. It is warned about once
        and kept as a note that ``callbridge plugins`` shows; a later success clears it. A
        passing failure (429, 5xx) is raised: the delivery is retried with it.
        """
        try:
            found = self.api.owner_id_for_email(email)
        except RetryLater:
            raise
        except PermanentError as exc:
            note = f"owner lookup refused, engagements are written without an owner: {exc}"
            if self.ledger().set_note(_OWNER_NOTE, note):
                log.warning("hubspot: %s", note)
            return _REFUSED
        self.ledger().clear_note(_OWNER_NOTE)
        return found

    def notes(self) -> list[str]:
        """What the operator should know (shown by ``callbridge plugins``), from the ledger.

        Read from the ledger file, so another process (the command) sees what the engine
        found; nothing is created when there is no ledger yet.
        """
        return self._ledger.notes()

    # -- activities ------------------------------------------------------------------------

    def _targets(self, record: CallRecord, key: str) -> list[tuple[str, str]]:
        """Where the engagement is associated: the clicked record, else the found contact(s)."""
        context = record.call.crm_context
        if context is not None and context.connector == self.name:
            to_type = RECORD_TYPES.get(context.record_type.lower())
            if to_type in CALL_ASSOCIATION_TYPES and context.record_id.isdigit():
                return [(to_type, context.record_id)]
            log.warning(
                "hubspot: ignoring CRM context %s/%s", context.record_type, context.record_id
            )
        contact = record.contact_for(self.name)
        if contact is not None:
            if contact.ambiguous:
                ids = [c.record_id for c in contact.candidates][:MAX_CANDIDATE_ASSOCIATIONS]
                return [("contacts", i) for i in ids]
            return [("contacts", contact.record_id)]
        if self.settings.create_contacts:
            created = self._create_contact(record, key)
            if created:
                return [("contacts", created)]
        return []

    def _create_contact(self, record: CallRecord, key: str) -> str | None:
        call = record.call
        e164 = call.remote_e164 or to_e164(call.remote_number, self._region)
        if not e164:
            return None
        entry = self.ledger().get(key)
        if entry is not None and entry.contact_id:
            return entry.contact_id
        props = {"phone": e164}
        if call.direction is Direction.INBOUND and call.identity is not None:
            if call.identity.name:
                props["firstname"] = call.identity.name
            if call.identity.surname:
                props["lastname"] = call.identity.surname
        contact_id = self.api.create_contact(props)
        self.ledger().set_contact(key, contact_id)
        return contact_id

    def _ref(self, engagement_id: str, targets: list[tuple[str, str]]) -> ActivityRef:
        url = None
        if targets and targets[0][0] == "contacts":
            url = self._url_or_none(targets[0][1])
        return ActivityRef(
            connector=self.name, record_type="call", record_id=engagement_id, url=url
        )

    @hookimpl
    def log_call(self, record: CallRecord) -> ActivityRef | None:
        """Write the call engagement exactly once (see docs/connectors/hubspot.md).

        1. The ledger says ``written``: done, nothing is sent.
        2. With a unique call property configured: batch upsert on it, then PUT each
           association (both idempotent in HubSpot itself).
        3. Otherwise the ledger says ``pending`` (an earlier attempt may have reached HubSpot
           without us learning the id): search calls for ``hs_call_external_id``; a hit is
           adopted. No hit while the attempt is younger than ``search_lag``: retry later,
           because search lags behind writes.
        4. Mark ``pending`` (durably), create with associations, mark ``written``. When
           HubSpot answered an error (nothing was created) the mark is cleared at once.
        """
        call = record.call
        if call.direction is Direction.INTERNAL:
            return None
        settings = self.settings
        ledger = self.ledger()
        signature = record.signature
        key, entry = ledger.entry_for(record, self.name)
        if entry is not None and entry.state == "written" and entry.engagement_id:
            return self._ref(entry.engagement_id, self._known_targets(record))
        targets = self._targets(record, key)
        props = engagement.properties(
            record,
            external_id=key,
            dispositions=settings.dispositions,
            owner_id=self.owner_for(call),
        )
        if settings.unique_property:
            ledger.mark_pending(key, signature=signature)
            engagement_id = self.api.upsert_call(props, settings.unique_property, key)
            for to_type, to_id in targets:
                self.api.associate_call(engagement_id, to_type, to_id)
            ledger.mark_written(key, engagement_id, signature=signature)
            return self._ref(engagement_id, targets)
        if entry is not None and entry.state == "pending":
            found = self._adopt_pending(key, props["hs_timestamp"], entry.attempted_at, call.key)
            if found is not None:
                ledger.mark_written(key, found, signature=signature)
                return self._ref(found, targets)
        ledger.mark_pending(key, signature=signature)
        try:
            engagement_id = self.api.create_call(props, targets)
        except HubSpotUncertain:
            raise
        except PluginError:
            ledger.mark_clear(key)
            raise
        ledger.mark_written(key, engagement_id, signature=signature)
        return self._ref(engagement_id, targets)

    @hookimpl
    def update_call(self, record: CallRecord, activity: ActivityRef, revision: int) -> ActivityRef:
        """PATCH the engagement with the wrap-up (and recording); move it to the chosen record.

        A chosen contact (or company) replaces the contacts the engagement was associated
        with (the candidates of an ambiguous lookup); a related deal or ticket is added.
        PATCH, PUT and DELETE of associations are all idempotent in HubSpot.
        """
        wrapup = record.wrapup
        call_id = activity.record_id
        props = engagement.wrapup_properties(record, engagement.call_status(record.call))
        if props:
            self.api.update_call(call_id, props)
        if wrapup is None:  # a late recording only
            return activity
        chosen = self._association(wrapup.record_for(self.name))
        if chosen is not None:
            for to_type, to_id in self._targets(record, record.idempotency_key(self.name)):
                if (to_type, to_id) != chosen:
                    self.api.dissociate_call(call_id, to_type, to_id)
            self.api.associate_call(call_id, *chosen)
        related = self._association(wrapup.related_for(self.name))
        if related is not None:
            self.api.associate_call(call_id, *related)
        log.info("hubspot: engagement %s amended (wrap-up %d)", call_id, revision)
        return self._ref(call_id, [chosen] if chosen else self._known_targets(record))

    def _association(self, ref: CrmContext | None) -> tuple[str, str] | None:
        """``(object type, id)`` of a record the agent chose, when a call can point at it."""
        if ref is None:
            return None
        to_type = RECORD_TYPES.get(ref.record_type.lower())
        if to_type in CALL_ASSOCIATION_TYPES and ref.record_id.isdigit():
            return to_type, ref.record_id
        raise PermanentError(
            f"HubSpot cannot associate a call with {ref.record_type} {ref.record_id}"
        )

    def _adopt_pending(
        self, key: str, timestamp: str, attempted_at: float, call_key: str
    ) -> str | None:
        """The engagement an uncertain earlier attempt created, found by search; None when
        search shows none after ``search_lag``. Sooner, RetryLater: search lags writes."""
        found = self.api.find_call_by_external_id(key, timestamp)
        if found is not None:
            log.info("hubspot: adopted engagement %s for %s after an uncertain attempt", found, key)
            return found
        lag = self.settings.search_lag
        waited = time.time() - attempted_at
        if waited < lag:
            raise RetryLater(
                f"an earlier attempt to log {call_key} may have reached HubSpot; waiting "
                f"for search to show it ({lag - waited:.0f} s left)",
                retry_after=max(1.0, lag - waited),
            )
        return None

    def _known_targets(self, record: CallRecord) -> list[tuple[str, str]]:
        contact = record.contact_for(self.name)
        return [("contacts", contact.record_id)] if contact and not contact.ambiguous else []


#: What the ``callbridge`` entry point names: the class, so that each load of the plugin
#: manager gets a fresh instance (its caches, client and ledger) rather than shared state.
plugin = HubSpotPlugin
