"""``callbridge serve`` supervises its engine child: restarts it, notices a stopped one, and
serves its metrics. All on a real ``serve`` process with real signals."""

from __future__ import annotations

import os
import signal
from pathlib import Path

import httpx
import pytest
from server_support import INGRESS_TOKEN, wait_until
from service_support import Service, call_events
from test_service_engine_process import _alive, _engine_child

from callbridge.plugins.builtin.directory import DirectoryPlugin

pytestmark = pytest.mark.slow


def _send_call(service: Service, call_id: str) -> None:
    with httpx.Client(base_url=service.url, timeout=10) as client:
        for params in call_events(call_id):
            response = client.get("/pbx/events", params={**params, "token": INGRESS_TOKEN})
            assert response.status_code == 200, response.text


def _metric(text: str, line_start: str) -> float:
    for line in text.splitlines():
        if line.startswith(line_start):
            return float(line.rsplit(" ", 1)[1])
    raise AssertionError(f"no {line_start} in /metrics:\n{text}")


def _activities(service: Service) -> int:
    return len(DirectoryPlugin.open(service.data_dir / "directory.sqlite3").list_activities(100))


def test_killed_engine_is_restarted_and_readyz_fails_while_it_is_down(tmp_path: Path) -> None:
    service = Service(tmp_path / "data").start()
    try:
        first = _engine_child(service)
        os.kill(first, signal.SIGKILL)
        statuses: list[int] = []

        def restarted() -> bool:
            statuses.append(httpx.get(f"{service.url}/readyz", timeout=10).status_code)
            return "engine started again" in service.output()

        wait_until(restarted, "the engine restarted", 60)
        assert 503 in statuses, statuses
        assert "exited with code -9" in service.output()
        second = _engine_child(service)
        assert second != first and _alive(second)
        wait_until(
            lambda: httpx.get(f"{service.url}/readyz", timeout=10).status_code == 200,
            "ready again",
            60,
        )
        _send_call(service, "E5000001")  # the new engine does the work
        wait_until(lambda: _activities(service) == 1, "the call logged by the new engine", 60)
        text = httpx.get(f"{service.url}/metrics", timeout=10).text
        assert _metric(text, 'callbridge_engine_restarts_total{code="-9"}') == 1
        assert _metric(text, "callbridge_engine_up ") == 1
    finally:
        service.kill()


def test_stopped_engine_is_reported_by_readyz(tmp_path: Path) -> None:
    service = Service(tmp_path / "data", CALLBRIDGE_SERVER__ENGINE_HEARTBEAT_TIMEOUT="3").start()
    try:
        child = _engine_child(service)
        os.kill(child, signal.SIGSTOP)
        try:
            answers: list[httpx.Response] = []

            def reported() -> bool:
                answers.append(httpx.get(f"{service.url}/readyz", timeout=10))
                return answers[-1].status_code == 503

            wait_until(reported, "readyz to fail for a stopped engine", 30)
            assert "has not answered" in answers[-1].text, answers[-1].text
            assert "has not answered" in service.output()
            assert _engine_child(service) == child  # reported, not killed
        finally:
            os.kill(child, signal.SIGCONT)
        wait_until(
            lambda: httpx.get(f"{service.url}/readyz", timeout=10).status_code == 200,
            "ready again after SIGCONT",
            30,
        )
        assert "the engine is healthy again" in service.output()
    finally:
        service.kill()


def test_engine_counters_reach_metrics(tmp_path: Path) -> None:
    service = Service(tmp_path / "data").start()
    try:
        _send_call(service, "E6000001")
        wait_until(lambda: _activities(service) == 1, "the call logged", 60)

        scrapes: list[str] = []

        def scraped() -> bool:
            scrapes.append(httpx.get(f"{service.url}/metrics", timeout=10).text)
            return "callbridge_delivery_attempts_total{" in scrapes[-1]

        wait_until(scraped, "the engine's counters in /metrics", 30)
        text = scrapes[-1]
        done = 'callbridge_delivery_attempts_total{plugin="directory",result="done"}'
        assert _metric(text, done) == 1
        assert _metric(text, 'callbridge_pops_total{state="ringing"}') >= 1
        assert _metric(text, 'callbridge_lookups_total{plugin="directory"') >= 1
        assert "# TYPE callbridge_events_failed_total counter" in text
        assert text.count("# TYPE callbridge_pops_total counter") == 1  # one family, merged
        # The HTTP process's own counters are there too.
        assert _metric(text, 'callbridge_events_accepted_total{duplicate="no"') >= 1
    finally:
        service.kill()
