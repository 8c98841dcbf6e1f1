"""Every request to Zoho: OAuth tokens, the data centre's hosts, concurrency, error mapping.

Plain httpx rather than Zoho's SDK (``zohocrmsdk8-0``): the connector needs five endpoints
(token, search, upsert, users, org); the SDK brings its own token stores, a module-wide
initialisation with global state, a file or database for tokens and its own logger, and none
of that fits a plugin that lives beside others in one process and must map every failure to
``RetryLater`` or ``PermanentError`` itself. See docs/connectors/zoho.md.

Access tokens (an hour's life) are refreshed before they expire (``refresh_margin``) and
once more when Zoho answers 401 ``INVALID_TOKEN`` (revoked, or the clock lied); one thread
refreshes, the others wait for its token. At most ``max_concurrency`` requests run at once
(Zoho's concurrency limit answers 429 beyond it). Secrets never reach a message: errors
carry Zoho's ``code`` and ``message`` and what was tried, never a header or the token.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Mapping
from typing import Any

import httpx

from callbridge import PermanentError, PluginError, RetryLater, raise_for_crm_status

from .settings import ENV_PREFIX, ZohoSettings

log = logging.getLogger(__name__)

#: Hosts of each data centre: accounts server, API domain, CRM web address.
HOSTS: dict[str, tuple[str, str, str]] = {
    "com": ("https://accounts.zoho.com", "https://www.zohoapis.com", "https://crm.zoho.com"),
    "eu": ("https://accounts.zoho.eu", "https://www.zohoapis.eu", "https://crm.zoho.eu"),
    "in": ("https://accounts.zoho.in", "https://www.zohoapis.in", "https://crm.zoho.in"),
    "com.au": (
        "https://accounts.zoho.com.au",
        "https://www.zohoapis.com.au",
        "https://crm.zoho.com.au",
    ),
    "jp": ("https://accounts.zoho.jp", "https://www.zohoapis.jp", "https://crm.zoho.jp"),
    "ca": ("https://accounts.zohocloud.ca", "https://www.zohoapis.ca", "https://crm.zohocloud.ca"),
    "com.cn": (
        "https://accounts.zoho.com.cn",
        "https://www.zohoapis.com.cn",
        "https://crm.zoho.com.cn",
    ),
    "sa": ("https://accounts.zoho.sa", "https://www.zohoapis.sa", "https://crm.zoho.sa"),
    "uk": ("https://accounts.zoho.uk", "https://www.zohoapis.uk", "https://crm.zoho.uk"),
}

#: 401 codes after which a new access token may help (the others are configuration).
STALE_TOKEN_CODES = frozenset({"INVALID_TOKEN"})
#: Seconds to wait after a 5xx, a network failure, or Zoho's "too many token requests".
OUTAGE_WAIT = 5.0
TOKEN_THROTTLE_WAIT = 60.0


def describe(body: Mapping[str, Any]) -> str:
    """``CODE: message (details)`` from Zoho's error object (or a record's result in ``data``)."""
    entry: Mapping[str, Any] = body
    data = body.get("data")
    if isinstance(data, list) and data and isinstance(data[0], Mapping):
        entry = data[0]
    code = str(entry.get("code") or entry.get("error") or "no code")
    message = str(entry.get("message") or "").strip()
    details = entry.get("details")
    text = f"{code}: {message}" if message else code
    if isinstance(details, Mapping) and details:
        shown = ", ".join(f"{k}={v}" for k, v in details.items() if k != "id")
        if shown:
            text += f" ({shown})"
    return text


def _json(response: httpx.Response) -> dict[str, Any]:
    try:
        body = response.json()
    except ValueError:
        return {"message": response.text.strip()[:300]} if response.text.strip() else {}
    return body if isinstance(body, dict) else {}


def _stale(response: httpx.Response) -> bool:
    """Whether a 401 says the access token is no longer good (a new one may help)."""
    return str(_json(response).get("code")) in STALE_TOKEN_CODES


class ZohoApi:
    """The connector's one HTTP client; thread-safe."""

    def __init__(
        self,
        settings: ZohoSettings,
        *,
        clock: Callable[[], float] = time.monotonic,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self._settings = settings
        accounts, api, crm = HOSTS[settings.data_centre]
        self.accounts_url = settings.accounts_url or accounts
        self._api_url = settings.api_url
        self._default_api_url = api
        self.crm_url = settings.crm_url or crm
        self._clock = clock
        self._client = httpx.Client(timeout=settings.timeout, transport=transport)
        self._token_lock = threading.Lock()
        self._token: str | None = None
        self._expires_at = 0.0
        self._slots = threading.BoundedSemaphore(settings.max_concurrency)
        #: How many tokens this client fetched (shown in tests and the debug log).
        self.refreshes = 0

    def __repr__(self) -> str:
        return f"ZohoApi({self._settings.data_centre}, {self.api_url})"

    @property
    def api_url(self) -> str:
        """The API domain: configured, else the one the token answer named, else the DC's."""
        return self._api_url or self._default_api_url

    def close(self) -> None:
        """Close the connection pool."""
        self._client.close()

    # -- tokens ----------------------------------------------------------------------------

    def access_token(self) -> str:
        """A token valid for at least ``refresh_margin`` more seconds (refreshed if not)."""
        with self._token_lock:
            if self._token is None or self._clock() >= self._expires_at:
                self._refresh()
            assert self._token is not None
            return self._token

    def forget_token(self, token: str) -> None:
        """Zoho refused ``token``: the next request refreshes (unless another thread did)."""
        with self._token_lock:
            if self._token == token:
                self._token = None

    def _refresh(self) -> None:
        settings = self._settings
        form = {
            "grant_type": "refresh_token",
            "client_id": settings.client_id,
            "client_secret": settings.client_secret.get_secret_value(),
            "refresh_token": settings.refresh_token.get_secret_value(),
        }
        url = f"{self.accounts_url}/oauth/v2/token"
        try:
            response = self._client.post(url, data=form)
        except httpx.HTTPError as exc:
            raise RetryLater(
                f"could not reach Zoho's accounts server for a token: {type(exc).__name__}",
                retry_after=OUTAGE_WAIT,
            ) from None
        body = _json(response)
        token = body.get("access_token")
        if response.status_code == 200 and isinstance(token, str) and token:
            lifetime = float(body.get("expires_in") or body.get("expires_in_sec") or 3600)
            self._token = token
            self._expires_at = self._clock() + max(lifetime - settings.refresh_margin, 0.0)
            domain = body.get("api_domain")
            if not settings.api_url and isinstance(domain, str) and domain.startswith("https://"):
                self._api_url = domain.rstrip("/")
            self.refreshes += 1
            log.debug("zoho: new access token, valid %.0f s", lifetime)
            return
        raise self._token_error(response.status_code, body)

    def _token_error(self, status: int, body: Mapping[str, Any]) -> PluginError:
        error = str(body.get("error") or body.get("message") or f"HTTP {status}")
        if status >= 500 or status in (0, 408, 429):
            return RetryLater(f"Zoho's accounts server failed: {error}", retry_after=OUTAGE_WAIT)
        if "access denied" in error.lower() or "too many" in error.lower():
            return RetryLater(
                f"Zoho throttles token requests ({error})", retry_after=TOKEN_THROTTLE_WAIT
            )
        if error == "invalid_client":
            hint = f"{ENV_PREFIX}CLIENT_ID and {ENV_PREFIX}CLIENT_SECRET"
        else:
            hint = f"{ENV_PREFIX}REFRESH_TOKEN (and {ENV_PREFIX}DATA_CENTRE: a token is valid "
            hint += "only in its own data centre)"
        return PermanentError(
            f"Zoho refused the self-client's token request ({error}): check {hint}"
        )

    # -- requests --------------------------------------------------------------------------

    def request(
        self,
        method: str,
        path: str,
        action: str,
        *,
        params: Mapping[str, str] | None = None,
        json: Any = None,
    ) -> httpx.Response:
        """``/crm/v<N>/<path>`` with a valid token; a 2xx answer, or the callbridge error."""
        for attempt in (1, 2):
            token = self.access_token()
            url = f"{self.api_url}/crm/v{self._settings.api_version}/{path}"
            headers = {"Authorization": f"Zoho-oauthtoken {token}"}
            with self._slots:
                try:
                    response = self._client.request(
                        method, url, params=params, json=json, headers=headers
                    )
                except httpx.HTTPError as exc:
                    raise RetryLater(
                        f"could not reach Zoho to {action}: {type(exc).__name__}",
                        retry_after=OUTAGE_WAIT,
                    ) from None
            if attempt == 1 and response.status_code == 401 and _stale(response):
                log.info("zoho: access token refused (INVALID_TOKEN); refreshing it")
                self.forget_token(token)
                continue
            if response.is_success:
                return response
            self._raise(response, action)
        raise AssertionError("unreachable")  # pragma: no cover

    def _raise(self, response: httpx.Response, action: str) -> None:
        """Raise what Zoho's error answer means (RetryLater or PermanentError)."""
        status = response.status_code
        text = describe(_json(response))
        if status == 401:
            text += f": check the self-client's scopes and {ENV_PREFIX}REFRESH_TOKEN"
        retry_after: float | str | None = None
        if status == 429:
            retry_after = response.headers.get("Retry-After") or self._settings.rate_limit_wait
        elif status >= 500:
            retry_after = OUTAGE_WAIT
        raise_for_crm_status(status, f"Zoho refused to {action}: {text}", retry_after=retry_after)

    # -- endpoints -------------------------------------------------------------------------

    def search(self, module: str, criteria: str, fields: list[str]) -> list[dict[str, Any]]:
        """``GET /{module}/search?criteria=...``: the records (204, no match: none)."""
        params = {"criteria": criteria, "fields": ",".join(fields), "per_page": "50"}
        response = self.request("GET", f"{module}/search", f"search {module}", params=params)
        if response.status_code == 204 or not response.content:
            return []
        data = _json(response).get("data")
        return [r for r in data if isinstance(r, dict)] if isinstance(data, list) else []

    def get_record(self, module: str, record_id: str, fields: list[str]) -> dict[str, Any] | None:
        """``GET /{module}/{id}``: one record, or None when it is gone."""
        params = {"fields": ",".join(fields)}
        response = self.request(
            "GET", f"{module}/{record_id}", f"read {module} {record_id}", params=params
        )
        data = _json(response).get("data") if response.content else None
        if isinstance(data, list) and data and isinstance(data[0], dict):
            return data[0]
        return None

    def org(self) -> dict[str, Any]:
        """``GET /org``: the organisation's details (``domain_name``, ``zgid``, time zone)."""
        data = _json(self.request("GET", "org", "read the organisation")).get("org")
        if isinstance(data, list) and data and isinstance(data[0], dict):
            return data[0]
        raise PermanentError("Zoho's org API answered without an organisation")

    def user_id_for_email(self, email: str) -> str | None:
        """The active user with ``email`` (users API, every page), or None."""
        wanted = email.strip().lower()
        page = 1
        while True:
            params = {"type": "ActiveUsers", "page": str(page), "per_page": "200"}
            response = self.request("GET", "users", "list the users", params=params)
            if response.status_code == 204 or not response.content:
                return None
            body = _json(response)
            for user in body.get("users") or []:
                if isinstance(user, dict) and str(user.get("email", "")).lower() == wanted:
                    return str(user["id"])
            if not (body.get("info") or {}).get("more_records"):
                return None
            page += 1

    def upsert(self, module: str, record: dict[str, Any], key_field: str) -> str:
        """``POST /{module}/upsert`` on ``key_field``: the id of the record (new or found)."""
        payload = {"data": [record], "duplicate_check_fields": [key_field], "trigger": []}
        response = self.request("POST", f"{module}/upsert", f"write to {module}", json=payload)
        body = _json(response)
        data = body.get("data")
        entry = data[0] if isinstance(data, list) and data else {}
        if isinstance(entry, dict) and entry.get("status") == "success":
            details = entry.get("details") or {}
            if isinstance(details, dict) and details.get("id"):
                return str(details["id"])
        raise PermanentError(f"Zoho refused to write to {module}: {describe(body)}")
