"""A data directory callbridge cannot write: one readable line naming the path, no traceback."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
from fault_support import tiny_disk
from service_support import CALLBRIDGE, service_env

pytestmark = pytest.mark.slow


def _serve(data: Path, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [CALLBRIDGE, "serve", "--port", "1"],
        cwd=cwd,
        env=service_env(data),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_data_dir_under_a_file(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("not a directory")
    result = _serve(tmp_path / "file" / "data", tmp_path)
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr
    (line,) = [x for x in result.stderr.splitlines() if "cannot be opened" in x]
    assert str(tmp_path / "file" / "data" / "journal.sqlite3") in line
    assert "CALLBRIDGE_DATA_DIR" in line


def test_read_only_data_dir(tmp_path: Path) -> None:
    with tiny_disk(tmp_path / "data", size="1m", options="ro") as data:
        result = _serve(data, tmp_path)
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr
    (line,) = [x for x in result.stderr.splitlines() if "cannot be opened" in x]
    assert str(data) in line and "writable disk" in line
