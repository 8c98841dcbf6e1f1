"""The Pipedrive connector as a callbridge plugin (``callbridge_pipedrive.plugin:plugin``).

It finds callers among persons (``lookup_contact``, their organisation as the related record)
and writes one call log per finished call (``log_call``). All Pipedrive traffic goes through
``PipedriveApi``; what a call log contains is in ``calllog``; how exactly-once holds without
an external id on call logs is in ``log_call``.
"""

from __future__ import annotations

import logging
import os
from typing import TYPE_CHECKING, Any

from callbridge import (
    MISSING,
    ActivityLedger,
    ActivityRef,
    Call,
    CallRecord,
    ConfigurationError,
    Contact,
    Direction,
    LazyLedger,
    PermanentError,
    PluginError,
    TTLCache,
    agent_keys,
    digits,
    email_keys,
    hookimpl,
    is_extension,
    national_digits,
    same_number,
    to_e164,
)

from . import calllog
from .api import PipedriveApi, PipedriveUncertain
from .settings import PipedriveSettings

if TYPE_CHECKING:
    from callbridge import Context, Settings

log = logging.getLogger(__name__)

LEDGER_FILE = "pipedrive-calllogs.sqlite3"
#: CRM context record types (as an agent page or API client sends them) -> call log field.
CONTEXT_FIELDS: dict[str, str] = {
    "person": "person_id", "persons": "person_id", "contact": "person_id",
    "deal": "deal_id", "deals": "deal_id",
    "organization": "org_id", "organizations": "org_id", "org": "org_id",
}  # fmt: skip
#: Record types -> the path of their page in Pipedrive's web app.
PAGES = {"person": "person", "deal": "deal", "organization": "organization"}
#: The ledger note kept while the users API refuses us.
_USER_NOTE = "users"
_REFUSED = object()


