"""The OpenAPI description of the PBX ingress ``/pbx/events`` and ``/pbx/seri``.

The ingress is a plain ASGI endpoint (see ``ingress``), outside FastAPI's routing, so its
entry in the app's OpenAPI document is written here by hand.
"""

from __future__ import annotations

from typing import Any

from . import ingress


def openapi_paths() -> dict[str, Any]:
    """The OpenAPI description of ``/pbx/events`` (a plain ASGI endpoint, so added by hand)."""
    parameters = [
        _param("ssn_event", "Event code: 1, 2, 16-21 (others are kept as unknown).", 16, True),
        _param("token", "The shared ingress token (CALLBRIDGE_INGRESS_TOKEN).", None, True),
        _param("call_id", "User call id (8 hex characters), events 16-21.", "000012A0"),
        _param("sender_id", "The PBX user the event is about.", "7"),
        _param("ext_id", "The external id of a click-to-call, echoed by the PBX.", "cb-1f2e"),
        _param("number", "Remote or local number; see the event table.", "0612345678"),
        _param("ext", "Local or remote number; see the event table.", "201"),
        _param("identity", "Name|Surname|Department|p1|p2", "Mario|Rossi|Sales|0|0"),
        _param("group", "Group the call came through.", "sales"),
        _param("device_id", "Events 1/2: the device (8 hex characters).", "000012A0"),
        _param("outbox_id", "sys_exec triggers: an outbox row to read (no ssn_event).", 42),
    ]
    responses = {
        "200": {
            "description": "Durable in the journal (or a duplicate of an event that is).",
            "content": {"text/plain": {"example": "ok 42"}},
        },
        "202": {"description": "outbox_id wake-up accepted."},
        "409": {"description": "outbox_id wake-up, but no MySQL source runs here."},
        "400": {"description": "Malformed event; kept among rejected requests."},
        "401": {"description": "No token."},
        "403": {"description": "Wrong token, or source network not allowed."},
        "413": {"description": "Request too large."},
        "415": {"description": "POST body is not a form."},
        "503": {"description": "Journal unavailable; retry."},
    }
    operation = {
        "tags": ["PBX ingress"],
        "description": (ingress.__doc__ or "").split("\n\n")[1],
        "parameters": parameters,
        "responses": responses,
    }
    seri = _seri_operation(responses)
    return {
        ingress.SERI_PATH: {"get": seri, "post": {**seri, "operationId": "pbx_seri_post"}},
        ingress.PATH: {
            "get": {**operation, "summary": "Receive one PBX event", "operationId": "pbx_get"},
            "post": {
                **operation,
                "summary": "Receive one PBX event (form body)",
                "operationId": "pbx_post",
                "requestBody": {
                    "content": {"application/x-www-form-urlencoded": {"schema": {"type": "object"}}}
                },
            },
        },
    }


def _seri_operation(responses: dict[str, Any]) -> dict[str, Any]:
    """The integration module's (SERI) events at ``/pbx/seri``: the same answers."""
    return {
        "tags": ["PBX ingress"],
        "summary": "Receive one event of VOIspeed's integration module (SERI)",
        "operationId": "pbx_seri_get",
        "description": (
            "The same endpoint in the integration module's dialect (``/pbx/events`` takes it "
            "too): ``event_name`` = incoming_call, outgoing_call, call_answered, "
            "call_disconnect_in, call_disconnect_out, lost_call, cmd_failed (names are "
            "settings, CALLBRIDGE_PBX__SERI__*). Read as the document's events; unknown "
            "names and parameters are kept. Same answers as /pbx/events."
        ),
        "parameters": [
            _param("event_name", "The SERI event.", "incoming_call", True),
            _param("token", "The ingress token (the module's may come too).", None, True),
            _param("ext", "The user's extension.", "201"),
            _param("number", "The other party's number.", "0612345678"),
            _param("usercallid", "The user call id (decimal by default).", "4768"),
            _param("extid", "Our external id of a click-to-call.", "cb-1f2e"),
            _param("request_id", "cmd_failed: the request that failed.", "77"),
        ],
        "responses": responses,
    }


def _param(name: str, text: str, example: object, required: bool = False) -> dict[str, Any]:
    schema = {"type": "integer" if isinstance(example, int) else "string"}
    entry: dict[str, Any] = {
        "name": name,
        "in": "query",
        "required": required,
        "description": text,
        "schema": schema,
    }
    if example is not None:
        entry["example"] = example
    return entry
