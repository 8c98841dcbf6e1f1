"""``LocalCa``: a certificate authority of the test's own, for fakes served over HTTPS.

A connector whose CRM is HTTPS-only (Salesforce, Pipedrive, Zoho) is tested against a fake
that speaks TLS, trusted the way a deployment trusts a private CA (a CA bundle setting, or
``SSL_CERT_FILE``). ``trustme`` makes the certificates; this wraps the three steps every
connector's tests repeated: the CA, a server context for the fake, the CA's PEM file for the
client.
"""

from __future__ import annotations

import ssl
from pathlib import Path

__all__ = ["LocalCa"]


class LocalCa:
    """A fresh CA whose certificate is written to ``folder/ca.pem`` (``pem``)."""

    def __init__(self, folder: Path) -> None:
        try:
            import trustme
        except ImportError as exc:  # pragma: no cover - trustme is a test dependency
            raise RuntimeError("LocalCa needs trustme: pip install trustme") from exc
        self._ca = trustme.CA()
        folder.mkdir(parents=True, exist_ok=True)
        #: The CA certificate, for the client's CA bundle setting or ``SSL_CERT_FILE``.
        self.pem = folder / "ca.pem"
        self._ca.cert_pem.write_to_path(str(self.pem))

    def server_context(self, *names: str) -> ssl.SSLContext:
        """A server-side context with a certificate for ``names`` (default ``127.0.0.1``):
        what ``FakeHttpService(ssl_context=...)`` takes."""
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        self._ca.issue_cert(*(names or ("127.0.0.1",))).configure_cert(context)
        return context
