"""A local Zoho CRM over HTTPS: the accounts server's token endpoint and the CRM REST API.

Built from Zoho's API reference (OAuth self-client tokens, Search Records, Get Record,
Upsert Records, Users, Organization; the facts are copied here): the ``Authorization:
Zoho-oauthtoken`` header, ``{"data": [...]}`` answers, 204 for a search without results, the
error object ``{"code", "details", "message", "status": "error"}`` (``INVALID_TOKEN``,
``AUTHENTICATION_FAILURE``, ``INVALID_QUERY``, ``MANDATORY_NOT_FOUND``, ``INVALID_DATA``,
``TOO_MANY_REQUESTS``), the token endpoint's own error form (``{"error": "invalid_code"}``
with HTTP 200). Search ``criteria`` is parsed (at most ten conditions, ``\\`` escapes) and
compares a field's text as stored, as Zoho does. The Calls module checks what Zoho checks
(required fields, picklists, ``mm:ss`` durations, ISO times with an offset, related records
that exist, a unique custom field for ``duplicate_check_fields``).

Access tokens expire (``token_lifetime``) or can be revoked; new Calls can be kept out of
search (``hold_index``) as Zoho's index lags behind writes; the kit's ``FakeCrm`` adds the
request log and the injected faults.
"""

from __future__ import annotations

import re
import secrets
import time
from datetime import UTC, datetime
from typing import Any

from callbridge.testing import CrmRefusal, FakeAnswer, FakeCrm, FakeRequest

CLIENT_ID = "1000.SELFCLIENT0123456789ABCDEF"
CLIENT_SECRET = "zoho-client-secret-0123456789abcdef"
REFRESH_TOKEN = "1000.refresh0123456789abcdef.fedcba9876543210"
ORG_ZGID = "20071234"

CALL_TYPES = {"Inbound", "Outbound", "Missed"}
OUTGOING_STATUSES = {"Completed", "Scheduled", "Overdue", "Cancelled", "Attended Dialled"}
CALL_RESULTS = {"Interested", "Not interested", "No response", "Busy", "Requested more info"}
CALL_FIELDS = {
    "Subject", "Call_Type", "Call_Start_Time", "Call_Duration", "Description", "Call_Result",
    "Call_Purpose", "Call_Agenda", "Outgoing_Call_Status", "Dialled_Number", "Caller_ID",
    "Owner", "Who_Id", "What_Id", "$se_module", "Reminder",
}  # fmt: skip
#: Fields of each module (API names) that search criteria may name.
MODULE_FIELDS: dict[str, set[str]] = {
    "Contacts": {"First_Name", "Last_Name", "Full_Name", "Email", "Phone", "Mobile",
                 "Home_Phone", "Other_Phone", "Account_Name", "Owner"},
    "Leads": {"First_Name", "Last_Name", "Full_Name", "Email", "Phone", "Mobile", "Company",
              "Owner"},
    "Accounts": {"Account_Name", "Phone", "Owner"},
    "Deals": {"Deal_Name", "Account_Name", "Owner"},
    "Calls": CALL_FIELDS,
}  # fmt: skip
RELATED_MODULES = {"Accounts", "Leads", "Deals"}
START_TIME = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d[+-]\d\d:\d\d$")
DURATION = re.compile(r"^\d{2,}:[0-5]\d$")
MAX_CONDITIONS = 10


def zoho_error(code: str, message: str, details: dict[str, Any] | None = None) -> dict[str, Any]:
    """Zoho's error object."""
    return {"code": code, "details": details or {}, "message": message, "status": "error"}


def refuse(status: int, code: str, message: str, **details: Any) -> CrmRefusal:
    return CrmRefusal(status, zoho_error(code, message, details))


def record_error(code: str, message: str, **details: Any) -> CrmRefusal:
    """A refused record: HTTP 400 with the result in ``data``."""
    return CrmRefusal(400, {"data": [zoho_error(code, message, details)]})


# -- criteria ----------------------------------------------------------------------------------

Node = tuple[Any, ...]


