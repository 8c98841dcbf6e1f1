"""A local Salesforce org over HTTPS that speaks the REST wire format simple-salesforce uses.

It serves what the connector touches: ``/services/data/vXX.X/search/`` (SOSL ``IN PHONE
FIELDS``), ``query/`` (simple SOQL), ``sobjects/<Object>/`` create, ``sobjects/Task/<field>/
<value>`` upsert (PATCH), the OAuth token endpoint (client credentials) and the SOAP login
(username + password). It refuses what the real API refuses, with the real error arrays:
INVALID_SESSION_ID (401), MALFORMED_QUERY for an unescaped SOSL reserved character,
INVALID_FIELD for unknown fields, restricted picklists, required fields, a WhatId with a Lead
WhoId (FIELD_INTEGRITY_EXCEPTION), create-only fields on update, unknown external-id fields.
Tests inject failures (rate limit, 5xx) with :meth:`FakeOrg.fail`.
"""

from __future__ import annotations

import base64
import itertools
import json
import re
import secrets
import ssl
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

import jwt

SOSL_RESERVED = set("&|!(){}[]^\"~*?:\\'+-")

#: Fields of each object: name -> (createable, updateable).
SCHEMA: dict[str, dict[str, tuple[bool, bool]]] = {
    "Task": {
        name: (True, name != "TaskSubtype")
        for name in [
            "Subject",
            "TaskSubtype",
            "CallType",
            "CallDurationInSeconds",
            "CallDisposition",
            "CallObject",
            "Status",
            "Priority",
            "ActivityDate",
            "Description",
            "WhoId",
            "WhatId",
            "OwnerId",
            "Type",
        ]
    },
    "Lead": {
        name: (True, True)
        for name in [
            "FirstName",
            "LastName",
            "Company",
            "Phone",
            "MobilePhone",
            "LeadSource",
            "Email",
            "OwnerId",
        ]
    },
    "Contact": {
        name: (True, True)
        for name in [
            "FirstName",
            "LastName",
            "Phone",
            "MobilePhone",
            "HomePhone",
            "OtherPhone",
            "AssistantPhone",
            "AccountId",
            "Email",
            "OwnerId",
        ]
    },
    "Account": {name: (True, True) for name in ["Name", "Phone", "OwnerId"]},
    "Opportunity": {name: (True, True) for name in ["Name", "AccountId", "OwnerId"]},
    "User": {name: (False, False) for name in ["Username", "Extension", "IsActive"]},
    "Organization": {name: (False, False) for name in ["TimeZoneSidKey"]},
}
#: Text field lengths: a longer value is refused with STRING_TOO_LONG.
LENGTHS = {
    ("Task", "Subject"): 255,
    ("Task", "CallObject"): 255,
    ("Task", "CallDisposition"): 255,
    ("Task", "Description"): 32_000,
}
#: Custom external-id fields are Text(255).
EXTERNAL_ID_LENGTH = 255
READ_ONLY = {"Id", "Name", "IsConverted", "CreatedDate"}
PICKLISTS = {
    ("Task", "TaskSubtype"): {"Task", "Email", "ListEmail", "Cadence", "Call", "LinkedIn"},
    ("Task", "CallType"): {"Inbound", "Outbound", "Internal"},
    ("Task", "Status"): {"Not Started", "In Progress", "Completed", "Waiting on someone else"},
    ("Task", "Priority"): {"High", "Normal", "Low"},
}
REQUIRED = {"Lead": ("LastName", "Company"), "Contact": ("LastName",), "Account": ("Name",)}
PREFIX = {
    "Task": "00T",
    "Lead": "00Q",
    "Contact": "003",
    "Account": "001",
    "Opportunity": "006",
    "User": "005",
    "Organization": "00D",
}


class ApiError(Exception):
    """An error the fake answers with Salesforce's error array."""

    def __init__(self, status: int, code: str, message: str, fields: list[str] | None = None):
        super().__init__(message)
        self.status = status
        self.body: Any = [{"message": message, "errorCode": code, "fields": fields or []}]


@dataclass
class Failure:
    """An injected failure for requests whose path contains ``match``."""

    match: str
    status: int
    body: Any
    times: int
    #: Answer with the failure only after doing the work (a response lost on the way back).
    after: bool = False
    #: Only for this HTTP method (empty: any).
    method: str = ""


