"""Every request to Pipedrive, over httpx, and what its answers mean for a delivery.

Pipedrive wraps answers as ``{"success": true, "data": ..., "additional_data": ...}`` and
errors as ``{"success": false, "error": "...", "error_info": "..."}``. Statuses go through the
core's ``raise_for_crm_status``; a 429 waits for ``Retry-After`` (or ``x-ratelimit-reset``,
the seconds until Pipedrive's token budget refills). A 5xx or a lost answer leaves a create
*uncertain* (``PipedriveUncertain``): the plugin then looks for the call log before writing
it again. The credentials never reach a message: only Pipedrive's own error text does.
"""

from __future__ import annotations

import ssl
import threading
import time
from typing import Any

import httpx

from callbridge import PermanentError, PluginError, RetryLater, raise_for_crm_status

from .settings import PipedriveSettings

SERVER_ERROR_WAIT = 5.0
#: The most call logs ``GET /v1/callLogs`` returns at once.
CALL_LOG_PAGE = 50
#: Renew an OAuth access token this many seconds before Pipedrive says it expires.
REFRESH_MARGIN = 60.0


class PipedriveUncertain(RetryLater):
    """The request may or may not have been carried out (5xx, timeout, lost answer)."""


class PipedriveRateLimited(RetryLater):
    """A 429: nothing was done; ``retry_after`` from Pipedrive's headers."""


