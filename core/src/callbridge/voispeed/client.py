"""The PBX client a company's settings ask for: the document's SOAP or the module's SERI.

``CALLBRIDGE_PBX__DIALECT`` is the one switch. Whoever assembles callbridge (the service,
the engine process, the demo) asks here, so a company changes dialect with one variable.
"""

from __future__ import annotations

from ..settings import PbxSettings
from .seri_client import SeriClient
from .soap import SoapClient

#: Either client; code that needs a SOAP-only command checks ``isinstance(.., SoapClient)``.
PbxClient = SoapClient | SeriClient


def pbx_client(settings: PbxSettings) -> PbxClient | None:
    """The client for ``settings.dialect``, or None when its credentials are not set."""
    if settings.dialect == "seri":
        if settings.seri_token is None or not settings.seri_token.get_secret_value():
            return None
        return SeriClient(settings)
    if settings.user and settings.password_hash():
        return SoapClient(settings)
    return None
