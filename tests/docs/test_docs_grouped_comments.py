"""One ``#:`` comment describes every field of the group that follows it.

Settings group related fields under one comment (``max_attempts``, ``max_age``,
``backoff_initial``, ``backoff_max``); the generated configuration reference must describe
each of them, and stop the group where the source does.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType

from pydantic import BaseModel, Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from callbridge.settings import DispatchSettings
from callbridge.testing.variables import field_comments, variables

ROOT = Path(__file__).resolve().parents[2]
GROUP = "Delivery retries: attempts, total age in seconds, and the backoff bounds."


def _hooks() -> ModuleType:
    spec = importlib.util.spec_from_file_location("cb_docs_hooks_grouped", ROOT / "docs/hooks.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


class _Grouped(BaseModel):
    """Every way a group can end."""

    ungrouped: int = 0
    #: Shared by a, b and c,
    #: over two lines.
    a: int = 1
    b: int = Field(
        default=2,
        ge=0,
    )
    c: str = "x"  # a trailing comment does not end the group

    d: int = 4
    #: Only e.
    e: int = 5
    # a plain comment ends the group
    f: int = 6
    #: g alone
    g: int = 7
    #: h and i
    h: int = 8
    i: int = 9

    def method(self) -> int:
        """A method at the class's indentation ends the group too."""
        return self.i


class _Env(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="CBGROUPED_")

    #: Both timeouts, in seconds.
    connect_timeout: float = 1.0
    read_timeout: float = 2.0


def test_a_comment_covers_the_fields_that_follow_it() -> None:
    comments = field_comments(_Grouped)
    shared = "Shared by a, b and c, over two lines."
    assert {name: comments.get(name) for name in "abcdefghi"} == {
        "a": shared,
        "b": shared,
        "c": shared,
        "d": None,
        "e": "Only e.",
        "f": None,
        "g": "g alone",
        "h": "h and i",
        "i": "h and i",
    }
    assert "ungrouped" not in comments


def test_dispatch_retry_fields_all_have_the_description() -> None:
    described = {v.path[-1]: v.description for v in variables(DispatchSettings, "X_")}
    for name in ("max_attempts", "max_age", "backoff_initial", "backoff_max"):
        assert described[name] == GROUP, name
    assert described["workers"].startswith("Worker threads of the engine")
    assert described["cache_size"] != described["cache_ttl"]


def test_the_configuration_reference_shows_a_group_as_one_row() -> None:
    """The four names in one row, the sentence once (not repeated as if each had its own)."""
    reference = _hooks().configuration_reference()
    [row] = [r for r in reference.splitlines() if "`CALLBRIDGE_DISPATCH__MAX_ATTEMPTS`" in r]
    names = "<br>".join(
        f"`CALLBRIDGE_DISPATCH__{n}`"
        for n in ("MAX_ATTEMPTS", "MAX_AGE", "BACKOFF_INITIAL", "BACKOFF_MAX")
    )
    assert row.startswith(f"| {names} |"), row
    assert row.rstrip().endswith(f"| {GROUP} |"), row
    assert reference.count(GROUP) == 1


def test_variables_of_a_settings_class_share_the_comment() -> None:
    assert [(v.name, v.description) for v in variables(_Env)] == [
        ("CBGROUPED_CONNECT_TIMEOUT", "Both timeouts, in seconds."),
        ("CBGROUPED_READ_TIMEOUT", "Both timeouts, in seconds."),
    ]
