"""``callbridge demo`` through click's runner: one scenario, a failing one, bad options."""

from __future__ import annotations

from pathlib import Path

from click.testing import CliRunner

from callbridge.cli import main

WRONG = """
name = "wrong-expectation"
description = "Answered, but the file says missed: the demo must say so and exit 1."

[[step]]
action = "incoming"
call = "c1"
from = "+39 011 555 0101"
to = "204"

[[step]]
action = "answer"
call = "c1"

[[step]]
action = "hangup"
call = "c1"
by = "remote"

[[expect]]
extension = "204"
direction = "inbound"
outcome = "missed"
"""


def test_once_with_one_scenario_exits_0() -> None:
    result = CliRunner().invoke(
        main, ["demo", "--once", "--plain", "--speed", "8", "--scenario", "inbound-rejected"]
    )
    assert result.exit_code == 0, result.output
    assert "All 1 scenarios wrote exactly the expected activities." in result.output
    assert "activity  directory #1: 204 inbound rejected +390115550101 on Francesca Romano" in (
        result.output
    )


def test_once_exits_1_naming_what_is_missing(tmp_path: Path) -> None:
    scenario = tmp_path / "wrong.toml"
    scenario.write_text(WRONG)
    result = CliRunner().invoke(main, ["demo", "--once", "--plain", "--scenario", str(scenario)])
    assert result.exit_code == 1, result.output
    assert "expected 1 activity inbound missed, found 0" in result.output
    assert "inbound answered" in result.output


def test_a_used_data_dir_and_an_unknown_scenario_are_refused(tmp_path: Path) -> None:
    (tmp_path / "journal.sqlite3").write_bytes(b"")
    used = CliRunner().invoke(main, ["demo", "--once", "--data-dir", str(tmp_path)])
    assert used.exit_code == 2
    assert "already holds a journal" in used.output
    unknown = CliRunner().invoke(main, ["demo", "--scenario", "nope"])
    assert unknown.exit_code == 2
    assert "no scenario 'nope'" in unknown.output


BROKEN = """
name = "broken"
description = "The second step names an extension that is not on the call."

[[step]]
action = "incoming"
call = "c1"
from = "+39 011 555 0101"
to = "204"

[[step]]
action = "reject"
call = "c1"
extension = "201"
"""


def test_a_scenario_that_cannot_be_played_fails_the_run_without_a_traceback(
    tmp_path: Path,
) -> None:
    scenario = tmp_path / "broken.toml"
    scenario.write_text(BROKEN)
    result = CliRunner().invoke(main, ["demo", "--once", "--plain", "--scenario", str(scenario)])
    assert result.exit_code == 1, result.output
    assert "broken: FAILED: could not be played" in result.output
    assert result.exception is None or isinstance(result.exception, SystemExit)
