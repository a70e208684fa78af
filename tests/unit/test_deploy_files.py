"""The compose stack cannot run here (no Docker engine), so its files are checked by reading."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import yaml

from streams.settings import PREFIX, Settings
from streams.settings import load_settings as load

REPO = Path(__file__).resolve().parents[2]


def compose() -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load((REPO / "docker-compose.yml").read_text())
    return data


def test_compose_runs_the_whole_stack_with_healthchecks() -> None:
    services = compose()["services"]
    for name in ("kafka", "kafka-init", "clickhouse", "radar-db-init", "worker", "prometheus",
                 "grafana"):
        assert name in services, name
    for name in ("kafka", "clickhouse", "worker", "prometheus", "grafana"):
        assert "healthcheck" in services[name], name
    assert services["kafka"]["image"].startswith("apache/kafka:4.")
    assert services["worker"]["command"] == ["radar", "worker"]


def test_compose_radar_variables_are_settings_the_worker_accepts() -> None:
    env = compose()["services"]["worker"]["environment"]
    radar_vars = {k: str(v) for k, v in env.items() if k.startswith(PREFIX)}
    assert "RADAR_KAFKA_BOOTSTRAP" in radar_vars and "RADAR_CLICKHOUSE_DSN" in radar_vars
    concrete = {k: re.sub(r"\$\{[A-Z_]+:-([^}]*)\}", r"\1", v) for k, v in radar_vars.items()}
    settings: Settings = load(concrete)
    assert not settings.embedded
    assert settings.web_port == 6066


def test_compose_creates_exactly_the_topics_of_the_spec() -> None:
    script = compose()["services"]["kafka-init"]["command"][0]
    created = set(re.findall(r"^\s*create (\S+)", script, re.M))
    assert created == set(load({}).topics.all())
    assert re.search(r"create radar\.accounts --config cleanup\.policy=compact", script)


def test_prometheus_scrapes_the_worker_metrics() -> None:
    config = yaml.safe_load((REPO / "deploy/prometheus/prometheus.yml").read_text())
    targets = [t for job in config["scrape_configs"] for sc in job.get("static_configs", [])
               for t in sc["targets"]]
    assert "worker:6066" in targets


def test_grafana_has_prometheus_and_clickhouse_datasources() -> None:
    path = REPO / "deploy/grafana/provisioning/datasources/datasources.yml"
    sources = yaml.safe_load(path.read_text())["datasources"]
    types = {s["type"] for s in sources}
    assert {"prometheus", "grafana-clickhouse-datasource"} <= types
