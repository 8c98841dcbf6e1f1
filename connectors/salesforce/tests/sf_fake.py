"""A local Salesforce org over HTTPS that speaks the REST wire format simple-salesforce uses.

It serves what the connector touches: ``/services/data/vXX.X/search/`` (SOSL ``IN PHONE
FIELDS``), ``query/`` (simple SOQL), ``sobjects/<Object>/`` create, ``sobjects/Task/<field>/
<value>`` upsert (PATCH), the OAuth token endpoint (client credentials) and the SOAP login
(username + password). It refuses what the real API refuses, with the real error arrays:
INVALID_SESSION_ID (401), MALFORMED_QUERY for an unescaped SOSL reserved character,
INVALID_FIELD for unknown fields, restricted picklists, required fields, a WhatId with a Lead
WhoId (FIELD_INTEGRITY_EXCEPTION), create-only fields on update, unknown external-id fields.
Tests inject failures (rate limit, 5xx) with :meth:`FakeOrg.fail`; the server, the request log
and the fault plumbing are the kit's ``FakeHttpService``.
"""

from __future__ import annotations

import base64
import itertools
import json
import re
import secrets
import ssl
from collections.abc import Iterator
from typing import Any
from urllib.parse import parse_qs, unquote

import jwt

from callbridge.testing import FakeAnswer, FakeHttpService, FakeRequest

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


