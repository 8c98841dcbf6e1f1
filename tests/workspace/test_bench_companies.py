"""The parts of ``bench/companies.py`` that do not need a running callbridge: the companies
file it writes, the spread load's requests, and the memory arithmetic on real processes."""

from __future__ import annotations

import subprocess
import sys
import textwrap
import tomllib
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest

from callbridge.journal.tenancy import COMPANY_NAME_RE
from callbridge.testing import wait_until

BENCH = Path(__file__).resolve().parents[2] / "bench"
sys.path.insert(0, str(BENCH))

import companies  # noqa: E402
import loadgen  # noqa: E402


def test_the_companies_file_has_n_companies_each_with_directory_and_webhook(
    tmp_path: Path,
) -> None:
    data = tomllib.loads(companies.companies_toml(100, tmp_path))["companies"]
    assert len(data) == 100
    assert all(COMPANY_NAME_RE.match(name) for name in data)
    ids = {c["company_id"] for c in data.values()}
    tokens = {c["ingress_token"] for c in data.values()}
    assert len(ids) == len(tokens) == 100
    c7 = data["c007"]
    assert c7["company_id"] == "7"
    assert c7["ingress_token"] == companies.TOKEN_FORMAT.format(n=7)
    assert c7["plugins"]["directory"]["database"] == str(tmp_path / "c007" / "directory.sqlite3")
    assert c7["plugins"]["webhook"]["pops"] is False
    assert c7["pbx_client"]["agents"] == ["201=auth-agent@c007"]


def test_the_spread_load_sends_each_company_its_own_id_and_token() -> None:
    seen = set()
    for seq in range(6):
        request = loadgen.make_request(
            "127.0.0.1", 80, "/pbx/events?", seq, "salt", spread=3, token_format="tok-{n:03d}"
        )
        target = request.split(b" ")[1].decode()
        query = parse_qs(urlsplit(target).query)
        assert query["ssn_event"] == ["16"]
        seen.add((query["company_id"][0], query["token"][0]))
    assert seen == {("1", "tok-001"), ("2", "tok-002"), ("3", "tok-003")}
    plain = loadgen.make_request("h", 1, "/pbx/events?token=T", 1, "s").decode()
    assert "company_id" not in plain and "token=T&ssn_event=16" in plain


def test_memory_per_company_is_the_slope_between_the_largest_sizes() -> None:
    mib = 2**20
    assert companies.per_company({1: 90 * mib, 10: 100 * mib, 100: 145 * mib}) == mib / 2


def test_rss_counts_the_children_of_the_process(tmp_path: Path) -> None:
    """A real parent holding 40 MB with a child holding 40 MB: both are counted."""
    script = textwrap.dedent(
        """
        import subprocess, sys, time
        hold = "x = bytearray(40 * 2**20); x[::4096] = b'y' * len(x[::4096]); time.sleep(60)"
        child = subprocess.Popen([sys.executable, "-c", "import time\\n" + hold])
        exec(hold)
        """
    )
    parent = subprocess.Popen([sys.executable, "-c", script])
    try:
        own = 0

        def both_hold_memory() -> bool:
            nonlocal own
            own = companies.process_tree_rss(parent.pid)
            return own > 80 * 2**20

        wait_until(both_hold_memory, "parent and child holding 40 MB each", timeout=60)
        assert own > 80 * 2**20
        assert len(companies.process_tree(parent.pid)) == 2
    finally:
        parent.kill()
        parent.wait(30)


@pytest.mark.skipif(
    companies.loader_available(), reason="the companies loader is here: the bench runs"
)
def test_without_the_loader_the_bench_says_so_and_skips(capsys: pytest.CaptureFixture[str]) -> None:
    companies.main()
    assert "skipped" in capsys.readouterr().out
