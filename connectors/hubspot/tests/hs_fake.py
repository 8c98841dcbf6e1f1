"""A local HubSpot over HTTP: the CRM v3 wire format that hubspot-api-client speaks.

Built from HubSpot's OpenAPI documents (contacts, calls, owners, account info, calling
extensions; the facts are copied here, the tests never read those documents): the required
fields of each request and response, the enum values, the error body
(``status/message/correlationId/category``), the scopes each endpoint needs. It validates
what it is sent the way HubSpot does (a call without ``hs_timestamp`` is refused, unknown enum
values and association types are refused, a missing token gets 401), and it can misbehave on
request: inject 429s with HubSpot's rate-limit body, fail with any status, or carry out a
request and then drop the connection without answering (the "did it happen?" case). Search
can lag behind writes like the real index: new calls stay out of search while ``hold_index``.
"""

from __future__ import annotations

import fnmatch
import json
import re
import uuid
from datetime import UTC, datetime
from typing import Any

import phonenumbers

from callbridge.testing import FakeAnswer, FakeHttpService, FakeRequest

TOKEN = "pat-na1-11111111-2222-3333-4444-555555555555"
DEVELOPER_KEY = "dev-hapikey-0000"
ALL_SCOPES = frozenset(
    {"crm.objects.contacts.read", "crm.objects.contacts.write", "crm.objects.owners.read", "oauth"}
)

# From crm-calls-v3.json / HubSpot's call properties.
CALL_DIRECTIONS = {"INBOUND", "OUTBOUND"}
CALL_STATUSES = {
    "BUSY", "CALLING_CRM_USER", "CANCELED", "COMPLETED", "CONNECTING", "FAILED",
    "IN_PROGRESS", "NO_ANSWER", "QUEUED", "RINGING",
}  # fmt: skip
CALL_PROPERTIES = {
    "hs_timestamp", "hs_call_title", "hs_call_body", "hs_call_direction", "hs_call_duration",
    "hs_call_from_number", "hs_call_to_number", "hs_call_status", "hs_call_disposition",
    "hs_call_recording_url", "hubspot_owner_id", "hs_call_external_id", "hs_call_source",
    "hs_activity_type", "hs_attachment_ids", "hs_call_callee_object_id",
    "hs_call_callee_object_type",
}  # fmt: skip
DEFAULT_DISPOSITIONS = {
    "f240bbac-87c9-4f6e-bf70-924b57d47db7",  # Connected
    "73a0d17f-1163-4015-bdd5-ec830791da20",  # No answer
    "9d9162e7-6cf3-4944-bf63-4dff82258764",  # Busy
    "b2cf5968-551e-4856-9783-52b3da59a7d0",  # Left voicemail
    "17b47fee-58de-441e-a44c-c6300d46f273",  # Wrong number
    "a4c4c377-d246-4b32-a13b-75a56a4cd0ff",  # Left live message
}
#: HUBSPOT_DEFINED association type ids from calls, by target object type.
CALL_ASSOCIATIONS = {194: "contacts", 182: "companies", 206: "deals", 220: "tickets"}
ASSOCIATION_CATEGORIES = {"HUBSPOT_DEFINED", "INTEGRATOR_DEFINED", "USER_DEFINED", "WORK"}
OPERATORS = {
    "BETWEEN", "CONTAINS_TOKEN", "EQ", "GT", "GTE", "HAS_PROPERTY", "IN", "LT", "LTE", "NEQ",
    "NOT_CONTAINS_TOKEN", "NOT_HAS_PROPERTY", "NOT_IN",
}  # fmt: skip
SETTINGS_REQUIRED = {
    "height": int, "isReady": bool, "name": str, "supportsCustomObjects": bool,
    "supportsInboundCalling": bool, "url": str, "usesCallingWindow": bool, "usesRemote": bool,
    "width": int,
}  # fmt: skip
RATE_LIMIT_MESSAGES = {
    "TEN_SECONDLY_ROLLING": "You have reached your ten_secondly_rolling limit.",
    "SECONDLY": "You have reached your secondly limit.",
    "DAILY": "You have reached your daily limit.",
}


