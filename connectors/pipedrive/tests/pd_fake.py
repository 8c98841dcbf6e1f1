"""A local Pipedrive over HTTPS: the wire format and rules of the endpoints the connector uses.

Pipedrive publishes its API as OpenAPI documents; the npm package ``pipedrive`` (33.7.0, the
official client) is generated from them and ships their schemas as TypeScript types, not
the documents themselves. The rules below are copied from those types and from the API
reference (the tests never read either): ``AddCallLogRequest`` (required ``outcome``,
``to_phone_number``, ``start_time``, ``end_time``; the outcome enum; times as
``YYYY-MM-DD HH:MM:SS``; ``duration`` a string; ids integers; a deal or a lead, not both),
``ResponseCallLogObject`` (a string ``id``, ``has_recording``, ``company_id``), the v2 person
search (``term`` required, 2 characters or 1 with ``exact_match``; ``fields`` from its enum;
``limit`` up to 500; ``{"items": [{"result_score", "item"}]}``), and the error body
``{"success": false, "error", "error_info", "data": null, "additional_data": null}``.

Phone search: ``exact_match=true`` matches a stored phone equal to the term (not case
sensitive); without it, a stored phone whose digits contain the term's digits matches (our
model of Pipedrive's partial match; the connector confirms every hit itself).

It can misbehave on request: fail with any status and headers (429 with Pipedrive's
``x-ratelimit-*`` headers), or carry out a request and drop the connection unanswered.
"""

from __future__ import annotations

import base64
import re
import uuid
from datetime import UTC, datetime
from typing import Any

from callbridge.testing import FakeAnswer, FakeHttpService, FakeRequest, LocalCa

API_TOKEN = "pd-api-token-0123456789abcdef0123456789abcdef"
CLIENT_ID = "cb-client-id"
CLIENT_SECRET = "cb-client-secret-0123456789"
REFRESH_TOKEN = "pd-refresh-token-0123456789"
ERROR_INFO = "Please check developers.pipedrive.com for more information about Pipedrive API."
OUTCOMES = {"connected", "no_answer", "left_message", "left_voicemail", "wrong_number", "busy"}
SEARCH_FIELDS = {"custom_fields", "email", "notes", "phone", "name"}
CALL_LOG_FIELDS = {
    "outcome", "to_phone_number", "start_time", "end_time", "user_id", "activity_id",
    "subject", "duration", "from_phone_number", "person_id", "org_id", "deal_id", "lead_id",
    "note",
}  # fmt: skip
TIME = re.compile(r"^\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}$")
COMPANY_ID = 5551234
RATE_LIMIT_HEADERS = {"x-ratelimit-limit": "80", "x-ratelimit-remaining": "79"}


def error_body(error: str, **extra: Any) -> dict[str, Any]:
    """Pipedrive's error object."""
    return {
        "success": False, "error": error, "error_info": ERROR_INFO, "data": None,
        "additional_data": None, **extra,
    }  # fmt: skip


class ApiError(Exception):
    def __init__(self, status: int, body: dict[str, Any]) -> None:
        super().__init__(body.get("error"))
        self.status = status
        self.body = body


def bad_request(error: str) -> ApiError:
    return ApiError(400, error_body(error))


