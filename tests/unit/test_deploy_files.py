"""The compose stack cannot run here (no Docker engine), so its files are checked by reading."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import yaml

from schemas.topics import COMPACTED_SUFFIXES
from streams.settings import PREFIX, Settings
from streams.settings import load_settings as load

REPO = Path(__file__).resolve().parents[2]


def compose() -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load((REPO / "docker-compose.yml").read_text())
    return data


def test_compose_runs_the_whole_stack_with_healthchecks() -> None:
    services = compose()["services"]
    for name in ("kafka", "kafka-init", "clickhouse", "radar-db-init", "worker", "store",
                 "notify", "prometheus", "grafana"):
        assert name in services, name
    for name in ("kafka", "clickhouse", "worker", "store", "notify", "prometheus", "grafana"):
        assert "healthcheck" in services[name], name
    assert services["kafka"]["image"].startswith("apache/kafka:4.")
    assert services["worker"]["command"] == ["radar", "worker"]
    assert services["store"]["command"] == ["radar", "store"]
    assert services["notify"]["command"] == ["radar", "notify"]


def concrete(env: dict[str, Any]) -> Settings:
    radar_vars = {k: str(v) for k, v in env.items() if k.startswith(PREFIX)}
    values = {k: re.sub(r"\$\{[A-Z_]+:-([^}]*)\}", r"\1", v) for k, v in radar_vars.items()}
    values = {k: re.sub(r"\$\{[A-Z_]+:\?[^}]*\}", "secret-for-the-test-only", v)
              for k, v in values.items()}
    return load(values)


def test_the_workers_scale_and_get_no_database() -> None:
    worker = compose()["services"]["worker"]
    env = worker["environment"]
    assert "RADAR_KAFKA_BOOTSTRAP" in env and "RADAR_CLICKHOUSE_DSN" not in env
    assert concrete(env).web_port == 6066
    assert str(worker["deploy"]["replicas"]).startswith("${RADAR_WORKERS:-")
    assert "ports" not in worker  # replicas cannot share a host port
    assert "radar-db-init" not in worker["depends_on"]  # nothing of ClickHouse


def test_the_store_writes_the_server_as_the_writer_with_a_token() -> None:
    store = compose()["services"]["store"]
    settings = concrete(store["environment"])
    assert not settings.embedded and settings.dsn.startswith("http://radar_writer:")
    assert settings.store_port == 6067 and settings.sql_token is not None
    assert store["ports"] == ["6067:6067"]


def test_compose_creates_exactly_the_topics_of_the_spec() -> None:
    script = compose()["services"]["kafka-init"]["command"][0]
    created = set(re.findall(r"^\s*create (\S+)", script, re.M))
    assert created == set(load({}).topics.all())
    assert {"accounts", "erasures", "account-state", "notify-deliveries"} <= COMPACTED_SUFFIXES
    for compacted in COMPACTED_SUFFIXES:
        assert re.search(rf"create radar\.{compacted} --config cleanup\.policy=compact", script)


def test_prometheus_scrapes_every_worker_the_store_and_the_notifier() -> None:
    config = yaml.safe_load((REPO / "deploy/prometheus/prometheus.yml").read_text())
    jobs = {job["job_name"]: job for job in config["scrape_configs"]}
    [workers] = jobs["radar-worker"]["dns_sd_configs"]
    assert workers["names"] == ["worker"] and workers["port"] == 6066
    assert jobs["radar-store"]["static_configs"][0]["targets"] == ["store:6067"]
    assert jobs["radar-notify"]["static_configs"][0]["targets"] == ["notify:6068"]
    assert jobs["radar-notify"]["metrics_path"] == "/metrics"


def test_the_notifier_reads_its_mounted_config_listens_for_prometheus_and_needs_no_database(
) -> None:
    """radar notify gets the notify.toml the compose header tells the user to copy from
    notify.example.toml, serves /metrics beyond loopback on the port Prometheus scrapes and the
    healthcheck probes, and, like the workers, gets no ClickHouse (alerts go out with it down)."""
    notify = compose()["services"]["notify"]
    settings = concrete(notify["environment"])
    [mount] = notify["volumes"]
    assert mount["type"] == "bind" and mount["read_only"] is True
    assert mount["source"] == "./notify.toml" and settings.notify_config == Path(mount["target"])
    # a missing notify.toml stops compose instead of becoming an empty folder of that name
    assert mount["bind"]["create_host_path"] is False
    assert (REPO / "notify.example.toml").is_file()
    assert "cp notify.example.toml notify.toml" in (REPO / "docker-compose.yml").read_text()
    assert settings.notify_port == 6068 and not settings.web_on_loopback
    assert notify["ports"] == [f"{settings.notify_port}:{settings.notify_port}"]
    assert f"http://127.0.0.1:{settings.notify_port}/metrics" in " ".join(
        notify["healthcheck"]["test"])
    assert "RADAR_CLICKHOUSE_DSN" not in notify["environment"]
    assert "RADAR_SQL_TOKEN" not in notify["environment"]
    assert set(notify["depends_on"]) == {"kafka-init"}
    # its env:NAME secrets come from a file of its own, not from the stack's .env
    assert [f["path"] for f in notify["env_file"]] == ["./notify.env"]


def test_grafana_has_prometheus_and_clickhouse_datasources() -> None:
    path = REPO / "deploy/grafana/provisioning/datasources/datasources.yml"
    sources = yaml.safe_load(path.read_text())["datasources"]
    types = {s["type"] for s in sources}
    assert {"prometheus", "grafana-clickhouse-datasource"} <= types


def test_the_package_and_the_image_hold_every_module() -> None:
    """``pip install .`` (the image) installs what the package list finds: a list of top-level
    names alone left out processors.churn, processors.expansion and the simulation, so the
    image could not start a worker. Every folder with an ``__init__.py`` under a top-level
    package must be found, and the Dockerfile must copy every top-level package."""
    import fnmatch
    import tomllib

    project = tomllib.loads((REPO / "pyproject.toml").read_text())
    include = project["tool"]["setuptools"]["packages"]["find"]["include"]
    tops = sorted(p.parent.name for p in REPO.glob("*/__init__.py")
                  if p.parent.name not in ("tests", "scripts"))
    assert {"streams", "schemas", "processors", "sinks", "tools"} <= set(tops)
    packages = sorted(".".join(p.parent.relative_to(REPO).parts)
                      for top in tops for p in (REPO / top).rglob("__init__.py"))
    assert "processors.churn" in packages and "tools.simulation" in packages
    missed = [name for name in packages
              if not any(fnmatch.fnmatchcase(name, pattern) for pattern in include)]
    assert missed == []
    assert sorted(project["tool"]["mypy"]["packages"]) == tops
    dockerfile = (REPO / "Dockerfile").read_text()
    assert [top for top in tops if f"COPY {top}/ ./{top}/" not in dockerfile] == []


def test_no_module_of_the_product_is_over_400_lines() -> None:
    """The scale-out issue's layout rule: a module that grows past 400 lines is split."""
    tops = ("streams", "schemas", "processors", "sinks", "tools")
    sizes = {str(p.relative_to(REPO)): len(p.read_text().splitlines())
             for top in tops for p in (REPO / top).rglob("*.py")}
    assert len(sizes) > 40  # (the folders were found)
    assert {name: n for name, n in sizes.items() if n > 400} == {}
