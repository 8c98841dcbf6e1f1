"""``callbridge pbx``: send any of the document's SOAP commands by hand.

One subcommand per command, in kebab-case (``call-req``, ``crud-event``, ...). ``--dry-run``
prints the exact envelope that would be sent (the password hash masked unless
``--show-secrets``) and sends nothing; the HTTP headers go to stderr so stdout stays XML.

Ids (``--call-id``, ``--device``, ...) are read by ``parse_user_id``: eight characters as
given (``000012A1``); ``dec:4768`` for a monitor table's decimal id, ``0x4768`` for hex; a
short all-digit id whose two readings differ is refused (exit 2) with both readings.

Exit status: 0 done; 1 the PBX refused, failed or could not be reached (a readable line,
never a traceback); 2 bad arguments or configuration (the message names the option or
the ``CALLBRIDGE_PBX__*`` variable).
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from enum import IntEnum
from typing import Any, TypeVar

import click

from ..settings import load_settings
from ..voispeed import envelope
from ..voispeed.codes import CallableType, CrudAction, CrudEntityType, GatewayType
from ..voispeed.envelope import InvalidRequest, PbxError, SoapRequest, build_envelope

F = TypeVar("F", bound=Callable[..., Any])

#: Command element -> the option that fills it, so errors name what the user typed.
_OPTION_OF = {
    "param1": "--user",
    "param2": "--call-id",
    "call_req_number": "--number",
    "call_req_device_id": "--device",
    "call_req_ext_id": "--external-id",
    "call_request_calling_id": "--calling-id",
    "call_request_called_id": "--called-id",
    "call_request_calling_type": "--calling-type",
    "call_request_called_type": "--called-type",
    "call_request_calling_number": "--calling-number",
    "call_request_called_number": "--called-number",
    "call_request_external_id": "--external-id",
    "call_request_device_id": "--device",
    "call_divert_callid": "--call-id",
    "call_divert_recipient": "--recipient",
    "call_transfer_callidfrom": "--from-call",
    "call_transfer_callidto": "--to-call",
    "call_device_switch_id": "--device",
    "call_pick_number": "--number",
    "call_pick_device_id": "--device",
    "crud_event_action": "--action",
    "crud_event_entity_type": "--entity-type",
    "crud_event_entity_subtype": "--entity-subtype",
    "crud_event_entity_id": "--entity-id",
}


class EnumChoice(click.Choice[str]):
    """A choice among an IntEnum's names (``wan-user``) or numbers (``8``)."""

    def __init__(self, enum: type[IntEnum]) -> None:
        self.enum = enum
        names = [m.name.lower().replace("_", "-") for m in enum]
        super().__init__(names + [str(m.value) for m in enum], case_sensitive=False)

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        if isinstance(value, self.enum):
            return value
        text = str(super().convert(value, param, ctx))
        if text.isdigit():
            return self.enum(int(text))
        return self.enum[text.upper().replace("-", "_")]

    def get_metavar(self, param: click.Parameter, ctx: click.Context | None = None) -> str:
        return "[" + "|".join(m.name.lower().replace("_", "-") for m in self.enum) + "]"


def _common(func: F) -> F:
    """The options every subcommand has."""
    func = click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")(func)
    func = click.option(
        "--show-secrets", is_flag=True, help="With --dry-run, print the real password hash."
    )(func)
    func = click.option(
        "--dry-run", is_flag=True, help="Print the envelope that would be sent; send nothing."
    )(func)
    return func


def _user_option(func: F) -> F:
    return click.option(
        "--user", required=True, help="The PBX user the command is for (param1), auth-Name@domain."
    )(func)


def _call_id_option(func: F) -> F:
    return click.option(
        "--call-id",
        required=True,
        help="The user call id, e.g. 000012A1 (dec:4768 for a monitor table's decimal id).",
    )(func)


def _build(make: Callable[[], SoapRequest]) -> SoapRequest:
    """Run an envelope builder; turn a bad argument into a usage error naming the option."""
    try:
        return make()
    except InvalidRequest as exc:
        option = _OPTION_OF.get(exc.field, exc.field)
        raise click.BadParameter(exc.reason, param_hint=f"'{option}'") from None