def parse_criteria(text: str) -> Node:
    """``(F:op:V)``, ``((..)or(..))``, ``((..)and(..))`` with ``\\`` escapes, as a tree."""
    node, end = _group(text.strip(), 0)
    if end != len(text.strip()):
        raise ValueError("text after the criteria")
    return node


def _group(text: str, i: int) -> tuple[Node, int]:
    if i >= len(text) or text[i] != "(":
        raise ValueError("a group starts with (")
    if text[i + 1 : i + 2] == "(":
        parts: list[Node] = []
        joins: set[str] = set()
        i += 1
        while True:
            node, i = _group(text, i)
            parts.append(node)
            if text[i : i + 1] == ")":
                break
            word = re.match(r"\s*(and|or)\s*", text[i:], re.IGNORECASE)
            if word is None:
                raise ValueError("and/or between groups")
            joins.add(word.group(1).lower())
            i += word.end()
        if len(joins) > 1:
            raise ValueError("mixed and/or without brackets")
        return (joins.pop() if joins else "and", parts), i + 1
    chars: list[str] = []
    escaped: list[bool] = []
    i += 1
    while i < len(text):
        char = text[i]
        if char == "\\" and i + 1 < len(text):
            chars.append(text[i + 1])
            escaped.append(True)
            i += 2
            continue
        if char == "(":
            raise ValueError("unescaped ( in a value")
        if char == ")":
            break
        chars.append(char)
        escaped.append(False)
        i += 1
    else:
        raise ValueError("unclosed group")
    colons = [n for n, (c, e) in enumerate(zip(chars, escaped, strict=True)) if c == ":" and not e]
    if len(colons) < 2:
        raise ValueError("a condition is field:operator:value")
    field = "".join(chars[: colons[0]])
    operator = "".join(chars[colons[0] + 1 : colons[1]])
    value = "".join(chars[colons[1] + 1 :])
    return ("cond", field, operator, value), i + 1


def conditions(node: Node) -> list[Node]:
    return [node] if node[0] == "cond" else [c for n in node[1] for c in conditions(n)]


def _text(value: Any) -> str:
    if isinstance(value, dict):
        return str(value.get("name") or value.get("id") or "")
    return "" if value is None else str(value)


def matches(node: Node, record: dict[str, Any]) -> bool:
    if node[0] == "cond":
        _, field, operator, value = node
        stored = _text(record.get(field)).lower()
        if operator == "equals":
            return stored == value.lower()
        return stored.startswith(value.lower())
    results = [matches(n, record) for n in node[1]]
    return any(results) if node[0] == "or" else all(results)


# -- the fake ----------------------------------------------------------------------------------