def now_iso() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def error_body(message: str, category: str, **extra: Any) -> dict[str, Any]:
    """HubSpot's error object (the ``Error`` schema plus ``status``)."""
    return {
        "status": "error",
        "message": message,
        "correlationId": str(uuid.uuid4()),
        "category": category,
        **extra,
    }


class ApiError(Exception):
    def __init__(self, status: int, body: dict[str, Any]) -> None:
        super().__init__(body.get("message"))
        self.status = status
        self.body = body


def invalid(message: str, **extra: Any) -> ApiError:
    return ApiError(400, error_body(message, "VALIDATION_ERROR", **extra))


def searchable_digits(value: str | None, region: str) -> str | None:
    """What HubSpot computes for hs_searchable_calculated_*: the national digits."""
    if not value:
        return None
    try:
        parsed = phonenumbers.parse(value, region)
    except phonenumbers.NumberParseException:
        return "".join(c for c in value if c.isdigit()) or None
    return str(parsed.national_number)


class FakeHubSpot(FakeHttpService):
    """The state of the fake account and the faults to inject; thread-safe."""

    def __init__(self, region: str = "IT") -> None:
        super().__init__()
        self.region = region
        self.tokens: dict[str, frozenset[str]] = {TOKEN: ALL_SCOPES}
        self.portal_id = 7654321
        self.ui_domain = "app-eu1.hubspot.com"
        self.contacts: dict[str, dict[str, str]] = {}
        self.companies: set[str] = {"9001"}
        self.deals: set[str] = {"7001"}
        self.tickets: set[str] = set()
        self.calls: dict[str, dict[str, Any]] = {}
        self.indexed: set[str] = set()
        self.hold_index = False
        self.unique_call_properties: set[str] = set()
        self.owners: list[dict[str, Any]] = []
        self.dispositions = set(DEFAULT_DISPOSITIONS)
        self.calling_settings: dict[str, dict[str, Any]] = {}
        self._next_id = 1000

    # -- set-up helpers -------------------------------------------------------------------

    def new_id(self) -> str:
        with self.lock:
            self._next_id += 1
            return str(self._next_id)

    def add_contact(self, **props: str) -> str:
        with self.lock:
            cid = props.pop("id", None) or self.new_id()
            stamp = now_iso()
            record = {"createdate": stamp, "lastmodifieddate": stamp, "hs_object_id": cid}
            record.update(props)
            self._compute_contact(record)
            self.contacts[cid] = record
            return cid

    def _compute_contact(self, record: dict[str, str]) -> None:
        for src, dst in (
            ("phone", "hs_searchable_calculated_phone_number"),
            ("mobilephone", "hs_searchable_calculated_mobile_number"),
        ):
            value = searchable_digits(record.get(src), self.region)
            if value:
                record[dst] = value

    def add_owner(self, email: str, first: str = "", last: str = "") -> str:
        with self.lock:
            oid = self.new_id()
            stamp = now_iso()
            self.owners.append(
                {
                    "id": oid, "email": email, "firstName": first, "lastName": last,
                    "type": "PERSON", "userId": int(oid) + 1, "archived": False,
                    "createdAt": stamp, "updatedAt": stamp, "teams": [],
                }
            )  # fmt: skip
            return oid

    def release_index(self) -> None:
        """Search catches up with every write."""
        with self.lock:
            self.hold_index = False
            self.indexed.update(self.calls)

    def rate_limit_next(
        self, match: str, times: int = 1, policy: str = "TEN_SECONDLY_ROLLING"
    ) -> None:
        body = error_body(
            RATE_LIMIT_MESSAGES[policy], "RATE_LIMITS", errorType="RATE_LIMIT", policyName=policy
        )
        self.fail_next(match, 429, body, times)

    def fault_body(self) -> dict[str, Any]:
        return error_body("Injected failure", "INTERNAL_ERROR")

    def invalid_body(self, request: FakeRequest) -> FakeAnswer:
        return FakeAnswer(400, error_body("Invalid input JSON on line 1", "VALIDATION_ERROR"))

    # -- endpoints ------------------------------------------------------------------------

    def route(self, request: FakeRequest) -> FakeAnswer:
        """Authenticate (a developer key for the calling-extension settings, else a bearer
        token with its scopes), then answer the endpoint."""
        try:
            if request.path.startswith("/crm/v3/extensions/calling/"):
                if request.arg("hapikey") != DEVELOPER_KEY:
                    raise ApiError(401, error_body(
                        "The API key provided is invalid. View or manage your API key here: "
                        "https://app.hubspot.com/l/api-key/",
                        "INVALID_AUTHENTICATION"))  # fmt: skip
                scopes = ALL_SCOPES
            else:
                auth = request.headers.get("authorization") or ""
                token = auth[7:] if auth.startswith("Bearer ") else ""
                if token not in self.tokens:
                    raise ApiError(401, error_body(
                        "Authentication credentials not found. This API supports OAuth 2.0 "
                        "authentication and you can find more details at "
                        "https://developers.hubspot.com/docs/methods/auth/oauth-overview",
                        "INVALID_AUTHENTICATION"))  # fmt: skip
                scopes = self.tokens[token]
            status, answer = self.endpoint(
                request.method, request.path, request.query, request.body, scopes
            )
        except ApiError as exc:
            status, answer = exc.status, exc.body
        return FakeAnswer(status, None if status == 204 else answer)

    def endpoint(
        self, method: str, path: str, query: dict[str, list[str]], body: Any, scopes: frozenset[str]
    ) -> tuple[int, Any]:
        def need(scope: str) -> None:
            if scope not in scopes:
                raise ApiError(
                    403,
                    error_body(
                        "This app hasn't been granted all required scopes to make this call. "
                        "Read more about required scopes here: https://developers.hubspot.com/scopes.",
                        "MISSING_SCOPES",
                        errors=[
                            {
                                "message": "One or more of the following scopes are required.",
                                "context": {"requiredGranularScopes": [scope]},
                            }
                        ],
                    ),
                )

        if method == "GET" and path == "/account-info/v3/details":
            return 200, {
                "portalId": self.portal_id, "uiDomain": self.ui_domain, "timeZone": "Europe/Rome",
                "companyCurrency": "EUR", "additionalCurrencies": [], "utcOffset": "+01:00",
                "utcOffsetMilliseconds": 3600000, "dataHostingLocation": "eu1",
                "accountType": "STANDARD",
            }  # fmt: skip
        if method == "POST" and path == "/crm/v3/objects/contacts/search":
            need("crm.objects.contacts.read")
            return 200, self.search(self.contacts, body, contact=True)
        if method == "POST" and path == "/crm/v3/objects/contacts":
            need("crm.objects.contacts.write")
            return 201, self.create_contact(body)
        if method == "POST" and path == "/crm/v3/objects/calls":
            need("crm.objects.contacts.write")
            return 201, self.create_call(body)
        if method == "POST" and path == "/crm/v3/objects/calls/batch/upsert":
            need("crm.objects.contacts.write")
            return 200, self.upsert_calls(body)
        if method == "POST" and path == "/crm/v3/objects/calls/search":
            need("crm.objects.contacts.read")
            visible = {k: v["properties"] for k, v in self.calls.items() if k in self.indexed}
            return 200, self.search(visible, body, contact=False)
        m = re.fullmatch(r"/crm/v3/objects/calls/([^/]+)", path)
        if method == "GET" and m:
            need("crm.objects.contacts.read")
            return 200, self.get_call(m.group(1), query)
        if method == "PATCH" and m:
            need("crm.objects.contacts.write")
            return 200, self.update_call(m.group(1), body)
        m = re.fullmatch(r"/crm/v4/objects/calls/(\d+)/associations/(\w+)/(\d+)", path)
        if method == "PUT" and m:
            need("crm.objects.contacts.write")
            return 200, self.associate(m.group(1), m.group(2), m.group(3), body)
        if method == "DELETE" and m:
            need("crm.objects.contacts.write")
            return 204, self.dissociate(m.group(1), m.group(2), m.group(3))
        if method == "GET" and path in ("/crm/v3/owners", "/crm/v3/owners/"):
            need("crm.objects.owners.read")
            email = (query.get("email") or [""])[0].lower()
            results = [o for o in self.owners if not email or o["email"].lower() == email]
            return 200, {"results": results}
        m = re.fullmatch(r"/crm/v3/extensions/calling/(\d+)/settings", path)
        if m:
            return self.settings_endpoint(method, m.group(1), body)
        raise ApiError(404, error_body(f"Unable to route {method} {path}", "OBJECT_NOT_FOUND"))

    # contacts / search

    def create_contact(self, body: Any) -> dict[str, Any]:
        props = self._input_properties(body, require_associations=False)
        cid = self.add_contact(**props)
        return self._object(cid, self.contacts[cid])

    def _object(
        self, oid: str, props: dict[str, Any], wanted: list[str] | None = None
    ) -> dict[str, Any]:
        if wanted is not None:
            keep = set(wanted) | {"hs_object_id", "createdate", "lastmodifieddate"}
            props = {k: v for k, v in props.items() if k in keep}
        stamp = _iso(props.get("createdate") or props.get("hs_createdate"))
        return {
            "id": oid,
            "properties": dict(props),
            "createdAt": stamp,
            "updatedAt": _iso(props.get("lastmodifieddate") or props.get("hs_lastmodifieddate")),
            "archived": False,
        }

    def search(
        self, objects: dict[str, dict[str, Any]], body: Any, contact: bool
    ) -> dict[str, Any]:
        if not isinstance(body, dict):
            raise invalid("Invalid input JSON on line 1")
        groups = body.get("filterGroups") or []
        if not isinstance(groups, list) or len(groups) > 5:
            raise invalid("There was a problem with the request: too many filter groups (max 5).")
        total_filters = 0
        for group in groups:
            filters = group.get("filters") if isinstance(group, dict) else None
            if not isinstance(filters, list) or len(filters) > 6:
                raise invalid("Each filter group needs a list of at most 6 filters.")
            total_filters += len(filters)
            for flt in filters:
                if flt.get("operator") not in OPERATORS or not flt.get("propertyName"):
                    raise invalid(f"Invalid filter: {json.dumps(flt)}")
        if total_filters > 18:
            raise invalid("There was a problem with the request: too many filters (max 18).")
        limit = body.get("limit", 10)
        if not isinstance(limit, int) or not 0 < limit <= 200:
            raise invalid("limit must be between 1 and 200")
        wanted = body.get("properties") or (["firstname", "lastname", "email"] if contact else [])
        matched = [
            oid
            for oid, props in sorted(objects.items(), key=lambda kv: int(kv[0]))
            if not groups or any(all(_match(props, f) for f in g["filters"]) for g in groups)
        ]
        start = int(body.get("after") or 0)
        page = matched[start : start + limit]
        result: dict[str, Any] = {
            "total": len(matched),
            "results": [self._object(oid, objects[oid], wanted) for oid in page],
        }
        if start + limit < len(matched):
            result["paging"] = {"next": {"after": str(start + limit), "link": "?after="}}
        return result

    # calls

    def _input_properties(self, body: Any, require_associations: bool = True) -> dict[str, str]:
        if not isinstance(body, dict) or not isinstance(body.get("properties"), dict):
            raise invalid("Invalid input JSON: properties is required")
        if require_associations and "associations" not in body:
            raise invalid("Invalid input JSON: associations is required")
        props = body["properties"]
        for key, value in props.items():
            if not isinstance(value, str):
                raise invalid(f"Property values must be strings: {key}")
        return dict(props)

    def _validate_call(self, props: dict[str, str], existing: dict[str, str] | None = None) -> None:
        errors = []
        merged = {**(existing or {}), **props}
        for name in props:
            if name not in CALL_PROPERTIES and name not in self.unique_call_properties:
                errors.append({"isValid": False, "message": f'Property "{name}" does not exist',
                               "error": "PROPERTY_DOESNT_EXIST", "name": name})  # fmt: skip
        if not merged.get("hs_timestamp"):
            errors.append({"isValid": False, "message": "hs_timestamp is required",
                           "error": "REQUIRED_FIELD", "name": "hs_timestamp"})  # fmt: skip
        else:
            ts = merged["hs_timestamp"]
            try:
                if not ts.isdigit():
                    datetime.fromisoformat(ts.replace("Z", "+00:00"))
            except ValueError:
                errors.append({"isValid": False, "message": f"{ts} is not a valid datetime",
                               "error": "INVALID_DATE", "name": "hs_timestamp"})  # fmt: skip
        checks = [
            ("hs_call_direction", CALL_DIRECTIONS),
            ("hs_call_status", CALL_STATUSES),
            ("hs_call_disposition", self.dispositions),
        ]
        for name, allowed in checks:
            if name in props and props[name] not in allowed:
                message = f"{props[name]} was not one of the allowed options"
                errors.append({"isValid": False, "message": message,
                               "error": "INVALID_OPTION", "name": name})  # fmt: skip
        if "hs_call_duration" in props and not props["hs_call_duration"].isdigit():
            errors.append({"isValid": False, "message": "hs_call_duration must be a number",
                           "error": "INVALID_INTEGER", "name": "hs_call_duration"})  # fmt: skip
        if "hs_call_recording_url" in props and not props["hs_call_recording_url"].startswith(
            "https://"
        ):
            errors.append({"isValid": False, "message": "Only HTTPS recording URLs are accepted",
                           "error": "INVALID_URL", "name": "hs_call_recording_url"})  # fmt: skip
        owner = props.get("hubspot_owner_id")
        if owner is not None and owner not in {o["id"] for o in self.owners}:
            errors.append({"isValid": False, "message": f"{owner} is not a valid owner id",
                           "error": "INVALID_OWNER_ID", "name": "hubspot_owner_id"})  # fmt: skip
        if errors:
            raise invalid(f"Property values were not valid: {json.dumps(errors)}")

    def _targets(self, to_type: str) -> set[str]:
        return {"contacts": set(self.contacts), "companies": self.companies,
                "deals": self.deals, "tickets": self.tickets}[to_type]  # fmt: skip

    def _validate_spec(self, spec: Any, to_type: str | None) -> str:
        if (
            not isinstance(spec, dict)
            or spec.get("associationCategory") not in ASSOCIATION_CATEGORIES
        ):
            raise invalid(f"Invalid association category in {json.dumps(spec)}")
        type_id = spec.get("associationTypeId")
        target = (
            CALL_ASSOCIATIONS.get(type_id)
            if spec["associationCategory"] == "HUBSPOT_DEFINED"
            else None
        )
        if target is None or (to_type is not None and target != to_type):
            raise invalid(
                f"{type_id} is not a valid association type id between calls and the target"
            )
        return target

    def _parse_associations(self, body: dict[str, Any]) -> list[tuple[str, str, int]]:
        found = []
        for assoc in body.get("associations") or []:
            to_id = str((assoc.get("to") or {}).get("id", ""))
            types = assoc.get("types")
            if not to_id or not isinstance(types, list) or not types:
                raise invalid("Each association needs to.id and types")
            for spec in types:
                target = self._validate_spec(spec, None)
                if to_id not in self._targets(target):
                    raise invalid(
                        f"No {target} with ID {to_id} exist",
                        subCategory="crm.associations.INVALID_OBJECT_IDS",
                    )
                found.append((target, to_id, spec["associationTypeId"]))
        return found

    def create_call(self, body: Any) -> dict[str, Any]:
        props = self._input_properties(body)
        with self.lock:
            self._validate_call(props)
            associations = self._parse_associations(body)
            for prop in self.unique_call_properties & set(props):
                if any(c["properties"].get(prop) == props[prop] for c in self.calls.values()):
                    raise ApiError(
                        409,
                        error_body(f"A call with {prop}={props[prop]} already exists", "CONFLICT"),
                    )
            cid = self._store_call(props)
            self.calls[cid]["associations"] = associations
            return self._object(cid, self.calls[cid]["properties"])

    def _store_call(self, props: dict[str, str]) -> str:
        cid = self.new_id()
        stamp = now_iso()
        self.calls[cid] = {
            "properties": {
                **props,
                "hs_createdate": stamp,
                "hs_lastmodifieddate": stamp,
                "hs_object_id": cid,
            },
            "associations": [],
        }
        if not self.hold_index:
            self.indexed.add(cid)
        return cid

    def upsert_calls(self, body: Any) -> dict[str, Any]:
        if not isinstance(body, dict) or not isinstance(body.get("inputs"), list):
            raise invalid("Invalid input JSON: inputs is required")
        started = now_iso()
        results = []
        with self.lock:
            for item in body["inputs"]:
                id_property = item.get("idProperty")
                if id_property not in self.unique_call_properties:
                    raise invalid(f"{id_property} is not a unique property of calls")
                if not isinstance(item.get("id"), str) or "properties" not in item:
                    raise invalid("Each input needs id and properties")
                props = {
                    **self._input_properties(item, require_associations=False),
                    id_property: item["id"],
                }
                existing = next(
                    (
                        k
                        for k, c in self.calls.items()
                        if c["properties"].get(id_property) == item["id"]
                    ),
                    None,
                )
                self._validate_call(props, self.calls[existing]["properties"] if existing else None)
                if existing is None:
                    cid, new = self._store_call(props), True
                else:
                    cid, new = existing, False
                    self.calls[cid]["properties"].update(props)
                results.append({**self._object(cid, self.calls[cid]["properties"]), "new": new})
        return {
            "status": "COMPLETE",
            "results": results,
            "startedAt": started,
            "completedAt": now_iso(),
        }

    def get_call(self, call_id: str, query: dict[str, list[str]]) -> dict[str, Any]:
        id_property = (query.get("idProperty") or [None])[0]
        with self.lock:
            if id_property:
                found = next(
                    (
                        k
                        for k, c in self.calls.items()
                        if c["properties"].get(id_property) == call_id
                    ),
                    None,
                )
            else:
                found = call_id if call_id in self.calls else None
            if found is None:
                raise ApiError(
                    404,
                    error_body(
                        "Object not found.  objectId are usually numeric.", "OBJECT_NOT_FOUND"
                    ),
                )
            return self._object(found, self.calls[found]["properties"])

    def update_call(self, call_id: str, body: Any) -> dict[str, Any]:
        """PATCH of one engagement's properties (validated as on create)."""
        with self.lock:
            if call_id not in self.calls:
                raise ApiError(
                    404, error_body(f"No calls with ID {call_id} exist", "OBJECT_NOT_FOUND")
                )
            props = self._input_properties(body, require_associations=False)
            stored = self.calls[call_id]["properties"]
            self._validate_call(props, stored)
            stored.update(props)
            stored["hs_lastmodifieddate"] = now_iso()
            return self._object(call_id, stored)

    def dissociate(self, call_id: str, to_type: str, to_id: str) -> None:
        """DELETE of every association between the call and one record (204 either way)."""
        with self.lock:
            if call_id not in self.calls:
                raise ApiError(
                    404, error_body(f"No calls with ID {call_id} exist", "OBJECT_NOT_FOUND")
                )
            links = self.calls[call_id]["associations"]
            links[:] = [link for link in links if (link[0], link[1]) != (to_type, to_id)]

    def associations_of(self, call_id: str) -> set[tuple[str, str]]:
        """``(type, id)`` of the records a call is associated with."""
        with self.lock:
            return {(t, i) for t, i, _ in self.calls[call_id]["associations"]}

    def associate(self, call_id: str, to_type: str, to_id: str, body: Any) -> dict[str, Any]:
        with self.lock:
            if call_id not in self.calls:
                raise ApiError(
                    404, error_body(f"No calls with ID {call_id} exist", "OBJECT_NOT_FOUND")
                )
            if to_type not in CALL_ASSOCIATIONS.values() or to_id not in self._targets(to_type):
                raise invalid(f"No {to_type} with ID {to_id} exist")
            if not isinstance(body, list) or not body:
                raise invalid("Invalid input JSON: a list of association specs is required")
            links = self.calls[call_id]["associations"]
            for spec in body:
                self._validate_spec(spec, to_type)
                link = (to_type, to_id, spec["associationTypeId"])
                if link not in links:
                    links.append(link)
            type_ids = {"contacts": "0-1", "companies": "0-2", "deals": "0-3", "tickets": "0-5"}
            return {
                "fromObjectTypeId": "0-48", "fromObjectId": int(call_id),
                "toObjectTypeId": type_ids[to_type], "toObjectId": int(to_id), "labels": [],
            }  # fmt: skip

    def settings_endpoint(self, method: str, app_id: str, body: Any) -> tuple[int, Any]:
        with self.lock:
            current = self.calling_settings.get(app_id)
            if method == "GET":
                if current is None:
                    raise ApiError(404, error_body("No settings for this app", "OBJECT_NOT_FOUND"))
                return 200, current
            if method == "POST":
                if current is not None:
                    raise ApiError(
                        409, error_body("Settings already exist for this app", "CONFLICT")
                    )
                if not isinstance(body, dict):
                    raise invalid("Invalid input JSON")
                for name, kind in SETTINGS_REQUIRED.items():
                    if not isinstance(body.get(name), kind):
                        raise invalid(f"{name} is required and must be a {kind.__name__}")
                stamp = now_iso()
                self.calling_settings[app_id] = {**body, "createdAt": stamp, "updatedAt": stamp}
                return 200, self.calling_settings[app_id]
            if method == "PATCH":
                if current is None:
                    raise ApiError(404, error_body("No settings for this app", "OBJECT_NOT_FOUND"))
                current.update(body if isinstance(body, dict) else {})
                current["updatedAt"] = now_iso()
                return 200, current
        raise ApiError(405, error_body("Method not allowed", "VALIDATION_ERROR"))