@dataclass
class FakeOrg:
    """The org's state; the server thread and the tests share it (guarded by ``lock``)."""

    version: str = "62.0"
    records: dict[str, dict[str, dict[str, Any]]] = field(
        default_factory=lambda: {name: {} for name in SCHEMA}
    )
    sessions: set[str] = field(default_factory=set)
    #: Custom external-id fields on Task (added to the schema).
    task_external_ids: set[str] = field(default_factory=set)
    client_id: str = "fake-consumer-key"
    client_secret: str = "fake-consumer-secret"
    username: str = "integration@example.com"
    password: str = "pw-secret"
    security_token: str = "tok-secret"
    #: PEM public key that verifies JWT bearer assertions (empty: JWT logins fail).
    jwt_public_key: str = ""
    logins: int = 0
    requests: list[tuple[str, str]] = field(default_factory=list)
    failures: list[Failure] = field(default_factory=list)
    url: str = ""
    lock: threading.RLock = field(default_factory=threading.RLock)
    _ids: Iterator[int] = field(default_factory=lambda: itertools.count(1))

    # --- test helpers ---------------------------------------------------------------------

    def __post_init__(self) -> None:
        # The org itself: its default time zone is what ActivityDate follows.
        self.records["Organization"]["00D000000000001EAA"] = {
            "Id": "00D000000000001EAA",
            "TimeZoneSidKey": "Europe/Rome",
        }

    def new_session(self) -> str:
        token = "00Dfake!" + secrets.token_urlsafe(24)
        with self.lock:
            self.sessions.add(token)
        return token

    def expire_sessions(self) -> None:
        with self.lock:
            self.sessions.clear()

    def add_external_id(self, name: str) -> None:
        with self.lock:
            self.task_external_ids.add(name)

    def fail(
        self,
        match: str,
        status: int,
        code: str,
        message: str,
        times: int = 1,
        *,
        method: str = "",
        after: bool = False,
    ) -> None:
        body: Any = [{"message": message, "errorCode": code}] if code else message
        with self.lock:
            self.failures.append(Failure(match, status, body, times, after, method))

    def insert(self, object_name: str, **values: Any) -> str:
        with self.lock:
            record_id = f"{PREFIX[object_name]}{next(self._ids):015d}"
            record = {"Id": record_id, **values}
            if object_name in ("Contact", "Lead"):
                record["Name"] = " ".join(
                    str(v) for v in (values.get("FirstName"), values.get("LastName")) if v
                )
            if object_name == "Lead":
                record.setdefault("IsConverted", False)
            self.records[object_name][record_id] = record
            return record_id

    def tasks(self) -> list[dict[str, Any]]:
        with self.lock:
            return [dict(r) for r in self.records["Task"].values()]

    def count(self, method: str, fragment: str) -> int:
        with self.lock:
            return sum(1 for m, p in self.requests if m == method and fragment in p)

    # --- API ------------------------------------------------------------------------------

    def object_of(self, record_id: str) -> str | None:
        for name, rows in self.records.items():
            if record_id in rows:
                return name
        return None

    def schema(self, object_name: str) -> dict[str, tuple[bool, bool]]:
        fields = dict(SCHEMA[object_name])
        if object_name == "Task":
            fields.update({name: (True, True) for name in self.task_external_ids})
        return fields

    def validate(self, object_name: str, data: dict[str, Any], *, update: bool) -> None:
        schema = self.schema(object_name)
        for name, value in data.items():
            if name not in schema:
                raise ApiError(
                    400,
                    "INVALID_FIELD",
                    f"No such column '{name}' on sobject of type {object_name}",
                    [name],
                )
            createable, updateable = schema[name]
            if (update and not updateable) or (not update and not createable):
                raise ApiError(
                    400,
                    "INVALID_FIELD_FOR_INSERT_UPDATE",
                    f"Unable to create/update fields: {name}. Please check the security "
                    "settings of this field and verify that it is read/write for your profile "
                    "or permission set.",
                    [name],
                )
            allowed = PICKLISTS.get((object_name, name))
            if allowed is not None and value not in allowed:
                raise ApiError(
                    400,
                    "INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST",
                    f"bad value for restricted picklist field: {value}",
                    [name],
                )
            limit = LENGTHS.get((object_name, name))
            if name in self.task_external_ids and object_name == "Task":
                limit = EXTERNAL_ID_LENGTH
            if limit is not None and isinstance(value, str) and len(value) > limit:
                raise ApiError(
                    400,
                    "STRING_TOO_LONG",
                    f"{name}: data value too large: {value[:40]}... (max length={limit})",
                    [name],
                )
            if name == "CallDurationInSeconds" and not isinstance(value, int):
                raise ApiError(400, "JSON_PARSER_ERROR", f"Cannot deserialize {value!r}", [name])
            if name == "ActivityDate" and not re.fullmatch(r"\d{4}-\d{2}-\d{2}", str(value)):
                raise ApiError(400, "JSON_PARSER_ERROR", f"Cannot deserialize date {value!r}")
            if name in ("WhoId", "WhatId", "OwnerId", "AccountId") and value:
                target = self.object_of(str(value))
                expected = {
                    "WhoId": {"Contact", "Lead"},
                    "WhatId": {"Account", "Opportunity"},
                    "OwnerId": {"User"},
                    "AccountId": {"Account"},
                }[name]
                if target is not None and target not in expected and name in ("WhoId", "WhatId"):
                    label = "Name ID" if name == "WhoId" else "Related To ID"
                    raise ApiError(
                        400,
                        "FIELD_INTEGRITY_EXCEPTION",
                        f"{label}: id value of incorrect type: {value}",
                        [name],
                    )
                if target not in expected:
                    raise ApiError(
                        400,
                        "INVALID_CROSS_REFERENCE_KEY",
                        f"invalid cross reference id: {value}",
                        [name],
                    )
        who = str(data.get("WhoId") or "")
        if object_name == "Task" and data.get("WhatId") and self.object_of(who) == "Lead":
            raise ApiError(
                400,
                "FIELD_INTEGRITY_EXCEPTION",
                "Related To ID: id value of incorrect type: a task related to a lead "
                "cannot also be related to another record",
                ["WhatId"],
            )
        if not update:
            missing = [f for f in REQUIRED.get(object_name, ()) if not data.get(f)]
            if missing:
                raise ApiError(
                    400,
                    "REQUIRED_FIELD_MISSING",
                    f"Required fields are missing: [{', '.join(missing)}]",
                    missing,
                )

    def create(self, object_name: str, data: dict[str, Any]) -> str:
        self.validate(object_name, data, update=False)
        values = dict(data)
        if object_name == "Task":
            values.setdefault("Status", "Not Started")
            values.setdefault("Priority", "Normal")
        return self.insert(object_name, **values)

    def update(self, object_name: str, record_id: str, data: dict[str, Any]) -> None:
        """PATCH of one record by id (204 with no body in Salesforce)."""
        record = self.records.get(object_name, {}).get(record_id)
        if record is None:
            raise ApiError(404, "NOT_FOUND", "The requested resource does not exist")
        self.validate(object_name, data, update=True)
        record.update(data)

    def upsert(
        self, object_name: str, field_name: str, value: str, data: dict[str, Any]
    ) -> tuple[int, dict[str, Any]]:
        if object_name != "Task" or field_name not in self.task_external_ids:
            raise ApiError(
                404,
                "NOT_FOUND",
                f"Provided external ID field does not exist or is not accessible: {field_name}",
            )
        matches = [r for r in self.records[object_name].values() if r.get(field_name) == value]
        if len(matches) > 1:
            raise ApiError(300, "MULTIPLE_CHOICES", "more than one record")
        if matches:
            self.validate(object_name, data, update=True)
            matches[0].update(data)
            return 200, {"id": matches[0]["Id"], "success": True, "errors": [], "created": False}
        record_id = self.create(object_name, {**data, field_name: value})
        return 201, {"id": record_id, "success": True, "errors": [], "created": True}

    def _row(self, object_name: str, record: dict[str, Any], fields: list[str]) -> dict[str, Any]:
        row: dict[str, Any] = {
            "attributes": {
                "type": object_name,
                "url": f"/services/data/v{self.version}/sobjects/{object_name}/{record['Id']}",
            }
        }
        for name in fields:
            if "." in name:
                relation, sub = name.split(".", 1)
                target_id = record.get(relation + "Id")
                target = self.records.get(relation, {}).get(target_id or "")
                row[relation] = (
                    None
                    if target is None
                    else {"attributes": {"type": relation}, sub: target.get(sub)}
                )
            else:
                row[name] = record.get(name)
        return row

    def _check_fields(self, object_name: str, fields: list[str]) -> None:
        for name in fields:
            base = name.split(".")[0]
            known = name in self.schema(object_name) or name in READ_ONLY
            if "." in name:
                known = base in ("Account",) and object_name == "Contact"
            if not known:
                raise ApiError(
                    400,
                    "INVALID_FIELD",
                    f"No such column '{name}' on entity '{object_name}'.",
                )

    def query(self, soql: str) -> dict[str, Any]:
        match = re.fullmatch(
            r"SELECT\s+(.+?)\s+FROM\s+(\w+)(?:\s+WHERE\s+(.+?))?(?:\s+LIMIT\s+(\d+))?\s*",
            soql,
            re.S,
        )
        if not match or match.group(2) not in SCHEMA:
            raise ApiError(400, "MALFORMED_QUERY", f"unexpected token in: {soql[:80]}")
        fields = [f.strip() for f in match.group(1).split(",")]
        object_name = match.group(2)
        self._check_fields(object_name, fields)
        conditions = _conditions(match.group(3) or "")
        for name, _ in conditions:
            self._check_fields(object_name, [name])
        limit = int(match.group(4)) if match.group(4) else None
        rows = [
            self._row(object_name, r, fields)
            for r in self.records[object_name].values()
            if all(r.get(name) == value for name, value in conditions)
        ][:limit]
        return {"totalSize": len(rows), "done": True, "records": rows}

    def search(self, sosl: str) -> dict[str, Any]:
        match = re.fullmatch(
            r"FIND \{((?:\\.|[^\\}])*)\} IN (PHONE|NAME) FIELDS RETURNING (.+)", sosl, re.S
        )
        if not match:
            raise ApiError(400, "MALFORMED_QUERY", f"unexpected token: {sosl[:60]}")
        terms = _sosl_terms(match.group(1))
        matches = _phone_match if match.group(2) == "PHONE" else _name_match
        rows: list[dict[str, Any]] = []
        for spec in _split_top(match.group(3)):
            part = re.fullmatch(
                r"\s*(\w+)\((.+?)(?:\s+WHERE\s+(.+?))?(?:\s+LIMIT\s+(\d+))?\)\s*", spec, re.S
            )
            if not part or part.group(1) not in SCHEMA:
                raise ApiError(400, "MALFORMED_QUERY", f"bad RETURNING clause: {spec}")
            object_name = part.group(1)
            fields = [f.strip() for f in part.group(2).split(",")]
            self._check_fields(object_name, fields)
            conditions = _conditions(part.group(3) or "")
            limit = int(part.group(4)) if part.group(4) else None
            found = [
                r
                for r in self.records[object_name].values()
                if all(r.get(n) == v for n, v in conditions) and matches(r, terms)
            ][:limit]
            rows += [self._row(object_name, r, fields) for r in found]
        return {"searchRecords": rows}


