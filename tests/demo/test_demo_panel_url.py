"""``callbridge demo`` prints the agent panel's URL whole at 80 columns, and ``--open`` opens it.

A URL cut across two lines cannot be copied (the token is the part that gets cut), so both
views are run as real processes at 80 columns: ``--plain`` on a pipe (rich wraps piped output
at ``COLUMNS``) and the live view on a pseudo-terminal of 80 columns. ``--open`` goes through
the ``webbrowser`` module, which runs ``$BROWSER``: here a script that writes down its URL.
"""

from __future__ import annotations

import fcntl
import os
import pty
import re
import select
import struct
import subprocess
import sys
import termios
import time
from pathlib import Path

import pytest

CALLBRIDGE = Path(sys.executable).parent / "callbridge"
#: The demo's API token is ``demo-api-`` and ``secrets.token_urlsafe(18)``: 24 characters.
PANEL_URL = re.compile(r"http://127\.0\.0\.1:\d+/agent#extension=201&token=demo-api-[\w-]{24}")
ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)")
DEMO = ["demo", "--once", "--speed", "8", "--scenario", "inbound-rejected"]

pytestmark = pytest.mark.slow


def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CALLBRIDGE_")}
    env.update(extra)
    return env


def test_plain_output_at_80_columns_keeps_the_url_whole_and_open_opens_it(
    tmp_path: Path,
) -> None:
    opened = tmp_path / "opened.txt"
    browser = tmp_path / "browser"
    browser.write_text(
        f"#!{sys.executable}\nimport sys, pathlib\n"
        f"pathlib.Path({str(opened)!r}).write_text(sys.argv[1])\n"
    )
    browser.chmod(0o755)
    done = subprocess.run(
        [str(CALLBRIDGE), *DEMO, "--plain", "--open"],
        cwd=tmp_path,
        env=_env(COLUMNS="80", BROWSER=f"{browser} %s"),
        capture_output=True,
        text=True,
        timeout=150,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    printed = PANEL_URL.search(done.stdout)
    assert printed is not None, done.stdout
    assert len(printed.group()) > 80  # the case that used to be cut
    assert opened.read_text() == printed.group()


def _run_on_terminal(args: list[str], columns: int, cwd: Path) -> str:
    """Run ``callbridge`` on a pseudo-terminal ``columns`` wide; everything it wrote."""
    leader, follower = pty.openpty()
    fcntl.ioctl(follower, termios.TIOCSWINSZ, struct.pack("HHHH", 40, columns, 0, 0))
    env = _env(TERM="xterm-256color")
    env.pop("COLUMNS", None)
    process = subprocess.Popen(
        [str(CALLBRIDGE), *args],
        cwd=cwd,
        env=env,
        stdin=follower,
        stdout=follower,
        stderr=follower,
        close_fds=True,
    )
    os.close(follower)
    chunks: list[bytes] = []
    deadline = time.monotonic() + 150
    try:
        while time.monotonic() < deadline:
            ready, _, _ = select.select([leader], [], [], 0.5)
            if ready:
                try:
                    chunk = os.read(leader, 65536)
                except OSError:  # EIO: the process closed its terminal
                    break
                if not chunk:
                    break
                chunks.append(chunk)
            elif process.poll() is not None:
                break
        assert process.wait(timeout=30) == 0, b"".join(chunks).decode(errors="replace")
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
        os.close(leader)
    return b"".join(chunks).decode(errors="replace")


def test_live_view_on_an_80_column_terminal_keeps_the_url_whole(tmp_path: Path) -> None:
    output = ANSI.sub("", _run_on_terminal(DEMO, 80, tmp_path))
    assert "All 1 scenarios wrote exactly the expected activities." in output, output
    assert PANEL_URL.search(output) is not None, output