class FakePipedrive(FakeHttpService):
    """The state of the fake company and the faults to inject; thread-safe."""

    def __init__(self, ca: LocalCa) -> None:
        self.ca = ca
        super().__init__(ssl_context=ca.server_context("127.0.0.1", "localhost"))
        self.api_tokens = {API_TOKEN}
        self.access_tokens: set[str] = set()
        self.refresh_tokens = {REFRESH_TOKEN}
        self.refreshes = 0
        self.persons: dict[int, dict[str, Any]] = {}
        self.organizations: dict[int, str] = {}
        self.deals: set[int] = {7001}
        self.users: list[dict[str, Any]] = [{"id": 900, "name": "Token User", "email": "t@x.io"}]
        self.call_logs: dict[str, dict[str, Any]] = {}
        self._next_id = 100

    # -- set-up helpers -------------------------------------------------------------------

    def _new_id(self) -> int:
        with self.lock:
            self._next_id += 1
            return self._next_id

    def add_org(self, name: str) -> int:
        with self.lock:
            org_id = self._new_id()
            self.organizations[org_id] = name
            return org_id

    def add_person(self, name: str, *phones: str, org_id: int | None = None) -> int:
        with self.lock:
            pid = self._new_id()
            self.persons[pid] = {"name": name, "phones": list(phones), "org_id": org_id}
            return pid

    def add_user(self, email: str, name: str = "") -> int:
        with self.lock:
            uid = self._new_id()
            self.users.append({"id": uid, "name": name or email, "email": email})
            return uid

    def new_access_token(self) -> str:
        with self.lock:
            token = f"pd-access-{uuid.uuid4().hex}"
            self.access_tokens.add(token)
            return token

    def fault_body(self) -> dict[str, Any]:
        return error_body("Injected failure")

    def invalid_body(self, request: FakeRequest) -> FakeAnswer:
        return FakeAnswer(400, error_body("Invalid JSON body"))

    def logs_with(self, text: str) -> list[dict[str, Any]]:
        """The call logs whose note contains ``text``."""
        with self.lock:
            return [c for c in self.call_logs.values() if text in str(c.get("note") or "")]

    # -- server ---------------------------------------------------------------------------

    # -- authentication -------------------------------------------------------------------

    def authorised(self, headers: dict[str, str], query: dict[str, list[str]]) -> bool:
        token = headers.get("x-api-token") or (query.get("api_token") or [""])[0]
        if token:
            return token in self.api_tokens
        auth = headers.get("authorization", "")
        return auth.startswith("Bearer ") and auth[7:] in self.access_tokens

    def oauth_token(self, request: FakeRequest) -> dict[str, Any]:
        """``POST /oauth/token`` with ``grant_type=refresh_token`` and HTTP basic auth."""
        expected = base64.b64encode(f"{CLIENT_ID}:{CLIENT_SECRET}".encode()).decode()
        if request.headers.get("authorization") != f"Basic {expected}":
            raise ApiError(401, {"success": False, "error": "invalid_client"})
        form = request.body if isinstance(request.body, dict) else {}
        if form.get("grant_type") != "refresh_token":
            raise ApiError(400, {"success": False, "error": "unsupported_grant_type"})
        if form.get("refresh_token") not in self.refresh_tokens:
            raise ApiError(400, {"error": "invalid_grant", "error_description": "Invalid token"})
        self.refreshes += 1
        return {
            "access_token": self.new_access_token(), "token_type": "Bearer",
            "refresh_token": REFRESH_TOKEN, "scope": "base,contacts:read,phone-integration",
            "expires_in": 3599, "api_domain": "https://acme.pipedrive.com",
        }  # fmt: skip

    # -- routes ---------------------------------------------------------------------------

    def route(self, request: FakeRequest) -> FakeAnswer:
        """Authenticate (the OAuth token endpoint aside), answer in Pipedrive's envelope with
        its rate-limit headers."""
        try:
            with self.lock:
                if request.line == "POST /oauth/token":
                    status, answer = 200, self.oauth_token(request)
                elif not self.authorised(request.headers, request.query):
                    raise ApiError(401, error_body("unauthorized access", errorCode=401))
                else:
                    data = self.endpoint(request.method, request.path, request.query, request.body)
                    status = 201 if request.method == "POST" else 200
                    answer = {"success": True, "data": data}
        except ApiError as exc:
            status, answer = exc.status, exc.body
        return FakeAnswer(status, answer, dict(RATE_LIMIT_HEADERS))

    def endpoint(self, method: str, path: str, query: dict[str, list[str]], body: Any) -> Any:
        if method == "GET" and path == "/api/v2/persons/search":
            return self._search(query)
        match = re.fullmatch(r"/api/v2/persons/(\d+)", path)
        if method == "GET" and match:
            return self._person(int(match[1]))
        if method == "GET" and path == "/v1/users/find":
            term = (query.get("term") or [""])[0].lower()
            if not term:
                raise bad_request("term is required")
            by_email = (query.get("search_by_email") or ["0"])[0] in ("1", "true")
            key = "email" if by_email else "name"
            return [u for u in self.users if term in str(u[key]).lower()]
        if path == "/v1/callLogs" and method == "POST":
            return self._create_call_log(body)
        if path == "/v1/callLogs" and method == "GET":
            start = int((query.get("start") or ["0"])[0])
            limit = int((query.get("limit") or ["20"])[0])
            if limit > 50:
                raise bad_request("limit must be at most 50")  # GetCallLogs: max 50
            logs = sorted(self.call_logs.values(), key=lambda c: c["_seq"], reverse=True)
            return [_public(c) for c in logs[start : start + limit]]
        raise ApiError(404, error_body("Unknown method ."))

    def _search(self, query: dict[str, list[str]]) -> dict[str, Any]:
        term = (query.get("term") or [""])[0]
        exact = (query.get("exact_match") or ["false"])[0]
        if exact not in ("true", "false"):
            raise bad_request("exact_match must be a boolean")
        if len(term) < (1 if exact == "true" else 2):
            raise bad_request("Search term must be at least 2 characters long")
        fields = set((query.get("fields") or ["phone"])[0].split(","))
        if not fields <= SEARCH_FIELDS:
            raise bad_request(f"fields must be some of {sorted(SEARCH_FIELDS)}")
        if int((query.get("limit") or ["100"])[0]) > 500:
            raise bad_request("limit must be at most 500")
        items = []
        wanted = re.sub(r"\D", "", term)
        for pid, person in self.persons.items():
            phones = person["phones"] if "phone" in fields else []
            if exact == "true":
                hit = any(p.lower() == term.lower() for p in phones)
            else:
                hit = bool(wanted) and any(wanted in re.sub(r"\D", "", p) for p in phones)
            if hit:
                org = person["org_id"]
                items.append({"result_score": 1.0, "item": {
                    "id": pid, "type": "person", "name": person["name"],
                    "phones": list(person["phones"]), "emails": [], "visible_to": 3,
                    "owner": {"id": 900},
                    "organization": {"id": org, "name": self.organizations[org]} if org else None,
                    "custom_fields": [], "notes": [],
                }})  # fmt: skip
        return {"items": items}

    def _person(self, pid: int) -> dict[str, Any]:
        person = self.persons.get(pid)
        if person is None:
            raise ApiError(404, error_body("Person not found"))
        return {
            "id": pid, "name": person["name"], "org_id": person["org_id"], "owner_id": 900,
            "phones": [{"value": p, "primary": i == 0, "label": "work"}
                       for i, p in enumerate(person["phones"])],
        }  # fmt: skip

    def _create_call_log(self, body: Any) -> dict[str, Any]:
        if not isinstance(body, dict):
            raise bad_request("Request body must be a JSON object")
        unknown = set(body) - CALL_LOG_FIELDS
        if unknown:
            raise bad_request(f"Unknown parameters: {sorted(unknown)}")
        for name in ("outcome", "to_phone_number", "start_time", "end_time"):
            if not isinstance(body.get(name), str) or not body[name]:
                raise bad_request(f"{name} is required")
        if body["outcome"] not in OUTCOMES:
            raise bad_request(f"outcome must be one of {sorted(OUTCOMES)}")
        for name in ("start_time", "end_time"):
            if not TIME.match(body[name]):
                raise bad_request(f"{name} must be in the format YYYY-MM-DD HH:MM:SS")
        if body["end_time"] < body["start_time"]:
            raise bad_request("end_time must not be before start_time")
        if "duration" in body and not (
            isinstance(body["duration"], str) and body["duration"].isdigit()
        ):
            raise bad_request("duration must be a string of seconds")
        for name in ("user_id", "person_id", "org_id", "deal_id", "activity_id"):
            if name in body and not isinstance(body[name], int):
                raise bad_request(f"{name} must be an integer")
        if "deal_id" in body and "lead_id" in body:
            raise bad_request("A call log can be associated with either a deal or a lead")
        if "person_id" in body and body["person_id"] not in self.persons:
            raise ApiError(404, error_body("Person not found"))
        if "org_id" in body and body["org_id"] not in self.organizations:
            raise ApiError(404, error_body("Organization not found"))
        if "deal_id" in body and body["deal_id"] not in self.deals:
            raise ApiError(404, error_body("Deal not found"))
        if "user_id" in body and body["user_id"] not in {u["id"] for u in self.users}:
            raise ApiError(403, error_body("You don't have permission to log calls for others"))
        log_id = uuid.uuid4().hex[:24]
        seq = self._new_id()
        stored = {
            **body, "id": log_id, "has_recording": False, "company_id": COMPANY_ID,
            "user_id": body.get("user_id", 900), "_seq": seq,
        }  # fmt: skip
        self.call_logs[log_id] = stored
        return _public(stored)


def _public(log: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in log.items() if not k.startswith("_")}


def now_pipedrive() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%d %H:%M:%S")
