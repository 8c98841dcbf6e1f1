"""The few SOQL reads and the Task upsert the plugin makes, apart from its hooks."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from simple_salesforce.api import Salesforce
from simple_salesforce.exceptions import SalesforceMalformedRequest

from callbridge import RetryLater

from .client import Backoff, error_details, sobject


def org_time_zone(sf: Salesforce) -> str | None:
    """The org's default time zone (``Europe/Rome``)."""
    return first_value(sf, "SELECT TimeZoneSidKey FROM Organization LIMIT 1", "TimeZoneSidKey")


def first_row(sf: Salesforce, query: str) -> dict[str, Any] | None:
    records = sf.query(query).get("records") or []
    return dict(records[0]) if records else None


def first_id(sf: Salesforce, query: str) -> str | None:
    return first_value(sf, query, "Id")


def first_value(sf: Salesforce, query: str, field: str) -> str | None:
    records = sf.query(query).get("records") or []
    value = records[0].get(field) if records else None
    return str(value) if value else None


def upsert_task(
    sf: Salesforce,
    field: str,
    key: str,
    fields: dict[str, Any],
    match: str,
    retry_after: float = Backoff.network,
) -> str:
    """Upsert on the external-id field; the external id makes concurrent attempts collide.

    The caller looked for the Task first, so this normally creates. When another attempt won
    the race, Salesforce turns the upsert into an update, which refuses create-only fields
    (TaskSubtype): then the Task exists, and we return it.
    """
    try:
        path = f"{field}/{quote(key, safe='')}"
        response = sobject(sf, "Task").upsert(path, fields, raw_response=True)
    except SalesforceMalformedRequest as exc:
        code, _message = error_details(exc)
        existing = first_id(sf, match) if code == "INVALID_FIELD_FOR_INSERT_UPDATE" else None
        if existing is None:
            raise
        return existing
    if response.status_code != 204 and response.content:
        body = response.json()
        if body.get("id"):
            return str(body["id"])
    found = first_id(sf, match)
    if found is None:
        raise RetryLater(
            "Salesforce accepted the Task upsert but the Task cannot be found yet",
            retry_after=retry_after,
        )
    return found
