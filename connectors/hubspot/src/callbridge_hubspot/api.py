"""The HubSpot calls the connector makes, each one request, each mapped to callbridge errors.

One place owns the ``HubSpot`` client, the search pacing and the timeouts, so the lookup and
activity code above it never touches hubspot-api-client's types or exceptions. Search
requests (contacts and calls) wait for the token bucket; a 429 pauses the bucket for the
policy's window so that no worker keeps hammering while HubSpot is blocking us.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import httpx
from hubspot import HubSpot
from urllib3.util.retry import Retry

from .failures import HubSpotRateLimited, translate
from .pacing import TokenBucket
from .settings import HubSpotSettings

log = logging.getLogger(__name__)

#: hs_call to other objects, HubSpot-defined association type ids.
CALL_ASSOCIATION_TYPES: dict[str, int] = {
    "contacts": 194,
    "companies": 182,
    "deals": 206,
    "tickets": 220,
}

#: urllib3 may retry only what provably never reached HubSpot (connection errors); a POST
#: whose answer was lost is never replayed here, or a create could happen twice unseen.
_NO_REPLAY = Retry(total=2, connect=2, read=0, status=0, other=0, redirect=0, raise_on_status=False)


@dataclass(frozen=True)
class Record:
    """A CRM object as the search or create answer gave it."""

    id: str
    properties: dict[str, str | None]


@dataclass(frozen=True)
class AccountDetails:
    """What the account-info API says about the account (for record links)."""

    portal_id: str
    ui_domain: str


class HubSpotApi:
    """Thin, typed wrapper around hubspot-api-client for what callbridge needs."""

    def __init__(self, settings: HubSpotSettings, bucket: TokenBucket | None = None) -> None:
        self._settings = settings
        self._token = settings.access_token
        self.bucket = bucket or TokenBucket(settings.search_rate, settings.search_burst)
        self._timeout = (min(settings.timeout, 5.0), settings.timeout)
        self._client = HubSpot(
            access_token=settings.access_token.get_secret_value(),
            host=settings.api_host,
            retry=_NO_REPLAY,
        )
        self._lock = threading.Lock()
        self._account: AccountDetails | None = None

    def __repr__(self) -> str:
        return f"HubSpotApi(host={self._settings.api_host!r})"

    # -- searches (paced) ----------------------------------------------------------------

    def _paced(self, action: str, call: Any) -> Any:
        self.bucket.acquire()
        try:
            return call()
        except Exception as exc:
            error = translate(exc, action)
            if isinstance(error, HubSpotRateLimited) and error.retry_after:
                self.bucket.pause(error.retry_after)
            raise error from None

    def search_contacts(
        self, filter_groups: list[dict[str, Any]], properties: list[str], max_pages: int
    ) -> list[Record]:
        """Every contact matching any filter group, up to ``max_pages`` pages of 100."""
        found: list[Record] = []
        after: str | None = None
        for _ in range(max_pages):
            request: dict[str, Any] = {
                "filterGroups": filter_groups,
                "properties": properties,
                "limit": 100,
                "sorts": [],
            }
            if after:
                request["after"] = after
            page = self._paced(
                "search contacts",
                lambda r=request: self._client.crm.contacts.search_api.do_search(
                    public_object_search_request=r, _request_timeout=self._timeout
                ),
            )
            found += [Record(str(o.id), dict(o.properties or {})) for o in page.results or []]
            nxt = page.paging.next if page.paging else None
            after = nxt.after if nxt else None
            if not after:
                break
        return found

    def find_call_by_external_id(
        self, external_id: str, timestamp: str | None = None
    ) -> str | None:
        """The call engagement carrying ``hs_call_external_id``, if search shows it yet.

        ``timestamp`` (``hs_timestamp``): only an engagement of a call that started then is
        this call; one with the same key but another start is not adopted.
        """
        request = {
            "filterGroups": [
                {
                    "filters": [
                        {
                            "propertyName": "hs_call_external_id",
                            "operator": "EQ",
                            "value": external_id,
                        }
                    ]
                }
            ],
            "properties": ["hs_call_external_id", "hs_timestamp"],
            "limit": 10,
            "sorts": [],
        }
        page = self._paced(
            "search calls",
            lambda: self._client.crm.objects.calls.search_api.do_search(
                public_object_search_request=request, _request_timeout=self._timeout
            ),
        )
        ids = sorted(
            (
                str(o.id)
                for o in page.results or []
                if timestamp is None
                or _same_moment((o.properties or {}).get("hs_timestamp"), timestamp)
            ),
            key=_numeric,
        )
        return ids[0] if ids else None

    # -- writes --------------------------------------------------------------------------

    def _call(self, action: str, call: Any) -> Any:
        try:
            return call()
        except Exception as exc:
            raise translate(exc, action) from None

    def create_call(self, properties: dict[str, str], associations: list[tuple[str, str]]) -> str:
        """Create one call engagement with its associations; returns its id."""
        body = {
            "properties": properties,
            "associations": [
                {
                    "to": {"id": to_id},
                    "types": [
                        {
                            "associationCategory": "HUBSPOT_DEFINED",
                            "associationTypeId": CALL_ASSOCIATION_TYPES[to_type],
                        }
                    ],
                }
                for to_type, to_id in associations
            ],
        }
        result = self._call(
            "create a call engagement",
            lambda: self._client.crm.objects.calls.basic_api.create(
                simple_public_object_input_for_create=body, _request_timeout=self._timeout
            ),
        )
        return str(result.id)

    def upsert_call(self, properties: dict[str, str], id_property: str, key: str) -> str:
        """Create or update the call whose unique ``id_property`` is ``key``; returns its id."""
        body = {
            "inputs": [
                {
                    "id": key,
                    "idProperty": id_property,
                    "properties": {**properties, id_property: key},
                }
            ]
        }
        result = self._call(
            "upsert a call engagement",
            lambda: self._client.crm.objects.calls.batch_api.upsert(
                batch_input_simple_public_object_batch_input_upsert=body,
                _request_timeout=self._timeout,
            ),
        )
        errors = getattr(result, "errors", None) or []
        if errors:
            first = errors[0]
            from callbridge import PermanentError

            raise PermanentError(f"HubSpot refused the call upsert: {first.message}")
        return str(result.results[0].id)

    def associate_call(self, call_id: str, to_type: str, to_id: str) -> None:
        """Associate a call with a record (PUT: repeating it changes nothing)."""
        spec = [
            {
                "associationCategory": "HUBSPOT_DEFINED",
                "associationTypeId": CALL_ASSOCIATION_TYPES[to_type],
            }
        ]
        self._call(
            "associate the call engagement",
            lambda: self._client.crm.associations.v4.basic_api.create(
                object_type="calls",
                object_id=call_id,
                to_object_type=to_type,
                to_object_id=to_id,
                association_spec=spec,
                _request_timeout=self._timeout,
            ),
        )

    def create_contact(self, properties: dict[str, str]) -> str:
        """Create a contact (for unknown callers, when enabled)."""
        body = {"properties": properties, "associations": []}
        result = self._call(
            "create a contact",
            lambda: self._client.crm.contacts.basic_api.create(
                simple_public_object_input_for_create=body, _request_timeout=self._timeout
            ),
        )
        return str(result.id)

    # -- owners and account --------------------------------------------------------------

    def owner_id_for_email(self, email: str) -> str | None:
        """The owner id of the HubSpot user with this e-mail, or None."""
        page = self._call(
            "read owners",
            lambda: self._client.crm.owners.owners_api.get_page(
                email=email, limit=10, _request_timeout=self._timeout
            ),
        )
        for owner in page.results or []:
            if (owner.email or "").lower() == email.lower() and not owner.archived:
                return str(owner.id)
        return None

    def account(self) -> AccountDetails:
        """Portal id and UI domain from ``/account-info/v3/details`` (read once, cached)."""
        with self._lock:
            if self._account is not None:
                return self._account
        url = f"{self._settings.api_host}/account-info/v3/details"
        headers = {"Authorization": f"Bearer {self._token.get_secret_value()}"}
        started = time.monotonic()
        try:
            response = httpx.get(url, headers=headers, timeout=self._settings.timeout)
        except httpx.HTTPError as exc:
            raise translate(exc, "read the account details") from None
        if response.status_code != 200:
            raise _http_error(response, "read the account details")
        data = response.json()
        details = AccountDetails(str(data["portalId"]), str(data["uiDomain"]))
        log.debug("account details read in %.0f ms", (time.monotonic() - started) * 1000)
        with self._lock:
            self._account = details
        return details

    # -- calling extension settings (developer API key) ----------------------------------

    def calling_settings(self, app_id: int, api_key: str, body: dict[str, Any]) -> dict[str, Any]:
        """Create or update the app's calling extension settings; returns HubSpot's answer."""
        client = HubSpot(api_key=api_key, host=self._settings.api_host)
        settings_api = client.crm.extensions.calling.settings_api
        try:
            try:
                result = settings_api.create(app_id=app_id, settings_request=body)
            except Exception as exc:
                if getattr(exc, "status", None) != 409:
                    raise
                result = settings_api.update(app_id=app_id, settings_patch_request=body)
        except Exception as exc:
            raise translate(exc, "register the calling extension") from None
        answer: dict[str, Any] = result.to_dict()
        return answer


def _same_moment(found: object, expected: str) -> bool:
    """Whether two ISO times (or epoch milliseconds, as HubSpot may answer) are equal."""
    moments = []
    for value in (found, expected):
        text = str(value or "").strip()
        try:
            if text.isdigit():
                moments.append(datetime.fromtimestamp(int(text) / 1000, UTC))
            else:
                moments.append(datetime.fromisoformat(text.replace("Z", "+00:00")))
        except ValueError:
            return False
    return moments[0] == moments[1]


def _numeric(value: str) -> tuple[int, str]:
    return (int(value), value) if value.isdigit() else (1 << 62, value)


def _http_error(response: httpx.Response, action: str) -> Exception:
    from .failures import from_status

    try:
        body = response.json()
    except ValueError:
        body = {"message": response.text[:300]}
    return from_status(response.status_code, body if isinstance(body, dict) else {}, action)
