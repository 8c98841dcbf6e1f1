"""The check behind ``callbridge demo --once``: it finds missing, extra and misplaced activities."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from callbridge.demo.directory import DemoDirectory
from callbridge.demo.expect import Played, check_played
from callbridge.plugins.builtin.directory import DirectoryActivity
from callbridge.sim import MemorySink, Simulator
from callbridge.sim.scenarios import ScenarioPlayer, find_scenario


@pytest.fixture
def directory(tmp_path: Path) -> DemoDirectory:
    return DemoDirectory.seeded(tmp_path / "directory.sqlite3")


def _played(name: str) -> Played:
    """Run a scenario on the simulator alone (events in memory), as the demo would."""
    sim = Simulator(sink=MemorySink(), queue_events=False)
    with ScenarioPlayer(sim, realtime=False) as runner:
        scenario = find_scenario(name)
        return Played(scenario, runner.run(scenario))


def _activity(
    played: Played, extension: str, *, outcome: str, contact_id: int | None, number: str
) -> DirectoryActivity:
    ucid = next(u for u, ext in played.result.owners().items() if ext == extension)
    now = datetime.now(UTC)
    return DirectoryActivity(
        id=1,
        idempotency_key=f"callbridge:1:{ucid}:directory",
        call_key=f"1:{ucid}",
        direction="inbound",
        remote_number=number,
        local_extension=extension,
        ring_at=now,
        answer_at=None,
        end_at=now,
        duration_s=0,
        outcome=outcome,
        hung_up_by="remote",
        contact_id=contact_id,
        contact_name=None,
        owner_extension=None,
        created_at=now,
    )


def _no_external_id(key: str) -> str | None:
    return None


def test_the_right_activity_passes(directory: DemoDirectory) -> None:
    played = _played("group-answered")
    mario = directory.find("+39 06 1234 5678")[0]
    right = _activity(
        played, "202", outcome="answered", contact_id=mario.id, number="+390612345678"
    )
    assert check_played(played, [right], directory, _no_external_id) == []


def test_missing_extra_and_misplaced_activities_are_named(directory: DemoDirectory) -> None:
    played = _played("group-answered")
    mario = directory.find("+39 06 1234 5678")[0]
    assert check_played(played, [], directory, _no_external_id) == [
        "202: expected 1 activity inbound answered with +39 06 1234 5678, found 0 "
        "(activities of 202: none)"
    ]
    member = _activity(played, "201", outcome="missed", contact_id=mario.id, number="+390612345678")
    right = _activity(
        played, "202", outcome="answered", contact_id=mario.id, number="+390612345678"
    )
    problems = check_played(played, [right, member], directory, _no_external_id)
    assert problems == ["201: expected no activity, got 1 (inbound missed)"]
    wrong = _activity(played, "202", outcome="answered", contact_id=None, number="+390612345678")
    (problem,) = check_played(played, [wrong], directory, _no_external_id)
    assert "is on contact None" in problem and f"expected {mario.id}" in problem


def test_an_ambiguous_number_expects_no_contact(directory: DemoDirectory) -> None:
    played = _played("inbound-missed")
    assert len(directory.find("+39 02 8765 4321")) == 2
    unlinked = _activity(played, "203", outcome="missed", contact_id=None, number="+390287654321")
    assert check_played(played, [unlinked], directory, _no_external_id) == []
    guessed = directory.find("+39 02 8765 4321")[0].id
    linked = _activity(played, "203", outcome="missed", contact_id=guessed, number="+390287654321")
    assert check_played(played, [linked], directory, _no_external_id) != []
