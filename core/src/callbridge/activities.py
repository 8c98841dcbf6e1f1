"""What every CRM's call activity says, whatever the CRM calls it: parties, summary, agent.

Connectors write one activity per finished call (HubSpot's call engagement, Pipedrive's call
log, ...). The parts that do not depend on the CRM live here so that each connector says
them the same way: who called whom, the plain-text summary lines of the activity's body, and
the keys under which a connector's agent map looks the PBX user up.
"""

from __future__ import annotations

from .models import Call, CallRecord, Direction


def call_parties(call: Call) -> tuple[str, str]:
    """``(from, to)``: the remote number (E.164 when known) on one side, the agent's extension
    (else PBX user) on the other, by the call's direction."""
    local = call.extension or call.user_id or ""
    remote = call.remote_e164 or call.remote_number
    if call.direction is Direction.OUTBOUND:
        return local, remote
    return remote, local


def summary_lines(record: CallRecord, outcome: str) -> list[str]:
    """The plain-text lines of an activity's body: direction, numbers, ``outcome`` (in the
    CRM's words), talk and ring time, group, the PBX identity and the callbridge call key.

    A connector escapes them for its CRM's rich text and may add its own lines.
    """
    call = record.call
    from_number, to_number = call_parties(call)
    lines = [
        f"Direction: {call.direction.value}",
        f"From: {from_number or '-'}",
        f"To: {to_number or '-'}",
        f"Outcome: {outcome}",
        f"Talk time: {record.duration_s} s, ring time: {record.ring_s} s",
    ]
    if call.group:
        lines.append(f"Group: {call.group}")
    if call.identity is not None:
        who = call.identity.display_name
        if call.identity.department:
            who = f"{who} ({call.identity.department})" if who else call.identity.department
        if who:
            lines.append(f"PBX identity: {who}")
    lines.append(f"callbridge call: {call.key}")
    return lines


def agent_keys(call: Call) -> list[str]:
    """The PBX extension and user of the call's agent (and of the click-to-call request that
    started it), in the order a connector's "PBX agent -> CRM user" map is searched."""
    keys = [call.extension, call.user_id]
    if call.originate is not None:
        keys += [call.originate.extension, call.originate.user]
    present = [k for k in keys if k]
    return [k for i, k in enumerate(present) if k not in present[:i]]  # each once


def email_keys(keys: list[str]) -> list[str]:
    """The keys that are e-mail addresses (a PBX user named ``mario@acme.example``)."""
    return [k for k in keys if "@" in k and "." in k.rpartition("@")[2]]
