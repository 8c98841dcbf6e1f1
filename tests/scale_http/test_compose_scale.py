"""compose.scale.yaml is not run here (no Docker engine): this checks that it describes the
deployment the other tests in this folder run as real processes: two ``serve --role http``,
three ``serve --role engine``, a journal URL naming the Sentinels, durable data nodes, and a
load balancer over exactly the HTTP services."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import yaml

from callbridge.cli.serve import serve
from callbridge.journal.redis.connection import split_url

ROOT = Path(__file__).resolve().parents[2]
COMPOSE = ROOT / "compose.scale.yaml"
NGINX = ROOT / "examples/config/nginx-scale.conf"


def services() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load(COMPOSE.read_text())
    return dict(loaded["services"])


def callbridge_services() -> dict[str, dict[str, Any]]:
    return {n: s for n, s in services().items() if s.get("image") == "callbridge:local"}


def test_two_http_services_and_three_engines_with_valid_commands() -> None:
    roles: dict[str, list[str]] = {}
    for name, service in callbridge_services().items():
        command = service["command"]
        assert command[0] == "serve"
        context = serve.make_context("serve", list(command[1:]))  # a bad option raises
        roles.setdefault(context.params["role"], []).append(name)
    assert sorted(roles) == ["engine", "http"]
    assert (len(roles["http"]), len(roles["engine"])) == (2, 3)


def test_the_journal_url_names_the_sentinels_and_their_master() -> None:
    all_services = services()
    sentinels = {n: s for n, s in all_services.items() if "--sentinel" in str(s.get("command"))}
    assert len(sentinels) == 3
    data_nodes = {n: s for n, s in all_services.items() if n.startswith("redis-")}
    for service in callbridge_services().values():
        read = split_url(service["environment"]["CALLBRIDGE_JOURNAL"])
        assert read.sentinel is not None
        assert sorted(read.sentinel.sentinels) == [(n, 26379) for n in sorted(sentinels)]
        # One failover must leave enough replicas to confirm writes.
        assert 0 < read.wait_replicas < len(data_nodes) - 1
        for sentinel in sentinels.values():
            monitor = re.search(r"sentinel monitor (\S+) (\S+) 6379 2", sentinel["command"][0])
            assert monitor is not None
            assert monitor.group(1) == read.sentinel.service
            assert monitor.group(2) in data_nodes


def test_data_nodes_are_durable_and_never_evict() -> None:
    nodes = [s for n, s in services().items() if n.startswith("redis-")]
    assert len(nodes) == 3
    for node in nodes:
        command = " ".join(node["command"])
        assert "--appendonly yes --appendfsync always" in command
        assert "--maxmemory-policy noeviction" in command
    assert sum("--replicaof" in " ".join(n["command"]) for n in nodes) == 2


def test_the_load_balancer_spreads_over_exactly_the_http_services() -> None:
    upstream = set(re.findall(r"server (\S+):8765", NGINX.read_text()))
    http = {n for n, s in callbridge_services().items() if "http" in s["command"]}
    assert upstream == http
    assert "./examples/config/nginx-scale.conf" in str(services()["proxy"]["volumes"])
