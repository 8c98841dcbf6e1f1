"""The console plugin: one readable line per pop and per logged call."""

from __future__ import annotations

import io
from collections.abc import Callable
from pathlib import Path

import pytest

from callbridge.models import CallRecord, CallState, Contact, ScreenPop
from callbridge.plugins.builtin.console import ConsolePlugin
from callbridge.plugins.manager import load_plugins
from callbridge.settings import Settings

MARIO = Contact(connector="directory", record_id="1", name="Mario Rossi", company="Rossi Srl")


def test_pop_is_one_readable_line(make_pop: Callable[..., ScreenPop]) -> None:
    out = io.StringIO()
    plugin = ConsolePlugin(file=out)
    plugin.screen_pop(make_pop(contacts={"directory": MARIO}))
    plugin.screen_pop(make_pop(state=CallState.ANSWERED))
    first, second = out.getvalue().splitlines()
    assert "ringing" in first
    assert "+390612345678 -> ext 201" in first
    assert "Mario Rossi (Rossi Srl) [directory]" in first
    assert "answered" in second
    assert "no contact found" in second


def test_log_call_prints_and_returns_a_ref(make_record: Callable[..., CallRecord]) -> None:
    out = io.StringIO()
    ref = ConsolePlugin(file=out).log_call(make_record(contacts={"directory": MARIO}))
    assert (ref.connector, ref.record_type, ref.record_id) == ("console", "console", "c1:0000AB12")
    [line] = out.getvalue().splitlines()
    assert "logged" in line
    assert "answered 2m05s, hung up by remote" in line
    assert "Mario Rossi" in line


def test_markup_in_data_is_printed_verbatim(make_pop: Callable[..., ScreenPop]) -> None:
    out = io.StringIO()
    odd = Contact(connector="x", record_id="2", name="[bold red]Eve[/]")
    ConsolePlugin(file=out).screen_pop(make_pop(contacts={"x": odd}))
    assert "[bold red]Eve[/]" in out.getvalue()


def test_stream_setting_writes_to_a_file(
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    settings: Callable[..., Settings],
    make_pop: Callable[..., ScreenPop],
) -> None:
    log = tmp_path / "pops.log"
    monkeypatch.setenv("CALLBRIDGE_CONSOLE_STREAM", str(log))
    plugins = load_plugins(settings(), entry_points=False)
    assert plugins.get("console").state == "active"
    plugins.screen_pop(make_pop(contacts={"directory": MARIO}))
    plugins.shutdown(None)  # closes the file
    assert "Mario Rossi" in log.read_text(encoding="utf-8")
    assert "\x1b[" not in log.read_text(encoding="utf-8")  # no colour codes in a file


def test_stream_in_a_missing_directory_fails(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, settings: Callable[..., Settings]
) -> None:
    monkeypatch.setenv("CALLBRIDGE_CONSOLE_STREAM", str(tmp_path / "nowhere" / "pops.log"))
    info = load_plugins(settings(), entry_points=False).get("console")
    assert info.state == "failed"
    assert "CALLBRIDGE_CONSOLE_STREAM: no such directory" in (info.reason or "")


#: A process that logs one call through the console as ``callbridge`` configures it, then
#: dies by kill -9 before anything could record the delivery as done.
_CRASHING_DELIVERY = """
import os, signal, sys
from callbridge.models import CallRecord
from callbridge.plugins.manager import load_plugins
from callbridge.settings import Settings

plugins = load_plugins(Settings(data_dir=sys.argv[1]), entry_points=False)
record = CallRecord.model_validate_json(sys.argv[2])
plugins.log_call("console", record)
os.kill(os.getpid(), signal.SIGKILL)
"""


def test_a_call_retried_after_a_crash_is_printed_once(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, make_record: Callable[..., CallRecord]
) -> None:
    import subprocess
    import sys

    out = tmp_path / "console.log"
    record = make_record(contacts={"directory": MARIO}).model_dump_json()
    env = {k: v for k, v in __import__("os").environ.items() if not k.startswith("CALLBRIDGE_")}
    env.update({"CALLBRIDGE_CONSOLE_STREAM": str(out), "CALLBRIDGE_CONSOLE_ENABLED": "true"})
    for _attempt in range(2):  # the first attempt and the retry after the crash
        done = subprocess.run(
            [sys.executable, "-c", _CRASHING_DELIVERY, str(tmp_path / "data"), record],
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert done.returncode == -9, done.stderr
    assert sum("logged" in line for line in out.read_text().splitlines()) == 1


def test_the_same_key_is_printed_once_in_a_process(
    tmp_path: Path, settings: Callable[..., Settings], make_record: Callable[..., CallRecord]
) -> None:
    out = io.StringIO()
    plugin = ConsolePlugin(file=out)
    plugin.configure(None, settings())
    record = make_record()
    first, again = plugin.log_call(record), plugin.log_call(record)
    assert first == again
    assert len(out.getvalue().splitlines()) == 1
