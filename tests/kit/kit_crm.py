"""A small CRM over real HTTP and a connector for it: the kit's own connector under test.

The server keeps contacts by E.164 number and activities by idempotency key (PUT is an
upsert, like Salesforce's external-id upsert), checks a bearer token, and can be told to
answer every request with a given status, so ``ConnectorTests`` can drive both failure kinds.
"""

from __future__ import annotations

import logging
from typing import Any
from urllib.parse import unquote

import httpx
from pydantic import SecretStr
from pydantic_settings import SettingsConfigDict

from callbridge.errors import PermanentError, RetryLater
from callbridge.hookspecs import hookimpl
from callbridge.models import ActivityRef, Call, CallRecord, Contact
from callbridge.plugins.base import PluginSettings
from callbridge.testing import CrmRefusal, FakeAnswer, FakeHttpService, FakeRequest

log = logging.getLogger("kit_crm")
TOKEN = "kit-crm-token-0123456789"


class KitCrm(FakeHttpService):
    """The server: ``start()``, ``url``, ``fail_with(status)``, ``activities``."""

    def __init__(self) -> None:
        super().__init__()
        self.contacts: dict[str, dict[str, Any]] = {
            "+390612345678": {"id": "C-1", "name": "Mario Rossi", "company": "ACME"}
        }
        self.activities: dict[str, dict[str, Any]] = {}
        self.status: int | None = None

    def route(self, request: FakeRequest) -> FakeAnswer:
        if request.headers.get("authorization") != f"Bearer {TOKEN}":
            raise CrmRefusal(401, {"error": "bad token"})
        if self.status is not None:
            raise CrmRefusal(self.status, {"error": "told to fail"})
        if request.method == "GET":
            found = self.contacts.get(request.arg("phone"))
            return FakeAnswer(200, [found] if found else [])
        if request.method == "PUT" and request.path.startswith("/activities/"):
            key = unquote(request.path.rsplit("/", 1)[-1])
            with self.lock:
                created = key not in self.activities
                self.activities[key] = request.body or {}
            return FakeAnswer(201 if created else 200, {"id": "A-" + str(abs(hash(key)) % 10**6)})
        raise CrmRefusal(404, {"error": f"no route for {request.line}"})


class KitCrmSettings(PluginSettings):
    """``CALLBRIDGE_KITCRM_*``."""

    model_config = SettingsConfigDict(env_prefix="CALLBRIDGE_KITCRM_")

    #: Base URL of the CRM API.
    url: str
    #: Bearer token.
    token: SecretStr
    #: Seconds per request.
    timeout: float = 5.0


class KitCrmPlugin:
    """Looks contacts up and upserts one activity per call key."""

    name = "kitcrm"
    settings_class = KitCrmSettings

    def __init__(self) -> None:
        self.settings: KitCrmSettings | None = None

    def configure(self, settings: KitCrmSettings) -> None:
        self.settings = settings

    def _request(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        assert self.settings is not None
        headers = {"Authorization": f"Bearer {self.settings.token.get_secret_value()}"}
        log.debug("%s %s", method, path)
        try:
            response = httpx.request(
                method,
                self.settings.url + path,
                headers=headers,
                timeout=self.settings.timeout,
                **kwargs,
            )
        except httpx.HTTPError as exc:
            raise RetryLater(f"CRM unreachable: {type(exc).__name__}") from None
        if response.status_code == 429 or response.status_code >= 500:
            raise RetryLater(f"CRM answered {response.status_code}")
        if response.status_code >= 400:
            raise PermanentError(f"CRM refused the request: {response.status_code}")
        return response

    @hookimpl
    def lookup_contact(self, number: str, call: Call) -> Contact | None:
        rows = self._request("GET", "/contacts", params={"phone": number}).json()
        if not rows:
            return None
        row = rows[0]
        return Contact(
            record_id=row["id"],
            name=row["name"],
            company=row.get("company"),
            url=f"https://crm.example/contacts/{row['id']}",
            numbers=[number],
        )

    @hookimpl
    def log_call(self, record: CallRecord) -> ActivityRef:
        key = record.idempotency_key(self.name)
        body = {"outcome": str(record.call.outcome), "duration": record.duration_s}
        answer = self._request("PUT", f"/activities/{key}", json=body).json()
        return ActivityRef(record_type="Activity", record_id=answer["id"])
