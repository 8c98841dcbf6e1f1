"""examples/single-file/missed_calls_log.py: loaded by CALLBRIDGE_PLUGINS, logs missed calls."""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from types import ModuleType

from callbridge.testing import CallbridgeEnv, ScenarioRunner

ROOT = Path(__file__).resolve().parents[2]
PLUGIN = ROOT / "examples" / "single-file" / "missed_calls_log.py"


def _load() -> ModuleType:
    spec = importlib.util.spec_from_file_location("missed_calls_log_example", PLUGIN)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_callbridge_plugins_shows_it_active(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CALLBRIDGE_")}
    env.update(CALLBRIDGE_PLUGINS=str(PLUGIN), CALLBRIDGE_DATA_DIR=str(tmp_path))
    proc = subprocess.run(
        [str(Path(sys.executable).parent / "callbridge"), "plugins", "--json"],
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    infos = {info["name"]: info for info in json.loads(proc.stdout)}
    mine = infos["missed-calls-log"]
    assert mine["state"] == "active", mine
    assert mine["source"] == "CALLBRIDGE_PLUGINS"
    assert mine["hooks"] == ["log_call"]


def test_missed_calls_are_logged_once(
    callbridge_env: CallbridgeEnv, scenarios: Callable[..., ScenarioRunner]
) -> None:
    module = _load()
    runner = scenarios(module)
    runner.inbound_answered()
    missed = runner.missed(remote="0298765432")
    log = runner.settings.data_dir / "missed-calls.log"
    lines = log.read_text().splitlines()
    assert len(lines) == 1
    assert "+390298765432" in lines[0]
    # A retried delivery (the same record again) writes nothing new.
    module.log_call(missed.records[0])
    assert log.read_text().splitlines() == lines
