"""One Salesforce connection: logs in lazily, renews an expired session, maps errors.

Every call the connector makes goes through :meth:`SalesforceClient.call`, so the delivery
rules of the core hold everywhere: passing trouble (rate limit, outage, network) becomes
``RetryLater`` with a long hint (Salesforce sends no Retry-After), data Salesforce refuses
becomes ``PermanentError`` carrying Salesforce's own message, and an expired session is
renewed once and the operation retried, so no work is lost.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, TypeVar

import requests
from simple_salesforce.api import Salesforce, SFType
from simple_salesforce.exceptions import (
    SalesforceAuthenticationFailed,
    SalesforceError,
    SalesforceExpiredSession,
    SalesforceGeneralError,
    SalesforceRefusedRequest,
)

from callbridge import PermanentError, RetryLater

from .settings import AuthConfig

log = logging.getLogger(__name__)

T = TypeVar("T")

#: Hint (seconds) for rate limits and outages: Salesforce's daily limit recovers slowly.
LONG_BACKOFF = 300.0
#: Hint for network failures and lock contention.
SHORT_BACKOFF = 30.0
#: Hint when credentials fail: someone has to fix them; keep the work meanwhile.
AUTH_BACKOFF = 600.0

#: errorCodes that are passing conditions even though Salesforce answers 4xx.
_TRANSIENT_CODES = frozenset(
    {
        "REQUEST_LIMIT_EXCEEDED",
        "UNABLE_TO_LOCK_ROW",
        "SERVER_UNAVAILABLE",
        "REQUEST_RUNNING_TOO_LONG",
        "QUERY_TIMEOUT",
        "TXN_SECURITY_METERING_ERROR",
    }
)

SessionFactory = Callable[[], requests.Session]


class SalesforceRefused(PermanentError):
    """Salesforce refused the request for good; its ``errorCode`` and the fields it named.

    The message is Salesforce's own answer (it ends up on the dead delivery). The plugin
    reads ``code`` and ``fields`` to tell a refusal caused by a field *it* chose (a relation,
    an owner) from one about the data itself.
    """

    def __init__(self, message: str, *, code: str = "", fields: tuple[str, ...] = ()) -> None:
        super().__init__(message)
        self.code = code
        self.fields = fields


@dataclass(frozen=True)
class Backoff:
    """The ``retry_after`` hints the client gives (seconds); the core never retries sooner.

    Configurable (``CALLBRIDGE_SALESFORCE_BACKOFF_*``) because they are our guesses, not
    Salesforce's instructions: an admin may want a quicker recovery after an outage.
    """

    outage: float = LONG_BACKOFF
    network: float = SHORT_BACKOFF
    auth: float = AUTH_BACKOFF


class _TimeoutSession(requests.Session):
    """A requests session with a default timeout (simple-salesforce sets none)."""

    def __init__(self, timeout: float) -> None:
        super().__init__()
        self._timeout = timeout

    def request(self, method: str, url: str, *args: Any, **kwargs: Any) -> Any:  # type: ignore[override]
        kwargs.setdefault("timeout", self._timeout)
        # requests lets REQUESTS_CA_BUNDLE override session.verify; the configured bundle wins.
        kwargs.setdefault("verify", self.verify)
        return super().request(method, url, *args, **kwargs)


def default_session(timeout: float, ca_bundle: str | None = None) -> requests.Session:
    """The HTTP session the client uses: default timeout, optional CA bundle."""
    session = _TimeoutSession(timeout)
    if ca_bundle:
        session.verify = ca_bundle
    return session


def sobject(sf: Salesforce, name: str) -> SFType:
    """``sf.<name>`` typed as the SObject handle it is (``__getattr__`` returns a union)."""
    handle = getattr(sf, name)
    if not isinstance(handle, SFType):
        raise TypeError(f"{name} is not an SObject")
    return handle


def error_details(exc: SalesforceError) -> tuple[str, str]:
    """``(errorCode, message)`` from Salesforce's error array, as far as it has them."""
    content = exc.content
    first: Mapping[str, Any] | None = None
    if isinstance(content, list) and content and isinstance(content[0], Mapping):
        first = content[0]
    elif isinstance(content, Mapping):
        first = content
    if first is None:
        text = content.decode(errors="replace") if isinstance(content, bytes) else str(content)
        return "", text.strip()[:500]
    code = str(first.get("errorCode") or first.get("error") or "")
    message = str(first.get("message") or first.get("error_description") or "")
    fields = first.get("fields")
    if fields:
        message += f" (fields: {', '.join(str(f) for f in fields)})"
    return code, message


