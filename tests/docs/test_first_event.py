"""The quickstart's blocks, run as written: the first event, and a plugin that survives `make`.

The "Your first event" block is taken from docs/quickstart.md and run by bash with `.venv`'s
`callbridge` on PATH (as after `. .venv/bin/activate`), in an empty folder and home; only the
port is changed (8765 may be taken on a shared machine). The Makefile's own sync command is
run against a throwaway environment to show that a plugin installed into it stays.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import socket
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
_SH_BLOCK = re.compile(r"```sh\n(.*?)```", re.S)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def quickstart_block(heading: str) -> str:
    text = (ROOT / "docs/quickstart.md").read_text(encoding="utf-8")
    section = text.split(f"\n## {heading}\n", 1)[1].split("\n## ", 1)[0]
    match = _SH_BLOCK.search(section)
    assert match is not None, heading
    return match.group(1)


@pytest.mark.slow
@pytest.mark.skipif(shutil.which("curl") is None, reason="the block uses curl")
def test_the_first_event_block_runs_as_written(tmp_path: Path) -> None:
    block = quickstart_block("Your first event")
    assert "8765" in block
    port = free_port()
    script = "set -e\n" + block.replace("8765", str(port))
    env = {
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
        "HOME": str(tmp_path),
        "CALLBRIDGE_SERVER__PORT": str(port),  # the block's `serve` listens on the default
    }
    proc = subprocess.Popen(
        ["bash", "-c", script],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    try:
        out, err = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    assert proc.returncode == 0, out + err
    answers = [line for line in out.splitlines() if re.fullmatch(r"(ok|duplicate) \d+", line)]
    assert answers == ["ok 1", "ok 2", "duplicate 2"], out
    assert "inbound" in out and "missed" in out and "201" in out, out
    log = (tmp_path / "serve.log").read_text()
    assert "ringing" in log and "logged" in log, log


def test_the_block_serves_on_the_port_the_docs_name() -> None:
    """The test above changes only the port: the block must use the default one."""
    from callbridge.settings import ServerSettings

    block = quickstart_block("Your first event")
    assert f"127.0.0.1:{ServerSettings().port}" in block
    assert block.count("callbridge serve") == 1 and "kill %1" in block


@pytest.mark.slow
def test_a_plugin_installed_into_the_venv_survives_the_makefile_sync(tmp_path: Path) -> None:
    """`uv pip install -e` a plugin, run the Makefile's sync again: it is still installed
    (an exact sync, without --inexact, would uninstall it: also checked)."""
    uv = shutil.which("uv") or shutil.which("uv", path=str(Path(sys.executable).parent))
    if uv is None:
        pytest.skip("uv is not on PATH")
    makefile = (ROOT / "Makefile").read_text()
    [sync] = re.findall(r"^\t\$\(UV\) (sync .*)$", makefile, re.M)
    args = sync.replace("$(PYTHON)", sys.executable).split()
    assert "--inexact" in args
    env = {**os.environ, "UV_PROJECT_ENVIRONMENT": str(tmp_path / "venv")}
    env.pop("VIRTUAL_ENV", None)

    def run(*argv: str) -> subprocess.CompletedProcess[str]:
        done = subprocess.run(argv, cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
        assert done.returncode == 0, done.stdout + done.stderr
        return done

    run(uv, *args)
    python = str(tmp_path / "venv/bin/python")
    run(python, "-m", "callbridge.cli", "new-plugin", "acme-crm", "--dir", str(tmp_path))
    run(
        uv,
        "pip",
        "install",
        "--python",
        python,
        "--no-deps",
        "-e",
        str(tmp_path / "callbridge-acme-crm"),
    )
    probe = [python, "-c", "import callbridge_acme_crm"]
    run(uv, *args)
    assert subprocess.run(probe, check=False).returncode == 0, "the Makefile's sync removed it"
    run(uv, *[a for a in args if a != "--inexact"])
    assert subprocess.run(probe, check=False, capture_output=True).returncode != 0