def _run(make: Callable[[], SoapRequest], dry_run: bool, show_secrets: bool, as_json: bool) -> None:
    request = _build(make)
    settings = load_settings().pbx
    if dry_run:
        data = build_envelope(
            settings, request.command, request.fields, mask_password=not show_secrets
        )
        click.echo(f"POST {settings.soap_url}", err=True)
        click.echo(f"SOAPAction: {envelope.soap_action(settings, request.command)}", err=True)
        click.echo("Content-Type: text/xml; charset=utf-8", err=True)
        click.echo(data.decode("utf-8"))
        return

    from ..voispeed.soap import SoapClient, SoapOutcomeUnknown

    try:
        with SoapClient(settings) as client:
            result = client.send(request)
    except SoapOutcomeUnknown as exc:
        click.echo(f"callbridge pbx: {exc}", err=True)
        if exc.external_id:
            click.echo(
                "  check the call's events for this external id before trying again", err=True
            )
        sys.exit(1)
    except PbxError as exc:
        click.echo(f"callbridge pbx: {exc}", err=True)
        sys.exit(1)

    values = dict(result.values)
    if as_json:
        payload: dict[str, Any] = {"command": result.command, "ok": True, "values": values}
        if request.external_id:
            payload["external_id"] = request.external_id
        click.echo(json.dumps(payload, indent=2, sort_keys=True))
        return
    click.echo(f"{result.command}: accepted by the PBX")
    if request.external_id:
        click.echo(f"  external_id: {request.external_id}")
    for key, value in values.items():
        click.echo(f"  {key}: {value}")


@click.group()
def pbx() -> None:
    """Send the PBX's SOAP commands, or check which dialect answers (`pbx check`)."""


@pbx.command("call-req")
@_user_option
@click.option("--number", required=True, help="The number to call.")
@click.option("--device", help="The device to call from, e.g. 000012A0.")
@click.option("--external-id", help="Your id for the call (default: a new one).")
@_common
def call_req_cmd(
    user: str,
    number: str,
    device: str | None,
    external_id: str | None,
    dry_run: bool,
    show_secrets: bool,
    as_json: bool,
) -> None:
    """CallReq: USER calls NUMBER (click-to-call)."""
    _run(
        lambda: envelope.call_req(user, number, device, external_id),
        dry_run,
        show_secrets,
        as_json,
    )


@pbx.command("call-req-ext")
@_user_option
@click.option("--calling-id", required=True, help="Id of the calling entity.")
@click.option("--called-id", required=True, help="Id of the called entity.")
@click.option("--calling-type", type=EnumChoice(CallableType), default="user", show_default=True)
@click.option("--called-type", type=EnumChoice(CallableType), default="user", show_default=True)
@click.option("--calling-number", default="", help="Calling number.")
@click.option("--called-number", default="", help="Called number.")
@click.option("--device", help="The device to use, e.g. 000012A0.")
@click.option("--external-id", help="Your id for the call (default: a new one).")
@click.option("--record/--no-record", default=False, help="Record the call.")
@_common
def call_req_ext_cmd(
    user: str,
    calling_id: str,
    called_id: str,
    calling_type: CallableType,
    called_type: CallableType,
    calling_number: str,
    called_number: str,
    device: str | None,
    external_id: str | None,
    record: bool,
    dry_run: bool,
    show_secrets: bool,
    as_json: bool,
) -> None:
    """CallReqExt: a call between any two entities (user, group, gateway, IVR, ...)."""
    _run(
        lambda: envelope.call_req_ext(
            user,
            calling_id=calling_id,
            called_id=called_id,
            calling_type=calling_type,
            called_type=called_type,
            calling_number=calling_number,
            called_number=called_number,
            device_id=device,
            external_id=external_id,
            record=record,
        ),
        dry_run,
        show_secrets,
        as_json,
    )


def _simple(name: str, builder: Callable[[str, str], SoapRequest], doc: str) -> None:
    """Register a command that takes only the user and the user call id."""

    @_user_option
    @_call_id_option
    @_common
    def command(user: str, call_id: str, dry_run: bool, show_secrets: bool, as_json: bool) -> None:
        _run(lambda: builder(user, call_id), dry_run, show_secrets, as_json)

    command.__doc__ = doc
    pbx.command(name)(command)


_simple("call-accept", envelope.call_accept, "CallAccept: answer a ringing call.")
_simple("call-hold", envelope.call_hold, "CallHold: put a call on hold.")
_simple("call-retrieve", envelope.call_retrieve, "CallRetrieve: take a call off hold.")
_simple("call-disconnect", envelope.call_disconnect, "CallDisconnect: hang up a call.")
_simple("call-rec-start", envelope.call_rec_start, "CallRecStart: start recording a call.")
_simple("call-rec-stop", envelope.call_rec_stop, "CallRecStop: stop recording a call.")