class SalesforceClient:
    """A lazily connected ``simple_salesforce.Salesforce`` with renewal and error mapping.

    Thread-safe: hooks run in worker threads; logging in is serialised by a lock.
    """

    def __init__(
        self,
        auth: AuthConfig,
        *,
        api_version: str,
        timeout: float = 15.0,
        ca_bundle: str | None = None,
        session_factory: SessionFactory | None = None,
        backoff: Backoff | None = None,
    ) -> None:
        self._auth = auth
        #: The retry hints this client gives (the plugin uses them for its own RetryLater).
        self.backoff = backoff or Backoff()
        self._version = api_version
        self._session_factory: SessionFactory = session_factory or (
            lambda: default_session(timeout, ca_bundle)
        )
        self._lock = threading.Lock()
        self._sf: Salesforce | None = None
        #: How many times a session was obtained (tests and metrics read it).
        self.logins = 0

    def __repr__(self) -> str:
        return f"SalesforceClient(mode={self._auth.mode!r}, version={self._version!r})"

    @property
    def instance(self) -> str:
        """The org's API host (``acme.my.salesforce.com``), connecting first if needed."""
        return self.call(lambda sf: str(sf.sf_instance))

    def _connect(self) -> Salesforce:
        session = self._session_factory()
        try:
            sf = Salesforce(version=self._version, session=session, **self._auth.kwargs)
        except SalesforceAuthenticationFailed as exc:
            raise RetryLater(
                f"Salesforce login failed ({self._auth.mode}): {exc}", retry_after=self.backoff.auth
            ) from None
        except SalesforceError as exc:
            raise _translate(exc, self.backoff) from None
        except requests.RequestException as exc:
            raise RetryLater(
                f"Salesforce unreachable while logging in: {type(exc).__name__}",
                retry_after=self.backoff.network,
            ) from None
        except (ValueError, OSError) as exc:
            # A private key that cannot be read or parsed (pyjwt raises ValueError subclasses).
            raise RetryLater(
                f"Salesforce login failed ({self._auth.mode}): {type(exc).__name__}",
                retry_after=self.backoff.auth,
            ) from None
        self.logins += 1
        log.info("salesforce: session obtained (%s) for %s", self._auth.mode, sf.sf_instance)
        return sf

    def _current(self) -> Salesforce:
        with self._lock:
            if self._sf is None:
                self._sf = self._connect()
            return self._sf

    def _renew(self, stale: Salesforce) -> Salesforce:
        with self._lock:
            if self._sf is stale or self._sf is None:
                self._sf = self._connect()
            return self._sf

    def call(self, operation: Callable[[Salesforce], T]) -> T:
        """Run ``operation`` on the connection, renewing an expired session once.

        Raises ``RetryLater`` or ``PermanentError`` (never a simple-salesforce exception).
        """
        sf = self._current()
        try:
            return operation(sf)
        except SalesforceExpiredSession as exc:
            if not self._auth.can_login:
                _code, message = error_details(exc)
                raise RetryLater(
                    "Salesforce session expired and an existing-session configuration cannot "
                    f"log in again: set a new CALLBRIDGE_SALESFORCE_SESSION_ID ({message})",
                    retry_after=self.backoff.auth,
                ) from None
            log.info("salesforce: session expired, logging in again")
            sf = self._renew(sf)
        except SalesforceError as exc:
            raise _translate(exc, self.backoff) from None
        except requests.RequestException as exc:
            raise RetryLater(
                f"Salesforce request failed: {type(exc).__name__}", retry_after=self.backoff.network
            ) from None
        try:
            return operation(sf)
        except SalesforceError as exc:
            raise _translate(exc, self.backoff) from None
        except requests.RequestException as exc:
            raise RetryLater(
                f"Salesforce request failed: {type(exc).__name__}", retry_after=self.backoff.network
            ) from None

    def close(self) -> None:
        """Drop the connection (the next call logs in again)."""
        with self._lock:
            if self._sf is not None:
                self._sf.session.close()
            self._sf = None


def _translate(exc: SalesforceError, backoff: Backoff | None = None) -> RetryLater | PermanentError:
    """The core's delivery rule for a Salesforce error."""
    backoff = backoff or Backoff()
    code, message = error_details(exc)
    text = f"Salesforce {exc.status} {code}: {message}" if code else f"Salesforce {exc.status}: "
    if not code:
        text += message
    if code in _TRANSIENT_CODES:
        wait = backoff.network if code == "UNABLE_TO_LOCK_ROW" else backoff.outage
        return RetryLater(text, retry_after=wait)
    if isinstance(exc, SalesforceGeneralError) and exc.status >= 500:
        return RetryLater(text, retry_after=backoff.outage)
    if isinstance(exc, SalesforceExpiredSession):
        return RetryLater(text, retry_after=backoff.auth)
    if isinstance(exc, SalesforceRefusedRequest) or exc.status < 500:
        return SalesforceRefused(text, code=code, fields=_fields(exc))
    return RetryLater(text, retry_after=backoff.outage)


def _fields(exc: SalesforceError) -> tuple[str, ...]:
    """The field names of Salesforce's first error, when it gave any."""
    content = exc.content
    first = content[0] if isinstance(content, list) and content else content
    fields = first.get("fields") if isinstance(first, Mapping) else None
    return tuple(str(f) for f in fields) if isinstance(fields, list) else ()