class FakeZoho(FakeCrm):
    """A Zoho CRM organisation with its accounts server, on one local port."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.records: dict[str, dict[str, dict[str, Any]]] = {m: {} for m in MODULE_FIELDS}
        self.users: list[dict[str, Any]] = []
        #: Unique custom fields of Calls (what ``duplicate_check_fields`` may name).
        self.unique_call_fields: set[str] = {"Callbridge_Key"}
        self.tokens: dict[str, float] = {}
        self.token_lifetime = 3600
        self.hold_index = False
        self.indexed: set[str] = set()
        self._next = 4_876_876_000_000_100_000

    # -- set-up ----------------------------------------------------------------------------

    def new_id(self) -> str:
        with self.lock:
            self._next += 1
            return str(self._next)

    def add(self, module: str, **fields: Any) -> str:
        """A record of ``module`` (Zoho computes Full_Name for people)."""
        with self.lock:
            record_id = self.new_id()
            record = {"id": record_id, **fields}
            if module in ("Contacts", "Leads"):
                names = (fields.get("First_Name"), fields.get("Last_Name"))
                record["Full_Name"] = " ".join(n for n in names if n)
            self.records[module][record_id] = record
            self.indexed.add(record_id)
            return record_id

    def add_user(self, email: str, full_name: str) -> str:
        with self.lock:
            user_id = self.new_id()
            self.users.append(
                {"id": user_id, "email": email, "full_name": full_name, "status": "active"}
            )
            return user_id

    def calls(self) -> list[dict[str, Any]]:
        with self.lock:
            return [dict(r) for r in self.records["Calls"].values()]

    def expire_tokens(self) -> None:
        """Every access token issued so far stops working (revoked, or expired early)."""
        with self.lock:
            self.tokens.clear()

    def release_index(self) -> None:
        with self.lock:
            self.hold_index = False
            self.indexed.update(self.records["Calls"])

    def rate_limit_next(self, match: str, times: int = 1, retry_after: str | None = None) -> None:
        body = zoho_error(
            "TOO_MANY_REQUESTS",
            "The number of API requests exceeded the allowed limit",
            {"allowed_concurrent_calls": 10},
        )
        headers = {"Retry-After": retry_after} if retry_after else None
        self.fail_next(match, 429, body, times, headers=headers)

    # -- routing ---------------------------------------------------------------------------

    def route(self, request: FakeRequest) -> FakeAnswer:
        if request.path == "/oauth/v2/token" and request.method == "POST":
            return self._token(request)
        found = re.fullmatch(r"/crm/v([2-8])/(.+)", request.path)
        if found is None:
            raise refuse(
                404,
                "INVALID_URL_PATTERN",
                "Please check if the URL trying to access is a correct one",
            )
        self._authorise(request)
        path = found.group(2)
        with self.lock:
            if path == "org" and request.method == "GET":
                return self._org()
            if path == "users" and request.method == "GET":
                return self._users(request)
            module, _, rest = path.partition("/")
            if module not in MODULE_FIELDS:
                raise refuse(400, "INVALID_MODULE", "the module name given seems to be invalid")
            if rest == "search" and request.method == "GET":
                return self._search(module, request)
            if rest == "upsert" and request.method == "POST":
                return self._upsert(module, request)
            if rest and request.method == "GET":
                return self._get(module, rest)
        raise refuse(
            404, "INVALID_URL_PATTERN", "Please check if the URL trying to access is a correct one"
        )

    def _token(self, request: FakeRequest) -> FakeAnswer:
        if request.arg("grant_type") != "refresh_token":
            return FakeAnswer(200, {"error": "unsupported_grant_type"})
        if request.arg("client_id") != CLIENT_ID or request.arg("client_secret") != CLIENT_SECRET:
            return FakeAnswer(200, {"error": "invalid_client"})
        if request.arg("refresh_token") != REFRESH_TOKEN:
            return FakeAnswer(200, {"error": "invalid_code"})
        token = f"1000.{secrets.token_hex(16)}.{secrets.token_hex(16)}"
        with self.lock:
            self.tokens[token] = time.monotonic() + self.token_lifetime
        return FakeAnswer(
            200,
            {
                "access_token": token,
                "scope": "ZohoCRM.modules.ALL ZohoCRM.users.READ ZohoCRM.org.READ",
                "api_domain": self.url,
                "token_type": "Bearer",
                "expires_in": self.token_lifetime,
            },
        )

    def _authorise(self, request: FakeRequest) -> None:
        header = request.headers.get("authorization", "")
        if not header.startswith("Zoho-oauthtoken "):
            raise refuse(401, "AUTHENTICATION_FAILURE", "Authentication failed")
        token = header.removeprefix("Zoho-oauthtoken ")
        with self.lock:
            expires = self.tokens.get(token)
        if expires is None or expires < time.monotonic():
            raise refuse(401, "INVALID_TOKEN", "invalid oauth token")

    def _org(self) -> FakeAnswer:
        org = {
            "id": "4876876000000017001", "zgid": ORG_ZGID, "domain_name": f"org{ORG_ZGID}",
            "company_name": "Acme S.r.l.", "time_zone": "Europe/Rome", "country_code": "IT",
        }  # fmt: skip
        return FakeAnswer(200, {"org": [org]})

    def _users(self, request: FakeRequest) -> FakeAnswer:
        kind = request.arg("type", "AllUsers")
        if kind not in {"AllUsers", "ActiveUsers", "DeactiveUsers", "AdminUsers", "CurrentUser"}:
            raise refuse(400, "INVALID_DATA", "invalid data", param_name="type")
        page, per_page = int(request.arg("page", "1")), int(request.arg("per_page", "200"))
        users = [u for u in self.users if kind != "ActiveUsers" or u["status"] == "active"]
        chunk = users[(page - 1) * per_page : page * per_page]
        if not chunk:
            return FakeAnswer(204)
        more = len(users) > page * per_page
        info = {"per_page": per_page, "count": len(chunk), "page": page, "more_records": more}
        return FakeAnswer(200, {"users": chunk, "info": info})

    def _search(self, module: str, request: FakeRequest) -> FakeAnswer:
        text = request.arg("criteria")
        if not text:
            raise refuse(400, "REQUIRED_PARAM_MISSING", "One of the expected parameter is missing",
                         param_name="criteria")  # fmt: skip
        try:
            tree = parse_criteria(text)
        except ValueError as exc:
            raise refuse(400, "INVALID_QUERY", "Invalid query formed", reason=str(exc)) from None
        found = conditions(tree)
        if len(found) > MAX_CONDITIONS:
            raise refuse(400, "INVALID_QUERY", "Invalid query formed",
                         reason=f"more than {MAX_CONDITIONS} conditions")  # fmt: skip
        fields = MODULE_FIELDS[module] | (self.unique_call_fields if module == "Calls" else set())
        for _, field, operator, _value in found:
            if field not in fields:
                raise refuse(400, "INVALID_QUERY", "Invalid query formed",
                             reason="invalid field", api_name=field)  # fmt: skip
            if operator not in {"equals", "starts_with"}:
                raise refuse(400, "INVALID_QUERY", "Invalid query formed",
                             reason="invalid operator", operator=operator)  # fmt: skip
        rows = [
            dict(r)
            for r in self.records[module].values()
            if r["id"] in self.indexed and matches(tree, r)
        ]
        if not rows:
            return FakeAnswer(204)
        info = {"per_page": 200, "count": len(rows), "page": 1, "more_records": False}
        return FakeAnswer(200, {"data": rows, "info": info})

    def _get(self, module: str, record_id: str) -> FakeAnswer:
        record = self.records[module].get(record_id)
        if record is None:
            return FakeAnswer(204)
        return FakeAnswer(200, {"data": [dict(record)]})

    # -- Calls -----------------------------------------------------------------------------

    def _upsert(self, module: str, request: FakeRequest) -> FakeAnswer:
        body = request.body
        if module != "Calls":
            raise refuse(400, "NOT_SUPPORTED", "this fake upserts only Calls")
        if not isinstance(body, dict) or not isinstance(body.get("data"), list):
            raise refuse(400, "INVALID_DATA", "body", api_name="data")
        data = body["data"]
        if not 1 <= len(data) <= 100:
            raise refuse(400, "LIMIT_EXCEEDED", "the number of records exceeds the limit")
        checks = body.get("duplicate_check_fields") or []
        for field in checks:
            if field not in self.unique_call_fields:
                raise refuse(400, "INVALID_DATA", "the field is not a unique field",
                             api_name="duplicate_check_fields", field=field)  # fmt: skip
        (record,) = data  # the connector writes one call a request
        self._check_call(record)
        existing = None
        for field in checks:
            for row in self.records["Calls"].values():
                if record.get(field) and row.get(field) == record[field]:
                    existing = row
        stamp = datetime.now(UTC).replace(microsecond=0).isoformat()
        if existing is not None:
            existing.update(record)
            existing["Modified_Time"] = stamp
            action, status, message = "update", 200, "record updated"
            record_id, duplicate = existing["id"], checks[0]
        else:
            record_id = self.new_id()
            self.records["Calls"][record_id] = {
                "id": record_id,
                **record,
                "Created_Time": stamp,
                "Modified_Time": stamp,
            }
            if not self.hold_index:
                self.indexed.add(record_id)
            action, status, message, duplicate = "insert", 201, "record added", None
        result = {
            "code": "SUCCESS",
            "duplicate_field": duplicate,
            "action": action,
            "details": {"Modified_Time": stamp, "Created_Time": stamp, "id": record_id},
            "message": message,
            "status": "success",
        }
        return FakeAnswer(status, {"data": [result]})

    def _check_call(self, record: Any) -> None:
        if not isinstance(record, dict):
            raise record_error("INVALID_DATA", "invalid data", api_name="data")
        known = CALL_FIELDS | self.unique_call_fields
        for field in record:
            if field not in known:
                raise record_error("INVALID_DATA", "invalid data", api_name=field)
        for field in ("Subject", "Call_Type", "Call_Start_Time"):
            if not record.get(field):
                raise record_error(
                    "MANDATORY_NOT_FOUND", "required field not found", api_name=field
                )
        kind = record["Call_Type"]
        if kind not in CALL_TYPES:
            raise record_error("INVALID_DATA", "invalid data", api_name="Call_Type")
        if not START_TIME.match(str(record["Call_Start_Time"])):
            raise record_error("INVALID_DATA", "invalid data", api_name="Call_Start_Time",
                               expected_data_type="datetime")  # fmt: skip
        if kind != "Missed" and not record.get("Call_Duration"):
            raise record_error("MANDATORY_NOT_FOUND", "required field not found",
                               api_name="Call_Duration")  # fmt: skip
        if "Call_Duration" in record and not DURATION.match(str(record["Call_Duration"])):
            raise record_error("INVALID_DATA", "invalid data", api_name="Call_Duration")
        if kind == "Outbound" and record.get("Outgoing_Call_Status") not in OUTGOING_STATUSES:
            raise record_error("INVALID_DATA", "invalid data", api_name="Outgoing_Call_Status")
        if "Call_Result" in record and record["Call_Result"] not in CALL_RESULTS:
            raise record_error("INVALID_DATA", "invalid data", api_name="Call_Result")
        for field in self.unique_call_fields:
            if field in record and (not isinstance(record[field], str) or len(record[field]) > 255):
                raise record_error("INVALID_DATA", "invalid data", api_name=field)
        self._check_lookup(record, "Who_Id", "Contacts")
        if "What_Id" in record:
            module = record.get("$se_module")
            if module not in RELATED_MODULES:
                raise record_error("INVALID_DATA", "invalid data", api_name="$se_module")
            self._check_lookup(record, "What_Id", module)
        elif "$se_module" in record:
            raise record_error(
                "MANDATORY_NOT_FOUND", "required field not found", api_name="What_Id"
            )
        if "Owner" in record:
            owner = record["Owner"]
            ids = {u["id"] for u in self.users}
            if not isinstance(owner, dict) or owner.get("id") not in ids:
                raise record_error("INVALID_DATA", "invalid data", api_name="Owner")

    def _check_lookup(self, record: dict[str, Any], field: str, module: str) -> None:
        if field not in record:
            return
        value = record[field]
        if not isinstance(value, dict) or value.get("id") not in self.records[module]:
            raise record_error("INVALID_DATA", "the related id given seems to be invalid",
                               api_name=field, expected_data_type="lookup")  # fmt: skip


def zoho_env(fake: FakeZoho) -> dict[str, str]:
    """The variables that point the connector at ``fake`` (its data centre: eu)."""
    return {
        "CALLBRIDGE_ZOHO_CLIENT_ID": CLIENT_ID,
        "CALLBRIDGE_ZOHO_CLIENT_SECRET": CLIENT_SECRET,
        "CALLBRIDGE_ZOHO_REFRESH_TOKEN": REFRESH_TOKEN,
        "CALLBRIDGE_ZOHO_DATA_CENTRE": "eu",
        "CALLBRIDGE_ZOHO_ACCOUNTS_URL": fake.url,
        "CALLBRIDGE_ZOHO_CRM_URL": "https://crm.zoho.eu",
        "CALLBRIDGE_ZOHO_DEFAULT_REGION": "IT",
        "CALLBRIDGE_ZOHO_TIMEOUT": "5",
    }