class FakeOrg(FakeHttpService):
    """The org on ``https://127.0.0.1:<free port>``: its state (guarded by ``lock``), its
    REST, OAuth and SOAP login endpoints, and the failures tests inject."""

    headers = {"Sforce-Limit-Info": "api-usage=1/15000"}

    def __init__(self, ssl_context: ssl.SSLContext | None = None) -> None:
        super().__init__(ssl_context=ssl_context)
        self.version = "62.0"
        self.records: dict[str, dict[str, dict[str, Any]]] = {name: {} for name in SCHEMA}
        self.sessions: set[str] = set()
        #: Custom external-id fields on Task (added to the schema).
        self.task_external_ids: set[str] = set()
        self.client_id = "fake-consumer-key"
        self.client_secret = "fake-consumer-secret"
        self.username = "integration@example.com"
        self.password = "pw-secret"
        self.security_token = "tok-secret"
        #: PEM public key that verifies JWT bearer assertions (empty: JWT logins fail).
        self.jwt_public_key = ""
        self.logins = 0
        self._ids: Iterator[int] = itertools.count(1)
        # The org itself: its default time zone is what ActivityDate follows.
        self.records["Organization"]["00D000000000001EAA"] = {
            "Id": "00D000000000001EAA",
            "TimeZoneSidKey": "Europe/Rome",
        }

    # --- test helpers ---------------------------------------------------------------------

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
        """The next ``times`` requests whose ``METHOD /path?query`` contains ``match`` fail with
        Salesforce's error array (or ``message`` alone when there is no ``code``)."""
        body: Any = [{"message": message, "errorCode": code}] if code else message
        self.fail_next(match, status, body, times, method=method, after=after)

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

    def count(self, method: str, path: str) -> int:
        """Requests of ``method`` whose path and query contain ``path`` (a fragment)."""
        with self.lock:
            return sum(1 for r in self.requests if r.method == method and path in r.target)

    # --- HTTP -----------------------------------------------------------------------------

    def route(self, request: FakeRequest) -> FakeAnswer:
        try:
            if request.path == "/services/oauth2/token":
                return self._token(request)
            if request.path.startswith("/services/Soap/u/"):
                return self._soap_login(request)
            auth = request.headers.get("authorization", "")
            with self.lock:
                valid = auth.startswith("Bearer ") and auth[7:] in self.sessions
            if not valid:
                raise ApiError(401, "INVALID_SESSION_ID", "Session expired or invalid")
            prefix = f"/services/data/v{self.version}/"
            if not request.path.startswith(prefix):
                raise ApiError(404, "NOT_FOUND", "The requested resource does not exist")
            with self.lock:
                return self._data(request.method, request.path[len(prefix) :], request)
        except ApiError as exc:
            return FakeAnswer(exc.status, exc.body)

    def _data(self, method: str, rest: str, request: FakeRequest) -> FakeAnswer:
        if method == "GET" and rest == "search/":
            return FakeAnswer(200, self.search(request.arg("q")))
        if method == "GET" and rest == "query/":
            return FakeAnswer(200, self.query(request.arg("q")))
        if method == "POST" and re.fullmatch(r"sobjects/\w+/", rest):
            object_name = rest.split("/")[1]
            if object_name not in SCHEMA:
                raise ApiError(404, "NOT_FOUND", f"sObject type '{object_name}' is not supported")
            record_id = self.create(object_name, json.loads(request.raw))
            return FakeAnswer(201, {"id": record_id, "success": True, "errors": []})
        if method == "PATCH" and re.fullmatch(r"sobjects/\w+/\w{15,18}", rest):
            _, object_name, record_id = rest.split("/")
            self.update(object_name, record_id, json.loads(request.raw))
            return FakeAnswer(204)
        if method == "PATCH" and re.fullmatch(r"sobjects/\w+/\w+/[^/]+", rest):
            _, object_name, field_name, value = rest.split("/")
            status, result = self.upsert(
                object_name, field_name, unquote(value), json.loads(request.raw)
            )
            return FakeAnswer(status, result)
        raise ApiError(404, "NOT_FOUND", "The requested resource does not exist")

    def _token(self, request: FakeRequest) -> FakeAnswer:
        """OAuth token endpoint: client credentials (Basic auth) and JWT bearer."""
        form = {k: v[0] for k, v in parse_qs(request.raw.decode()).items()}
        grant = form.get("grant_type")
        ok = False
        if grant == "client_credentials":
            expected = base64.b64encode(f"{self.client_id}:{self.client_secret}".encode()).decode()
            ok = request.headers.get("authorization") == f"Basic {expected}"
        elif grant == "urn:ietf:params:oauth:grant-type:jwt-bearer" and self.jwt_public_key:
            try:
                claims = jwt.decode(
                    form.get("assertion", ""),
                    self.jwt_public_key,
                    algorithms=["RS256"],
                    options={"verify_exp": False, "verify_aud": False},
                )
            except jwt.PyJWTError:
                claims = {}
            ok = claims.get("iss") == self.client_id and claims.get("sub") == self.username
        if not ok:
            return FakeAnswer(
                400, {"error": "invalid_grant", "error_description": "authentication failure"}
            )
        with self.lock:
            self.logins += 1
        return FakeAnswer(
            200,
            {
                "access_token": self.new_session(),
                "instance_url": self.url,
                "token_type": "Bearer",
                "id": f"{self.url}/id/00D/005",
            },
        )

    def _soap_login(self, request: FakeRequest) -> FakeAnswer:
        text = request.raw.decode()
        username = re.search(r"<n1:username>(.*?)</n1:username>", text)
        password = re.search(r"<n1:password>(.*?)</n1:password>", text)
        if (
            not username
            or not password
            or username.group(1) != self.username
            or password.group(1) != self.password + self.security_token
        ):
            fault = (
                '<?xml version="1.0" encoding="UTF-8"?><soapenv:Envelope xmlns:soapenv='
                '"http://schemas.xmlsoap.org/soap/envelope/"><soapenv:Body><soapenv:Fault>'
                "<faultcode>INVALID_LOGIN</faultcode><faultstring>INVALID_LOGIN: Invalid "
                "username, password, security token; or user locked out.</faultstring>"
                "</soapenv:Fault></soapenv:Body></soapenv:Envelope>"
            )
            return FakeAnswer(500, fault.encode(), content_type="text/xml")
        with self.lock:
            self.logins += 1
        session = self.new_session()
        xml = (
            '<?xml version="1.0" encoding="UTF-8"?><soapenv:Envelope xmlns:soapenv='
            '"http://schemas.xmlsoap.org/soap/envelope/" xmlns="urn:partner.soap.sforce.com">'
            "<soapenv:Body><loginResponse><result>"
            f"<serverUrl>{self.url}/services/Soap/u/{self.version}/00D</serverUrl>"
            f"<sessionId>{session}</sessionId><userId>005000000000000AAA</userId>"
            "</result></loginResponse></soapenv:Body></soapenv:Envelope>"
        )
        return FakeAnswer(200, xml.encode(), content_type="text/xml")

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
