"""Compare the activities a scenario produced with the ones it declares (``[[expect]]``).

A scenario's activities are the directory rows whose call key names one of its user calls.
Each expectation is matched on extension, direction, outcome, remote number, external id and
contact; ``count = 0`` means "nothing for this extension" (group members who did not answer);
and there must be no activity beyond the expected ones: exactly one per call.

The expected contact follows the directory's rule: for a click-to-call, the record the agent
clicked from; otherwise the one contact owning the remote number, or none when no contact or
several share it (an ambiguous number is never guessed).

On the SERI dialect a call nobody answered is a ``lost_call`` (or a disconnect) whether the
callee refused it or it rang out: the module has no event for a refusal, so an expected
``rejected`` reads as ``missed`` there (``SERI_OUTCOMES``; docs/voispeed.md).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from ..engine.tracker_leg import user_call_id_of
from ..numbers import to_e164
from ..plugins.builtin.directory import DirectoryActivity, DirectoryPlugin
from ..sim.scenarios import Expectation, PlayResult, Scenario


@dataclass
class Played:
    """One run of a scenario: what it produced and which records the demo clicked from."""

    scenario: Scenario
    result: PlayResult
    #: call label -> directory contact id the click-to-call was placed from
    clicked: dict[str, int] = field(default_factory=dict)
    #: The PBX dialect it was played on (``soap`` or ``seri``).
    dialect: str = "soap"

    def user_call_ids(self) -> set[str]:
        """The user call ids of every leg of the run."""
        return set(self.result.owners())

    def expected_total(self) -> int:
        """How many activities the scenario should produce."""
        return sum(max(e.count, 0) for e in self.scenario.expect)


def activities_of(
    played: Played, activities: Sequence[DirectoryActivity]
) -> list[DirectoryActivity]:
    """The activities whose call is one of the run's user calls."""
    ids = played.user_call_ids()
    return [a for a in activities if user_call_id_of(a.call_key) in ids]


def _same_number(a: str | None, b: str | None, region: str) -> bool:
    if a is None or b is None:
        return a == b
    return (to_e164(a, region) or a.strip()) == (to_e164(b, region) or b.strip())


def expected_contact(
    expectation: Expectation, played: Played, directory: DirectoryPlugin
) -> tuple[bool, int | None]:
    """(whether to check the contact, the contact id expected)."""
    label = expectation.external_id_of
    if label is not None and label in played.clicked:
        return True, played.clicked[label]
    if expectation.remote_number is None:
        return False, None
    found = directory.find(expectation.remote_number)
    return True, (found[0].id if len(found) == 1 else None)


def check_played(
    played: Played,
    activities: Sequence[DirectoryActivity],
    directory: DirectoryPlugin,
    external_id_of: Callable[[str], str | None],
) -> list[str]:
    """Every difference between the run's activities and its ``[[expect]]``; empty when right.

    ``external_id_of(call_key)`` gives the external id callbridge tied to a call (the journal).
    """
    mine = activities_of(played, activities)
    region = directory.region
    problems: list[str] = []
    for expectation in played.scenario.expect:
        of_extension = [a for a in mine if a.local_extension == expectation.extension]
        if expectation.count <= 0:
            if of_extension:
                problems.append(
                    f"{expectation.extension}: expected no activity, got {len(of_extension)} "
                    f"({', '.join(f'{a.direction} {a.outcome}' for a in of_extension)})"
                )
            continue
        matching = [a for a in of_extension if _matches(a, expectation, played, region)]
        matching = [a for a in matching if _external_id_ok(a, expectation, played, external_id_of)]
        want = _describe(expectation)
        if len(matching) != expectation.count:
            got = ", ".join(f"{a.direction} {a.outcome} {a.remote_number}" for a in of_extension)
            problems.append(
                f"{expectation.extension}: expected {expectation.count} activity {want}, "
                f"found {len(matching)} (activities of {expectation.extension}: {got or 'none'})"
            )
            continue
        check, contact_id = expected_contact(expectation, played, directory)
        if check:
            for activity in matching:
                if activity.contact_id != contact_id:
                    problems.append(
                        f"{expectation.extension}: activity {activity.id} {want} is on contact "
                        f"{activity.contact_id} ({activity.contact_name}), expected {contact_id}"
                    )
    expected = played.expected_total()
    if len(mine) != expected and not problems:
        problems.append(f"expected {expected} activities in all, found {len(mine)}")
    return problems


def foreign_activities(played: Played, others: Sequence[DirectoryActivity]) -> list[str]:
    """A problem per activity of the run found in another company's directory: a company's
    calls are logged in its own CRM only (``others``: another company's activities)."""
    return [
        f"{a.local_extension}: activity {a.id} ({a.direction} {a.outcome}) landed in another "
        "company's directory"
        for a in activities_of(played, others)
    ]


#: Outcomes the SERI dialect cannot tell apart: what the document's outcome reads as there.
SERI_OUTCOMES = {"rejected": "missed"}


def _matches(
    activity: DirectoryActivity, expectation: Expectation, played: Played, region: str
) -> bool:
    if expectation.direction is not None and activity.direction != expectation.direction:
        return False
    outcome = expectation.outcome
    if outcome is not None and played.dialect == "seri":
        outcome = SERI_OUTCOMES.get(outcome, outcome)
    if outcome is not None and activity.outcome != outcome:
        return False
    return expectation.remote_number is None or _same_number(
        activity.remote_number, expectation.remote_number, region
    )


def _external_id_ok(
    activity: DirectoryActivity,
    expectation: Expectation,
    played: Played,
    external_id_of: Callable[[str], str | None],
) -> bool:
    label = expectation.external_id_of
    if label is None:
        return True
    wanted = played.result.external_ids.get(label)
    return wanted is not None and external_id_of(activity.call_key) == wanted


def _describe(expectation: Expectation) -> str:
    parts = [
        expectation.direction or "",
        expectation.outcome or "",
        f"with {expectation.remote_number}" if expectation.remote_number else "",
        f"(external id of {expectation.external_id_of})" if expectation.external_id_of else "",
    ]
    return " ".join(p for p in parts if p) or "of any kind"