@pbx.command("call-divert")
@_user_option
@_call_id_option
@click.option("--recipient", required=True, help="The extension to divert to.")
@_common
def call_divert_cmd(
    user: str, call_id: str, recipient: str, dry_run: bool, show_secrets: bool, as_json: bool
) -> None:
    """CallDivert: send a call to another extension."""
    _run(lambda: envelope.call_divert(user, call_id, recipient), dry_run, show_secrets, as_json)


@pbx.command("call-transfer")
@_user_option
@click.option("--from-call", required=True, help="The user call id to transfer.")
@click.option(
    "--to-call",
    required=True,
    help="The user call id that receives it (not an extension: see call-divert).",
)
@_common
def call_transfer_cmd(
    user: str, from_call: str, to_call: str, dry_run: bool, show_secrets: bool, as_json: bool
) -> None:
    """CallTransfer: join one call to another."""
    _run(lambda: envelope.call_transfer(user, from_call, to_call), dry_run, show_secrets, as_json)


@pbx.command("call-device-switch")
@_user_option
@_call_id_option
@click.option("--device", required=True, help="The device to move the call to.")
@_common
def call_device_switch_cmd(
    user: str, call_id: str, device: str, dry_run: bool, show_secrets: bool, as_json: bool
) -> None:
    """CallDeviceSwitch: move a running call to another device."""
    _run(lambda: envelope.call_device_switch(user, call_id, device), dry_run, show_secrets, as_json)


@pbx.command("call-pick")
@_user_option
@click.option("--number", required=True, help="The extension whose call to pick up.")
@click.option("--device", required=True, help="The device to pick it up on.")
@_common
def call_pick_cmd(
    user: str, number: str, device: str, dry_run: bool, show_secrets: bool, as_json: bool
) -> None:
    """CallPick: pick up a call ringing on another extension."""
    _run(lambda: envelope.call_pick(user, number, device), dry_run, show_secrets, as_json)


@pbx.command("crud-event")
@click.option("--action", type=EnumChoice(CrudAction), required=True)
@click.option("--entity-type", type=EnumChoice(CrudEntityType), required=True)
@click.option(
    "--entity-subtype", type=EnumChoice(GatewayType), help="Only for --entity-type gateway."
)
@click.option("--entity-id", required=True, help="The entity's id, e.g. 00000004.")
@_common
def crud_event_cmd(
    action: CrudAction,
    entity_type: CrudEntityType,
    entity_subtype: GatewayType | None,
    entity_id: str,
    dry_run: bool,
    show_secrets: bool,
    as_json: bool,
) -> None:
    """CRUDevent: tell the PBX to act on one of its entities."""
    _run(
        lambda: envelope.crud_event(action, entity_type, entity_subtype, entity_id),
        dry_run,
        show_secrets,
        as_json,
    )


@pbx.command("check")
@click.option("--json", "as_json", is_flag=True, help="Print the findings as JSON.")
def check_cmd(as_json: bool) -> None:
    """Which dialect (SOAP, SERI) answers at the configured URLs and whether the credentials
    work; places no call. Exit 0 when the configured dialect (CALLBRIDGE_PBX__DIALECT)
    answers and takes the credentials, 1 otherwise."""
    from ..voispeed.probe import check

    settings = load_settings().pbx
    probes = check(settings)
    configured = probes[0]
    if as_json:
        payload = {"dialect": settings.dialect, "probes": [p.as_dict() for p in probes]}
        click.echo(json.dumps(payload, indent=2, sort_keys=True))
    else:
        click.echo(f"configured dialect (CALLBRIDGE_PBX__DIALECT): {settings.dialect}")
        for probe in probes:
            answers = "answers" if probe.answers else "does not answer"
            click.echo(
                f"  {probe.dialect:4}  {probe.url}: {answers}; credentials {probe.credentials}"
                f" ({probe.detail})"
            )
        other = probes[1]
        if not configured.answers and other.ok:
            click.echo(
                f"the PBX answers in the {other.dialect} dialect: "
                f"set CALLBRIDGE_PBX__DIALECT={other.dialect}"
            )
    sys.exit(0 if configured.ok else 1)