def _split_top(text: str) -> list[str]:
    parts, depth, current = [], 0, ""
    for c in text:
        if c == "(":
            depth += 1
        elif c == ")":
            depth -= 1
        if c == "," and depth == 0:
            parts.append(current)
            current = ""
        else:
            current += c
    parts.append(current)
    return parts


def _sosl_terms(raw: str) -> list[str]:
    """The OR-ed terms of a FIND clause; an unescaped reserved character is malformed."""
    terms: list[str] = []
    for token in raw.split():
        if token == "OR":
            continue
        if token in ("AND", "AND NOT"):
            raise ApiError(400, "MALFORMED_QUERY", "only OR is supported by this fake")
        text, i = "", 0
        while i < len(token):
            c = token[i]
            if c == "\\":
                if i + 1 >= len(token):
                    raise ApiError(400, "MALFORMED_QUERY", "dangling escape in search term")
                text += token[i + 1]
                i += 2
                continue
            if c in SOSL_RESERVED:
                raise ApiError(
                    400,
                    "MALFORMED_QUERY",
                    f"unexpected token: '{c}' (reserved characters must be escaped)",
                )
            text += c
            i += 1
        terms.append(text)
    if not terms or any(len(t) < 2 for t in terms):
        raise ApiError(400, "MALFORMED_QUERY", "search term must be longer than one character")
    return terms


