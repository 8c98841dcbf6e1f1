"""Which of VOIspeed's dialects answers at the configured URLs, and whether our credentials work.

``callbridge pbx check`` runs both probes; neither places a call:

- **SERI**: ``get_user_call_report`` (a read-only service) at ``CALLBRIDGE_PBX__SERI_URL``
  with ``CALLBRIDGE_PBX__SERI_TOKEN``. An XML answer with an ``<outcome>`` proves the module
  answers; outcome 0 proves the token works, another outcome is the PBX refusing it.
- **SOAP**: ``CallHold`` of user call ``00000000`` (no such call; a command whose repetition
  is harmless) at ``CALLBRIDGE_PBX__SOAP_URL``. A SOAP answer proves the interface answers.
  The document names no read-only command, so the credentials are judged from the Fault: one
  that speaks of authentication, a password or a login means refused; any other (no such
  call) means the PBX got past them. The Fault's text is shown so a person can tell.

Each probe is sent once (no retries) and bounded by the configured timeouts.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, Literal

import httpx

from ..settings import PbxSettings
from .envelope import PbxError, SoapFault, SoapResponseError
from .seri import SeriAnswerError, parse_answer
from .soap import SoapClient, SoapHttpError, SoapTransportError, pbx_http_client

Credentials = Literal["accepted", "refused", "unknown", "not set"]
#: Words of a Fault that say the credentials were refused (lower case).
_AUTH_WORDS = ("auth", "password", "login", "credential", "unauthor")


@dataclass(frozen=True)
class Probe:
    """What one probe found. ``answers``: the dialect's interface answered at ``url``."""

    dialect: Literal["soap", "seri"]
    url: str
    answers: bool
    credentials: Credentials
    detail: str

    @property
    def ok(self) -> bool:
        """The dialect answers and takes our credentials."""
        return self.answers and self.credentials == "accepted"

    def as_dict(self) -> dict[str, Any]:
        """For ``--json``."""
        return {**asdict(self), "ok": self.ok}


def probe_seri(settings: PbxSettings) -> Probe:
    """``get_user_call_report`` at ``seri_url`` (see the module's docstring)."""
    names = settings.seri
    token = settings.seri_token.get_secret_value() if settings.seri_token else ""
    query = {names.service_param: names.user_call_report}
    if token:
        query["token"] = token
    if names.domain:
        query["domain"] = names.domain
    url = settings.seri_url

    def probe(answers: bool, credentials: Credentials, detail: str) -> Probe:
        return Probe(
            "seri",
            url,
            answers,
            credentials,
            detail.replace(token, "**********") if token else detail,
        )

    try:
        with pbx_http_client(settings) as http:
            response = http.get(url, params=query)
    except httpx.HTTPError as exc:
        return probe(False, "unknown", f"not reachable ({type(exc).__name__})")
    try:
        answer = parse_answer(response.content[: 1 << 20], names)
    except SeriAnswerError as exc:
        return probe(
            False, "unknown", f"HTTP {response.status_code}, not the module's answer: {exc}"
        )
    if not token:
        return probe(True, "not set", "the module answers; set CALLBRIDGE_PBX__SERI_TOKEN")
    if answer.ok:
        return probe(True, "accepted", f"{names.user_call_report}: outcome 0")
    return probe(True, "refused", f"{names.user_call_report}: {answer.error}")


def probe_soap(settings: PbxSettings) -> Probe:
    """``CallHold`` of a call that does not exist at ``soap_url`` (see the module's docstring)."""
    url = settings.soap_url
    if not (settings.user and settings.password_hash()):
        return Probe("soap", url, False, "not set", "set CALLBRIDGE_PBX__USER and a password")
    once = settings.model_copy(update={"retry_attempts": 1})
    try:
        with SoapClient(once) as client:
            client.call_hold(settings.param1(settings.user), "00000000")
    except SoapFault as fault:
        text = f"{fault.code} {fault.text}".strip()
        refused = any(word in text.lower() for word in _AUTH_WORDS)
        return Probe("soap", url, True, "refused" if refused else "accepted", f"Fault: {text}")
    except SoapTransportError as exc:
        return Probe("soap", url, False, "unknown", f"not reachable ({exc.reason})")
    except SoapHttpError as exc:
        return Probe("soap", url, False, "unknown", f"HTTP {exc.status} without a SOAP answer")
    except SoapResponseError as exc:
        return Probe("soap", url, False, "unknown", f"not a SOAP answer ({exc})")
    except PbxError as exc:
        return Probe("soap", url, False, "unknown", str(exc))
    return Probe("soap", url, True, "accepted", "CallHold of call 00000000 accepted")


def check(settings: PbxSettings) -> list[Probe]:
    """Both probes, the configured dialect first."""
    probes = [probe_soap(settings), probe_seri(settings)]
    return sorted(probes, key=lambda p: p.dialect != settings.dialect)