class PipedriveApi:
    """A thread-safe client of one Pipedrive company (API token or OAuth tokens)."""

    def __init__(self, settings: PipedriveSettings) -> None:
        from . import __version__

        self.settings = settings
        verify: ssl.SSLContext | bool = True
        if settings.ca_bundle:
            verify = ssl.create_default_context(cafile=str(settings.ca_bundle))
        self._client = httpx.Client(
            base_url=settings.base_url,
            timeout=settings.timeout,
            verify=verify,
            headers={
                "Accept": "application/json",
                "User-Agent": f"callbridge-pipedrive/{__version__}",
            },
        )
        self._lock = threading.Lock()
        #: One renewal at a time: workers that met the same 401 wait and reuse its token.
        self._refresh_lock = threading.Lock()
        self._access = settings.access_token.get_secret_value() if settings.access_token else ""
        self._refresh_token = (
            settings.refresh_token.get_secret_value() if settings.refresh_token else ""
        )
        self._expires_at: float | None = None

    def __repr__(self) -> str:
        mode = "oauth" if self.settings.uses_oauth else "api token"
        return f"PipedriveApi({self.settings.company_domain}, {mode})"

    def close(self) -> None:
        """Close the connection pool."""
        self._client.close()

    # -- authentication -------------------------------------------------------------------

    def _auth(self) -> tuple[dict[str, str], dict[str, str]]:
        """Headers and query parameters that carry the credential."""
        settings = self.settings
        if not settings.uses_oauth and settings.api_token is not None:
            token = settings.api_token.get_secret_value()
            if settings.token_in == "query":  # noqa: S105 - a place, not a secret
                return {}, {"api_token": token}
            return {"x-api-token": token}, {}
        with self._lock:
            expiring = self._expires_at is not None and time.time() > self._expires_at
        if expiring and self._refresh_token:
            self.refresh(self._access)
        with self._lock:
            return {"Authorization": f"Bearer {self._access}"}, {}

    def refresh(self, stale: str) -> None:
        """Renew the OAuth access token ``stale`` with the refresh token (Pipedrive may
        rotate it); nothing to do when another thread renewed it meanwhile."""
        with self._refresh_lock:
            with self._lock:
                if self._access != stale:
                    return
            self._renew()

    def _renew(self) -> None:
        settings = self.settings
        if not (self._refresh_token and settings.client_id and settings.client_secret):
            raise PermanentError(
                "Pipedrive refused the OAuth access token and there is no refresh token to "
                "renew it: set CALLBRIDGE_PIPEDRIVE_REFRESH_TOKEN, CLIENT_ID and CLIENT_SECRET"
            )
        try:
            response = self._client.post(
                settings.oauth_token_url,
                data={"grant_type": "refresh_token", "refresh_token": self._refresh_token},
                auth=(settings.client_id, settings.client_secret.get_secret_value()),
            )
        except httpx.HTTPError as exc:
            raise PipedriveUncertain(
                f"could not reach Pipedrive's OAuth server: {type(exc).__name__}",
                retry_after=SERVER_ERROR_WAIT,
            ) from None
        if response.status_code >= 300:
            body = _json(response)
            reason = body.get("error_description") or body.get("error") or "no reason given"
            raise_for_crm_status(
                response.status_code,
                f"Pipedrive refused to renew the access token ({reason}); renew the app's "
                "tokens and set CALLBRIDGE_PIPEDRIVE_ACCESS_TOKEN and REFRESH_TOKEN",
                retry_after=response.headers.get("Retry-After"),
            )
        body = _json(response)
        access = body.get("access_token")
        if not isinstance(access, str) or not access:
            raise PermanentError("Pipedrive's OAuth server answered without an access token")
        with self._lock:
            self._access = access
            rotated = body.get("refresh_token")
            if isinstance(rotated, str) and rotated:
                self._refresh_token = rotated
            expires = body.get("expires_in")
            self._expires_at = (
                time.time() + float(expires) - REFRESH_MARGIN
                if isinstance(expires, int | float)
                else None
            )

    # -- requests -------------------------------------------------------------------------

    def request(
        self,
        method: str,
        path: str,
        action: str,
        *,
        params: dict[str, Any] | None = None,
        json: dict[str, Any] | None = None,
    ) -> Any:
        """Send one request and return its ``data``; raise the core's errors otherwise.

        A 401 with OAuth renews the access token once and sends the request again.
        """
        response: httpx.Response | None = None
        for attempt in range(2):
            headers, auth_params = self._auth()
            used = self._access
            try:
                response = self._client.request(
                    method, path, params={**(params or {}), **auth_params}, json=json,
                    headers=headers,
                )  # fmt: skip
            except httpx.HTTPError as exc:
                raise PipedriveUncertain(
                    f"could not reach Pipedrive to {action}: {type(exc).__name__}",
                    retry_after=SERVER_ERROR_WAIT,
                ) from None
            renewable = self.settings.uses_oauth and bool(self._refresh_token)
            if response.status_code == 401 and renewable and attempt == 0:
                self.refresh(used)
                continue
            break
        assert response is not None
        body = _json(response)
        if response.status_code < 300 and body.get("success") is not False:
            return body.get("data")
        raise self._error(response, body, action)

    def _error(self, response: httpx.Response, body: dict[str, Any], action: str) -> PluginError:
        status = response.status_code if response.status_code >= 300 else 400
        error = str(body.get("error") or body.get("message") or "no message")[:300]
        text = f"Pipedrive refused to {action}: {error}"
        if status in (401, 403):
            variable = "ACCESS_TOKEN" if self.settings.uses_oauth else "API_TOKEN"
            text += (
                f". Check CALLBRIDGE_PIPEDRIVE_{variable} and that its user may do this "
                "(docs/connectors/pipedrive.md)"
            )
        retry_after: float | str | None = None
        if status == 429:
            retry_after = _rate_limit_wait(response.headers, self.settings.rate_limit_wait)
        elif status >= 500:
            retry_after = SERVER_ERROR_WAIT
        try:
            raise_for_crm_status(status, text, retry_after=retry_after)
        except RetryLater as exc:
            kind = PipedriveRateLimited if status == 429 else PipedriveUncertain
            return kind(str(exc), retry_after=exc.retry_after)
        except PermanentError as exc:
            return exc
        return PermanentError(text)  # pragma: no cover - raise_for_crm_status raised above

    # -- endpoints ------------------------------------------------------------------------

    def search_persons(self, term: str, *, exact: bool, limit: int = 50) -> list[dict[str, Any]]:
        """``GET /api/v2/persons/search`` on the phone fields: the ``item`` of each result."""
        data = self.request(
            "GET",
            "/api/v2/persons/search",
            "search persons by phone",
            params={
                "term": term, "fields": "phone", "exact_match": "true" if exact else "false",
                "limit": limit,
            },
        )  # fmt: skip
        items = (data or {}).get("items") or [] if isinstance(data, dict) else []
        return [i["item"] for i in items if isinstance(i, dict) and isinstance(i.get("item"), dict)]

    def get_person(self, person_id: str) -> dict[str, Any]:
        """``GET /api/v2/persons/{id}``."""
        data = self.request("GET", f"/api/v2/persons/{person_id}", "read a person")
        return data if isinstance(data, dict) else {}

    def find_user_id(self, email: str) -> str | None:
        """The id of the Pipedrive user with ``email`` (``GET /v1/users/find``), or None."""
        data = self.request(
            "GET", "/v1/users/find", "find a user by e-mail",
            params={"term": email, "search_by_email": 1},
        )  # fmt: skip
        for user in data or []:
            if isinstance(user, dict) and str(user.get("email", "")).lower() == email.lower():
                return str(user["id"])
        return None

    def create_call_log(self, body: dict[str, Any]) -> str:
        """``POST /v1/callLogs``: the new call log's id."""
        data = self.request("POST", "/v1/callLogs", "create a call log", json=body)
        if not isinstance(data, dict) or not data.get("id"):
            raise PipedriveUncertain("Pipedrive answered the call log without an id")
        return str(data["id"])

    def recent_call_logs(self, limit: int) -> list[dict[str, Any]]:
        """``GET /v1/callLogs``: the newest ``limit`` call logs, in pages of 50 (its most)."""
        found: list[dict[str, Any]] = []
        while len(found) < limit:
            size = min(CALL_LOG_PAGE, limit - len(found))
            data = self.request(
                "GET", "/v1/callLogs", "list call logs", params={"start": len(found), "limit": size}
            )
            page = [c for c in data or [] if isinstance(c, dict)]
            found += page
            if len(page) < size:
                break
        return found


def _json(response: httpx.Response) -> dict[str, Any]:
    try:
        body = response.json()
    except ValueError:
        return {"error": response.text.strip()[:300]} if response.text.strip() else {}
    return body if isinstance(body, dict) else {}


def _rate_limit_wait(headers: httpx.Headers, default: float) -> float | str:
    """``Retry-After``, else ``x-ratelimit-reset`` (seconds until the budget refills)."""
    if headers.get("Retry-After"):
        return headers["Retry-After"]
    reset = headers.get("x-ratelimit-reset")
    if reset:
        try:
            return max(float(reset), 1.0)
        except ValueError:
            pass
    return default