def _name_match(record: dict[str, Any], terms: list[str]) -> bool:
    """Like SOSL's name fields: a term (case-insensitive) in a name or company word."""
    names = [record.get(f) for f in ("Name", "FirstName", "LastName", "Company")]
    text = " ".join(str(v) for v in names if v).lower()
    return any(term.lower() in text for term in terms)


def _phone_match(record: dict[str, Any], terms: list[str]) -> bool:
    """Like SOSL's phone tokens: equal digits, or one a suffix of the other (7+ digits)."""
    for name, value in record.items():
        if not name.endswith("Phone") or not value:
            continue
        stored = "".join(c for c in str(value) if c.isdigit())
        for term in terms:
            wanted = "".join(c for c in term if c.isdigit())
            if not wanted or not stored:
                continue
            short, long_ = sorted((wanted, stored), key=len)
            if stored == wanted or (len(short) >= 7 and long_.endswith(short)):
                return True
    return False


_CONDITION = re.compile(r"\s*(\w+)\s*=\s*('(?:\\.|[^'\\])*'|true|false|\d+)\s*(AND\s+|$)", re.S)


def _unescape(match: re.Match[str]) -> str:
    return {"n": "\n", "t": "\t", "r": "\r"}.get(match.group(1), match.group(1))


def _conditions(text: str) -> list[tuple[str, Any]]:
    result: list[tuple[str, Any]] = []
    position = 0
    while position < len(text):
        match = _CONDITION.match(text, position)
        if not match:
            raise ApiError(400, "MALFORMED_QUERY", f"unexpected token near: {text[position:][:40]}")
        literal = match.group(2)
        value: Any
        if literal == "true":
            value = True
        elif literal == "false":
            value = False
        elif literal.startswith("'"):
            value = re.sub(r"\\(.)", _unescape, literal[1:-1], flags=re.S)
        else:
            value = int(literal)
        result.append((match.group(1), value))
        position = match.end()
    return result


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def _send(self, status: int, body: Any, content_type: str = "application/json") -> None:
        data = body if isinstance(body, bytes) else json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(data)))
        self.send_header("Sforce-Limit-Info", "api-usage=1/15000")
        self.end_headers()
        self.wfile.write(data)

    def _body(self) -> bytes:
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    def do_GET(self) -> None:
        self._handle("GET")

    def do_POST(self) -> None:
        self._handle("POST")

    def do_PATCH(self) -> None:
        self._handle("PATCH")

    def _handle(self, method: str) -> None:
        org = self.server.org
        body = self._body()
        parts = urlsplit(self.path)
        late: Failure | None = None
        with org.lock:
            org.requests.append((method, self.path))
            for failure in org.failures:
                if (
                    failure.times > 0
                    and failure.match in self.path
                    and failure.method in ("", method)
                ):
                    failure.times -= 1
                    if failure.after:
                        late = failure
                        break
                    self._send(failure.status, failure.body)
                    return
        if late is not None:
            self._dispatch(method, parts, body, lambda *_: None)
            self._send(late.status, late.body)
            return
        self._dispatch(method, parts, body, self._send)

    def _dispatch(self, method: str, parts: Any, body: bytes, send: Any) -> None:
        org = self.server.org
        try:
            if parts.path == "/services/oauth2/token":
                self._token(body, send)
                return
            if parts.path.startswith("/services/Soap/u/"):
                self._soap_login(body, send)
                return
            auth = self.headers.get("Authorization", "")
            with org.lock:
                valid = auth.startswith("Bearer ") and auth[7:] in org.sessions
            if not valid:
                raise ApiError(401, "INVALID_SESSION_ID", "Session expired or invalid")
            prefix = f"/services/data/v{org.version}/"
            if not parts.path.startswith(prefix):
                raise ApiError(404, "NOT_FOUND", "The requested resource does not exist")
            rest = parts.path[len(prefix) :]
            query = parse_qs(parts.query)
            with org.lock:
                if method == "GET" and rest == "search/":
                    send(200, org.search(query["q"][0]))
                elif method == "GET" and rest == "query/":
                    send(200, org.query(query["q"][0]))
                elif method == "POST" and re.fullmatch(r"sobjects/\w+/", rest):
                    object_name = rest.split("/")[1]
                    if object_name not in SCHEMA:
                        raise ApiError(
                            404, "NOT_FOUND", f"sObject type '{object_name}' is not supported"
                        )
                    record_id = org.create(object_name, json.loads(body))
                    send(201, {"id": record_id, "success": True, "errors": []})
                elif method == "PATCH" and re.fullmatch(r"sobjects/\w+/\w{15,18}", rest):
                    _, object_name, record_id = rest.split("/")
                    org.update(object_name, record_id, json.loads(body))
                    send(204, b"")
                elif method == "PATCH" and re.fullmatch(r"sobjects/\w+/\w+/[^/]+", rest):
                    _, object_name, field_name, value = rest.split("/")
                    status, result = org.upsert(
                        object_name, field_name, unquote(value), json.loads(body)
                    )
                    send(status, result)
                else:
                    raise ApiError(404, "NOT_FOUND", "The requested resource does not exist")
        except ApiError as exc:
            send(exc.status, exc.body)

    def _token(self, body: bytes, send: Any) -> None:
        """OAuth token endpoint: client credentials (Basic auth) and JWT bearer."""
        org = self.server.org
        form = {k: v[0] for k, v in parse_qs(body.decode()).items()}
        grant = form.get("grant_type")
        ok = False
        if grant == "client_credentials":
            expected = base64.b64encode(f"{org.client_id}:{org.client_secret}".encode()).decode()
            ok = self.headers.get("Authorization") == f"Basic {expected}"
        elif grant == "urn:ietf:params:oauth:grant-type:jwt-bearer" and org.jwt_public_key:
            try:
                claims = jwt.decode(
                    form.get("assertion", ""),
                    org.jwt_public_key,
                    algorithms=["RS256"],
                    options={"verify_exp": False, "verify_aud": False},
                )
            except jwt.PyJWTError:
                claims = {}
            ok = claims.get("iss") == org.client_id and claims.get("sub") == org.username
        if not ok:
            send(400, {"error": "invalid_grant", "error_description": "authentication failure"})
            return
        with org.lock:
            org.logins += 1
        send(
            200,
            {
                "access_token": org.new_session(),
                "instance_url": org.url,
                "token_type": "Bearer",
                "id": f"{org.url}/id/00D/005",
            },
        )

    def _soap_login(self, body: bytes, send: Any) -> None:
        org = self.server.org
        text = body.decode()
        username = re.search(r"<n1:username>(.*?)</n1:username>", text)
        password = re.search(r"<n1:password>(.*?)</n1:password>", text)
        if (
            not username
            or not password
            or username.group(1) != org.username
            or password.group(1) != org.password + org.security_token
        ):
            fault = (
                '<?xml version="1.0" encoding="UTF-8"?><soapenv:Envelope xmlns:soapenv='
                '"http://schemas.xmlsoap.org/soap/envelope/"><soapenv:Body><soapenv:Fault>'
                "<faultcode>INVALID_LOGIN</faultcode><faultstring>INVALID_LOGIN: Invalid "
                "username, password, security token; or user locked out.</faultstring>"
                "</soapenv:Fault></soapenv:Body></soapenv:Envelope>"
            )
            send(500, fault.encode(), "text/xml")
            return
        with org.lock:
            org.logins += 1
        session = org.new_session()
        xml = (
            '<?xml version="1.0" encoding="UTF-8"?><soapenv:Envelope xmlns:soapenv='
            '"http://schemas.xmlsoap.org/soap/envelope/" xmlns="urn:partner.soap.sforce.com">'
            "<soapenv:Body><loginResponse><result>"
            f"<serverUrl>{org.url}/services/Soap/u/{org.version}/00D</serverUrl>"
            f"<sessionId>{session}</sessionId><userId>005000000000000AAA</userId>"
            "</result></loginResponse></soapenv:Body></soapenv:Envelope>"
        )
        send(200, xml.encode(), "text/xml")


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    org: FakeOrg


class FakeSalesforce:
    """Runs a :class:`FakeOrg` on ``https://127.0.0.1:<free port>``."""

    def __init__(self, context: ssl.SSLContext, org: FakeOrg | None = None) -> None:
        self.org = org or FakeOrg()
        self._server = _Server(("127.0.0.1", 0), _Handler)
        self._server.org = self.org
        self._server.socket = context.wrap_socket(self._server.socket, server_side=True)
        self.org.url = f"https://127.0.0.1:{self._server.server_address[1]}"
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )

    def __enter__(self) -> FakeSalesforce:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=10)
