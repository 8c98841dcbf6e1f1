"""Turn what hubspot-api-client raises into callbridge's errors (retry, dead, misconfigured).

Every API package of hubspot-api-client has its own ``ApiException`` class with ``status``,
``body`` and ``headers``; they share no useful base, so they are recognised by shape. The
body is HubSpot's JSON error (``message``, ``category``, ``correlationId``; 429s add
``errorType: RATE_LIMIT`` and ``policyName``). HubSpot does not promise a ``Retry-After``,
so the back-off hint comes from the policy's window. Neither the token nor request headers
ever reach a message: only HubSpot's own message and correlation id do.
"""

from __future__ import annotations

import json
from typing import Any

from callbridge import PermanentError, PluginError, RetryLater, retryable_status

TOKEN_VARIABLE = "CALLBRIDGE_HUBSPOT_ACCESS_TOKEN"  # noqa: S105 - a variable name

#: Seconds to wait after a 429, by rate-limit policy.
POLICY_WINDOWS: dict[str, float] = {
    "SECONDLY": 1.0,
    "TEN_SECONDLY_ROLLING": 10.0,
    "DAILY": 3600.0,
}
DEFAULT_RATE_LIMIT_WAIT = 10.0
SERVER_ERROR_WAIT = 5.0


class HubSpotAuthError(PermanentError):
    """The token is wrong or lacks scopes: a configuration problem, no retry helps."""


class HubSpotRateLimited(RetryLater):
    """A 429; ``retry_after`` comes from the policy window."""


class HubSpotUncertain(RetryLater):
    """The request may or may not have been carried out (timeout, 5xx, lost answer)."""


def is_api_exception(exc: BaseException) -> bool:
    """Whether ``exc`` is one of hubspot-api-client's per-package ``ApiException`` classes."""
    return type(exc).__name__ in {
        "ApiException",
        "NotFoundException",
        "UnauthorizedException",
        "ForbiddenException",
        "ServiceException",
    } or (hasattr(exc, "status") and hasattr(exc, "body") and hasattr(exc, "reason"))


def error_body(exc: BaseException) -> dict[str, Any]:
    """HubSpot's JSON error body, or an empty dict when there is none."""
    raw = getattr(exc, "body", None)
    if isinstance(raw, bytes):
        raw = raw.decode("utf-8", "replace")
    if not isinstance(raw, str) or not raw.strip():
        return {}
    try:
        data = json.loads(raw)
    except ValueError:
        return {"message": raw.strip()[:300]}
    return data if isinstance(data, dict) else {}


def describe(body: dict[str, Any]) -> str:
    """``message (category, correlation id)`` for logs and dead deliveries."""
    message = str(body.get("message") or "no message")
    extras = [str(body[k]) for k in ("category", "correlationId") if body.get(k)]
    return f"{message} ({', '.join(extras)})" if extras else message


def rate_limit_wait(body: dict[str, Any]) -> float:
    """The back-off for a 429 body, from its ``policyName``."""
    policy = str(body.get("policyName") or "").upper()
    return POLICY_WINDOWS.get(policy, DEFAULT_RATE_LIMIT_WAIT)


def from_status(status: int, body: dict[str, Any], action: str) -> PluginError:
    """The callbridge error for an HTTP error answer of HubSpot."""
    text = describe(body)
    if status == 429:
        wait = rate_limit_wait(body)
        policy = body.get("policyName") or "unknown policy"
        return HubSpotRateLimited(
            f"HubSpot rate limit while trying to {action} ({policy}): {text}", retry_after=wait
        )
    if status == 401:
        return HubSpotAuthError(
            f"HubSpot refused the access token while trying to {action}: {text}. "
            f"Check {TOKEN_VARIABLE} (a private app token, pat-...)."
        )
    if status == 403:
        scopes = _missing_scopes(body)
        hint = f" Missing scopes: {', '.join(scopes)}." if scopes else ""
        return HubSpotAuthError(
            f"HubSpot denied access while trying to {action}: {text}.{hint} Give the private "
            f"app behind {TOKEN_VARIABLE} the scopes listed in docs/connectors/hubspot.md."
        )
    if retryable_status(status):
        return HubSpotUncertain(
            f"HubSpot failed while trying to {action} (HTTP {status}): {text}",
            retry_after=SERVER_ERROR_WAIT,
        )
    return PermanentError(f"HubSpot rejected the request to {action} (HTTP {status}): {text}")


def translate(exc: BaseException, action: str) -> PluginError:
    """Map any exception raised by a HubSpot call to a callbridge error.

    ``ApiException`` by status; network failures (urllib3, httpx, OS errors) are uncertain
    and retried; anything else is a bug and stays permanent with its type name only.
    """
    if isinstance(exc, PluginError):
        return exc
    status = getattr(exc, "status", None)
    if is_api_exception(exc) and isinstance(status, int):
        return from_status(status, error_body(exc), action)
    module = type(exc).__module__.split(".")[0]
    if module in {"urllib3", "httpx", "httpcore", "socket", "ssl"} or isinstance(
        exc, (OSError, TimeoutError)
    ):
        return HubSpotUncertain(
            f"could not reach HubSpot to {action}: {type(exc).__name__}",
            retry_after=SERVER_ERROR_WAIT,
        )
    return PermanentError(f"unexpected error while trying to {action}: {type(exc).__name__}")


def _missing_scopes(body: dict[str, Any]) -> list[str]:
    found: list[str] = []
    contexts = [body.get("context") or {}]
    contexts += [e.get("context") or {} for e in body.get("errors") or [] if isinstance(e, dict)]
    for ctx in contexts:
        if not isinstance(ctx, dict):
            continue
        for key in ("missingScopes", "requiredScopes", "requiredGranularScopes"):
            for scope in ctx.get(key) or []:
                if str(scope) not in found:
                    found.append(str(scope))
    return found
