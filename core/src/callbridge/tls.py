"""One TLS context for every HTTP client callbridge makes per company.

An ``httpx.Client`` made with the default ``verify=True`` builds its own ``SSLContext`` and
loads the whole CA bundle into it: about 0.9 MB of memory each. With many companies, each
with its own PBX client (in the HTTP and the engine process) and its own connector clients,
that was most of what a company cost at rest (``bench/companies.py``). The context is
read-only once made and safe to share between threads and clients, so they share this one:
the very context httpx would make (``httpx.create_ssl_context()``, which honours
``SSL_CERT_FILE`` and ``SSL_CERT_DIR``), made once.
"""

from __future__ import annotations

import functools
import ssl

import httpx


@functools.cache
def shared_ssl_context() -> ssl.SSLContext:
    """The process's TLS context for verified HTTPS (made on first use)."""
    return httpx.create_ssl_context()