class PipedrivePlugin:
    """One configured Pipedrive company."""

    name = "pipedrive"
    settings_class = PipedriveSettings

    def __init__(self) -> None:
        self._settings: PipedriveSettings | None = None
        self._api: PipedriveApi | None = None
        self._ledger = LazyLedger(LEDGER_FILE)
        self._users: TTLCache[str, object] = TTLCache(10_000)
        #: person id -> organisation id, as the search showed it (saves a read per call).
        self._orgs: TTLCache[str, str | None] = TTLCache(10_000)
        self._region = "IT"

    def __repr__(self) -> str:
        state = "configured" if self._settings is not None else "not configured"
        return f"PipedrivePlugin({state})"

    # -- configuration --------------------------------------------------------------------

    def configure(self, settings: PipedriveSettings, core: Settings | None = None) -> None:
        """Receive validated settings; no network here (start-up must not wait on Pipedrive)."""
        self._settings = settings
        self._api = PipedriveApi(settings)
        region = settings.default_region or (core.default_region if core else None)
        self._region = region or os.environ.get("CALLBRIDGE_DEFAULT_REGION", "").upper() or "IT"
        self._ledger.place(settings.data_dir, core.data_dir if core is not None else None)

    @property
    def settings(self) -> PipedriveSettings:
        """The settings, or a ConfigurationError naming the variables when unconfigured."""
        if self._settings is None:
            raise ConfigurationError("CALLBRIDGE_PIPEDRIVE_COMPANY_DOMAIN is not set")
        return self._settings

    @property
    def api(self) -> PipedriveApi:
        """The API client (built by ``configure``)."""
        if self._api is None:
            raise ConfigurationError("CALLBRIDGE_PIPEDRIVE_COMPANY_DOMAIN is not set")
        return self._api

    @property
    def lookup_cache_ttl(self) -> float | None:
        """Seconds the core caches a person found here (``LOOKUP_CACHE_TTL``)."""
        return self._settings.lookup_cache_ttl if self._settings is not None else None

    @property
    def lookup_negative_ttl(self) -> float | None:
        """Seconds the core caches a "not found" here (``LOOKUP_NEGATIVE_TTL``)."""
        return self._settings.lookup_negative_ttl if self._settings is not None else None

    def ledger(self) -> ActivityLedger:
        """The call-log ledger, opened on first use in the data directory."""
        return self._ledger.open()

    # -- lifecycle hooks -------------------------------------------------------------------

    @hookimpl
    def startup(self, context: Context) -> None:
        """Adopt the core's data dir and region unless the connector's own settings set them."""
        if self._settings is None:
            return
        self._ledger.place(self._settings.data_dir, context.settings.data_dir)
        if self._settings.default_region is None:
            self._region = context.settings.default_region

    @hookimpl
    def shutdown(self, context: Context) -> None:
        """Close the ledger and the connection pool."""
        self._ledger.close()
        if self._api is not None:
            self._api.close()

    def notes(self) -> list[str]:
        """What the operator should know (shown by ``callbridge plugins``), from the ledger."""
        return self._ledger.notes()

    # -- lookup ----------------------------------------------------------------------------

    def record_url(self, record_id: str, record_type: str = "person") -> str:
        """``https://<company>.pipedrive.com/person/<id>`` (or ``/deal/``, ``/organization/``)."""
        return f"{self.settings.web_url}/{PAGES.get(record_type, record_type)}/{record_id}"

    def _contact(self, person: dict[str, Any]) -> Contact:
        person_id = str(person["id"])
        org = person.get("organization") or {}
        owner = person.get("owner") or {}
        return Contact(
            connector=self.name,
            record_type="person",
            record_id=person_id,
            name=str(person.get("name") or "").strip() or f"Person {person_id}",
            company=(org.get("name") or None) if isinstance(org, dict) else None,
            url=self.record_url(person_id),
            owner_id=str(owner["id"]) if isinstance(owner, dict) and owner.get("id") else None,
            numbers=[str(p) for p in person.get("phones") or [] if p],
        )

    def _matches(self, items: list[dict[str, Any]], number: str) -> list[dict[str, Any]]:
        """The persons with a phone that is ``number`` (search results are only candidates)."""
        found: dict[str, dict[str, Any]] = {}
        for item in items:
            phones = [str(p) for p in item.get("phones") or []]
            if item.get("id") and any(same_number(p, number, self._region) for p in phones):
                found.setdefault(str(item["id"]), item)
        return list(found.values())

    @hookimpl
    def lookup_contact(self, number: str, call: Call) -> Contact | None:
        """Persons whose phone is ``number``: one contact, an ambiguous one, or None.

        First an exact search on the E.164 form; when that finds nobody, a partial search on
        the national digits (numbers stored as ``06 1234 5678`` or ``+39 06 ...``). Either
        way each result is confirmed by comparing its numbers with ours.
        """
        if not digits(number) or is_extension(number):
            return None
        e164 = to_e164(number, self._region) or number
        persons = self._matches(self.api.search_persons(e164, exact=True), number)
        if not persons:
            national = national_digits(number, self._region)
            if len(national) >= 2:
                persons = self._matches(self.api.search_persons(national, exact=False), number)
        for person in persons:
            org = person.get("organization") or {}
            org_id = org.get("id") if isinstance(org, dict) else None
            self._orgs.set(str(person["id"]), str(org_id) if org_id else None, 3600.0)
        if not persons:
            return None
        contacts = [self._contact(p) for p in persons]
        if len(contacts) == 1:
            return contacts[0]
        return contacts[0].model_copy(
            update={"name": f"{len(contacts)} persons match", "candidates": contacts}
        )

    # -- users -----------------------------------------------------------------------------

    def user_for(self, call: Call) -> str | None:
        """The Pipedrive user of the agent: explicit map, then e-mail via the users API."""
        settings = self.settings
        present = agent_keys(call)
        for key in present:
            if key in settings.users:
                return settings.users[key]
        emails = [settings.user_emails[k] for k in present if k in settings.user_emails]
        if settings.user_from_user_email:
            emails += email_keys(present)
        for email in emails:
            cached = self._users.get(email.lower())
            if cached is MISSING:
                cached = self._user_lookup(email)
                self._users.set(email.lower(), cached, settings.user_cache_ttl)
            if isinstance(cached, str):
                return cached
        return None

    def _user_lookup(self, email: str) -> object:
        """The user id for ``email``, None, or ``_REFUSED`` when Pipedrive refuses the lookup.

        The user only enriches the call log: a refusal (the token's user may not list users)
        is noted once for ``callbridge plugins`` and the log is written without it; a passing
        failure (429, 5xx) is raised, and the delivery is retried with it.
        """
        try:
            found = self.api.find_user_id(email)
        except PermanentError as exc:
            note = f"user lookup refused, call logs are written for the token's user: {exc}"
            if self.ledger().set_note(_USER_NOTE, note):
                log.warning("pipedrive: %s", note)
            return _REFUSED
        self.ledger().clear_note(_USER_NOTE)
        return found

    # -- activities ------------------------------------------------------------------------

    def _links(self, record: CallRecord) -> dict[str, str | None]:
        """person_id, org_id and deal_id of the call log: the clicked record, the found person."""
        links: dict[str, str | None] = {"person_id": None, "org_id": None, "deal_id": None}
        context = record.call.crm_context
        if context is not None and context.connector == self.name:
            field = CONTEXT_FIELDS.get(context.record_type.lower())
            if field and context.record_id.isdigit():
                links[field] = context.record_id
            else:
                log.warning(
                    "pipedrive: ignoring CRM context %s/%s", context.record_type, context.record_id
                )
        contact = record.contact_for(self.name)
        if links["person_id"] is None and contact is not None and not contact.ambiguous:
            links["person_id"] = contact.record_id
        if links["person_id"] and links["org_id"] is None:
            links["org_id"] = self._org_of(links["person_id"])
        return links

    def _org_of(self, person_id: str) -> str | None:
        cached = self._orgs.get(person_id)
        if cached is not MISSING:
            return cached if isinstance(cached, str) else None
        try:
            person = self.api.get_person(person_id)
        except PermanentError as exc:  # deleted since the lookup: log without the org
            log.warning("pipedrive: person %s not readable: %s", person_id, exc)
            return None
        org_id = person.get("org_id")
        found = str(org_id) if org_id else None
        self._orgs.set(person_id, found, 3600.0)
        return found

    def _ref(self, log_id: str, person_id: str | None) -> ActivityRef:
        url = self.record_url(person_id) if person_id else None
        return ActivityRef(connector=self.name, record_type="call_log", record_id=log_id, url=url)

    @hookimpl
    def log_call(self, record: CallRecord) -> ActivityRef | None:
        """Write the call log exactly once (see docs/connectors/pipedrive.md).

        Pipedrive's call logs have no external id, so the ledger carries exactly-once:
        1. The ledger says ``written``: done, nothing is sent.
        2. It says ``pending`` (an earlier attempt may have reached Pipedrive without us
           learning the id): the newest call logs are read; one whose note holds our key and
           whose start is this call's is adopted (issue 17: never another call's).
        3. Mark ``pending`` (durably), create, mark ``written``. When Pipedrive answered an
           error (nothing was created) the mark is cleared at once.
        """
        call = record.call
        if call.direction is Direction.INTERNAL:
            return None
        ledger = self.ledger()
        key, entry = ledger.entry_for(record, self.name)
        signature = record.signature
        if entry is not None and entry.state == "written" and entry.engagement_id:
            contact = record.contact_for(self.name)
            person = contact.record_id if contact and not contact.ambiguous else None
            return self._ref(entry.engagement_id, person)  # no request at all
        links = self._links(record)
        payload = calllog.body(record, key=key, user_id=self.user_for(call), **links)
        if entry is not None and entry.state == "pending":
            found = self._adopt(key, payload["start_time"])
            if found is not None:
                ledger.mark_written(key, found, signature=signature)
                return self._ref(found, links["person_id"])
        ledger.mark_pending(key, signature=signature)
        try:
            log_id = self.api.create_call_log(payload)
        except PipedriveUncertain:
            raise
        except PluginError:
            ledger.mark_clear(key)
            raise
        ledger.mark_written(key, log_id, signature=signature)
        return self._ref(log_id, links["person_id"])

    def _adopt(self, key: str, start_time: str) -> str | None:
        """The call log an uncertain earlier attempt created: our key in its note and this
        call's start; None when the newest ``adoption_window`` logs hold none."""
        for entry in self.api.recent_call_logs(self.settings.adoption_window):
            if calllog.holds_key(entry, key) and entry.get("start_time") == start_time:
                log.info("pipedrive: adopted call log %s for %s", entry.get("id"), key)
                return str(entry["id"])
        return None


#: What the ``callbridge`` entry point names: the class, so that each load of the plugin
#: manager gets a fresh instance (its caches, client and ledger) rather than shared state.
plugin = PipedrivePlugin