def _iso(value: str | None) -> str:
    """Object timestamps are ISO 8601 in answers, whatever form the property has."""
    if not value:
        return now_iso()
    if value.isdigit():
        return datetime.fromtimestamp(int(value) / 1000, UTC).strftime("%Y-%m-%dT%H:%M:%S.000Z")
    return value


def _match(props: dict[str, Any], flt: dict[str, Any]) -> bool:
    op = flt["operator"]
    value = props.get(flt["propertyName"])
    wanted = str(flt.get("value", ""))
    if op == "HAS_PROPERTY":
        return value not in (None, "")
    if op == "NOT_HAS_PROPERTY":
        return value in (None, "")
    if value is None:
        return op in {"NEQ", "NOT_IN", "NOT_CONTAINS_TOKEN"}
    text = str(value)
    if op == "EQ":
        return text.lower() == wanted.lower()
    if op == "NEQ":
        return text.lower() != wanted.lower()
    if op == "IN":
        return text.lower() in {str(v).lower() for v in flt.get("values") or []}
    if op in {"CONTAINS_TOKEN", "NOT_CONTAINS_TOKEN"}:
        tokens = [t for t in re.split(r"[\s,;()\-./]+", text.lower()) if t] + [
            re.sub(r"\D", "", text)
        ]
        hit = any(fnmatch.fnmatchcase(t, wanted.lower()) for t in tokens if t)
        return hit if op == "CONTAINS_TOKEN" else not hit
    return False
