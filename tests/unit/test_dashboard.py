"""The Grafana dashboard and the Prometheus alert rules, checked by reading (no Docker here).

Without ``promtool`` or a Grafana to load them into, the strongest check is that every PromQL
expression names only metrics the worker really exports (so renaming a metric fails here,
not on an operator's blank panel), every ClickHouse panel queries tables and views that
``radar db init`` creates (and runs against a real embedded schema), and compose mounts each
file where the provisioning and Prometheus config look for it.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import pytest
import yaml

from sinks.schema import STATEMENTS
from streams.metrics import Metrics

REPO = Path(__file__).resolve().parents[2]
DASHBOARD = REPO / "deploy/grafana/dashboards/account-radar.json"
DATASOURCES = REPO / "deploy/grafana/provisioning/datasources/datasources.yml"
DASHBOARD_PROVIDERS = REPO / "deploy/grafana/provisioning/dashboards/dashboards.yml"
PROMETHEUS = REPO / "deploy/prometheus/prometheus.yml"
ALERTS = REPO / "deploy/prometheus/alerts.yml"
CLICKHOUSE_PLUGIN = "grafana-clickhouse-datasource"

REQUIRED_ALERTS = {
    "RadarWorkerDown", "RadarConsumerLagGrowing", "RadarDeadLetterRateHigh", "RadarNoEvents",
    "RadarAlertLatencyHigh", "RadarNotifyDown", "RadarNotifyDeliveriesFailing",
    "RadarNotifyRetrying",
}


def load_yaml(path: Path) -> Any:
    return yaml.safe_load(path.read_text())


def dashboard() -> dict[str, Any]:
    data: dict[str, Any] = json.loads(DASHBOARD.read_text())
    return data


def panels() -> list[dict[str, Any]]:
    """Every panel that shows data (rows are only headings)."""
    found: list[dict[str, Any]] = []
    for panel in dashboard()["panels"]:
        if panel["type"] == "row":
            found += panel.get("panels", [])
        else:
            found.append(panel)
    return found


def datasource_types() -> dict[str, str]:
    """uid -> plugin type of every provisioned datasource."""
    return {s["uid"]: s["type"] for s in load_yaml(DATASOURCES)["datasources"]}


def prometheus_panels() -> list[dict[str, Any]]:
    return [p for p in panels() if datasource_types()[p["datasource"]["uid"]] == "prometheus"]


def clickhouse_panels() -> list[dict[str, Any]]:
    return [p for p in panels()
            if datasource_types()[p["datasource"]["uid"]] == CLICKHOUSE_PLUGIN]


def alert_rules() -> list[dict[str, Any]]:
    return [rule for group in load_yaml(ALERTS)["groups"] for rule in group["rules"]]


def worker_job() -> str:
    """The job scraping every worker replica (found by the service name)."""
    jobs = [job["job_name"] for job in load_yaml(PROMETHEUS)["scrape_configs"]
            for sd in job.get("dns_sd_configs", []) if sd["names"] == ["worker"]
            and sd["port"] == 6066]
    assert len(jobs) == 1
    return str(jobs[0])


def notify_job() -> str:
    """The job scraping radar notify, on the port its settings default to."""
    from streams.settings import load_settings

    target = f"notify:{load_settings({}).notify_port}"
    jobs = [job["job_name"] for job in load_yaml(PROMETHEUS)["scrape_configs"]
            for static in job.get("static_configs", []) if target in static["targets"]]
    assert len(jobs) == 1
    return str(jobs[0])


def row_panels(title: str) -> list[dict[str, Any]]:
    """The panels under an expanded row: below it and above the next row."""
    everything = dashboard()["panels"]
    [row] = [p for p in everything if p["type"] == "row" and p["title"] == title]
    below = [p["gridPos"]["y"] for p in everything
             if p["type"] == "row" and p["gridPos"]["y"] > row["gridPos"]["y"]]
    end = min(below, default=float("inf"))
    return [p for p in everything if p["type"] != "row"
            and row["gridPos"]["y"] < p["gridPos"]["y"] < end]


# -- metric names --------------------------------------------------------------------------------

def exported_metric_names() -> set[str]:
    """The series names a scrape of the worker can return, as PromQL sees them."""
    names: set[str] = set()
    for family in Metrics().registry.collect():
        if family.type == "counter":
            names.add(f"{family.name}_total")
        elif family.type == "histogram":
            names |= {f"{family.name}{suffix}" for suffix in ("_bucket", "_sum", "_count")}
        elif family.type == "gauge":
            names.add(family.name)
        else:  # a new kind of metric: teach this test its exposed names
            raise AssertionError(f"{family.name}: unexpected metric type {family.type}")
    return names


_PROMQL_KEYWORDS = {"by", "without", "on", "ignoring", "group_left", "group_right", "bool",
                    "and", "or", "unless", "offset", "inf", "nan"}


def promql_metric_names(expr: str) -> set[str]:
    """The metric names an expression selects: identifiers that are not functions,
    aggregations, keywords, label names or Grafana variables."""
    e = re.sub(r'"(?:[^"\\]|\\.)*"|\'(?:[^\'\\]|\\.)*\'', '""', expr)  # string literals
    e = re.sub(r"\{[^}]*\}", " ", e)  # label matchers
    e = re.sub(r"\[[^\]]*\]", " ", e)  # range and subquery selectors
    e = re.sub(r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", " ", e)
    e = re.sub(r"\$\{?\w+\}?", " ", e)  # Grafana variables
    names = set()
    for match in re.finditer(r"(?<![\w.])([A-Za-z_:][\w:]*)(\s*\()?", e):
        name, is_call = match.group(1), match.group(2)
        if not is_call and name.lower() not in _PROMQL_KEYWORDS:
            names.add(name)
    return names


def unknown_metrics(expr: str) -> set[str]:
    return promql_metric_names(expr) - exported_metric_names() - {"up"}


@pytest.mark.parametrize(
    ("expr", "names"),
    [
        pytest.param('sum by (topic) (rate(radar_events_consumed_total{topic!="x"}[5m]))',
                     {"radar_events_consumed_total"}, id="aggregation-with-by-and-matcher"),
        pytest.param("histogram_quantile(0.99, sum by (le, table) "
                     "(rate(radar_insert_duration_seconds_bucket[$__rate_interval])))",
                     {"radar_insert_duration_seconds_bucket"}, id="quantile-grafana-variable"),
        pytest.param("sum(rate(a_total[5m])) / clamp_min(sum(rate(b_total[5m])), 1e-9) > 0.05",
                     {"a_total", "b_total"}, id="ratio-and-scientific-number"),
        pytest.param('up{job="radar-worker"} == 0 and on() vector(1) offset 5m',
                     {"up"}, id="keywords-and-offset"),
    ],
)
def test_the_promql_scanner_finds_exactly_the_metric_names(expr: str, names: set[str]) -> None:
    assert promql_metric_names(expr) == names


def test_a_renamed_metric_is_caught() -> None:
    assert unknown_metrics("rate(radar_events_consumed_total[5m])") == set()
    assert unknown_metrics("rate(radar_events_consumed[5m])") == {"radar_events_consumed"}
    assert unknown_metrics("radar_signals_emitted_total") == {"radar_signals_emitted_total"}


# -- the dashboard ------------------------------------------------------------------------------

def test_the_dashboard_is_valid_json_with_unique_panel_ids_inside_the_grid() -> None:
    data = dashboard()
    assert data["uid"] and data["title"]
    everything = data["panels"] + [p for r in data["panels"] for p in r.get("panels", [])]
    ids = [p["id"] for p in everything]
    assert len(ids) == len(set(ids))
    for panel in everything:
        pos = panel["gridPos"]
        assert pos["x"] >= 0 and pos["w"] > 0 and pos["x"] + pos["w"] <= 24, panel["title"]


def test_every_panel_and_query_uses_a_provisioned_datasource() -> None:
    provisioned = datasource_types()
    for panel in panels():
        sources = [panel["datasource"]] + [t["datasource"] for t in panel["targets"]]
        assert panel["targets"], panel["title"]
        for source in sources:
            assert source["uid"] in provisioned, (panel["title"], source)
            assert source["type"] == provisioned[source["uid"]], (panel["title"], source)


def test_every_promql_expression_uses_only_metrics_the_worker_exports() -> None:
    for panel in prometheus_panels():
        for target in panel["targets"]:
            expr = target["expr"]
            assert promql_metric_names(expr), (panel["title"], expr)  # the scan saw something
            assert unknown_metrics(expr) == set(), (panel["title"], expr)


def test_the_dashboard_shows_what_operators_asked_for() -> None:
    used = {name for p in prometheus_panels() for t in p["targets"]
            for name in promql_metric_names(t["expr"])}
    assert {
        "radar_events_consumed_total", "radar_consumer_lag", "radar_events_rejected_total",
        "radar_signals_total", "radar_alert_latency_seconds_bucket",
        "radar_insert_duration_seconds_bucket", "up",
    } <= used
    exprs = [t["expr"] for p in prometheus_panels() for t in p["targets"]]
    for histogram in ("radar_alert_latency_seconds_bucket", "radar_insert_duration_seconds_bucket"):
        for q in ("0.5", "0.99"):
            assert any(f"histogram_quantile({q}," in e and histogram in e for e in exprs), (
                histogram, q)
    assert any("sum by (le, table)" in e and "radar_insert_duration" in e for e in exprs)
    # each `up` panel shows one scrape job: the workers' and the notifier's at least
    up_jobs = [re.fullmatch(r'up\{job="([^"]+)"\}', e) for e in exprs
               if "up" in promql_metric_names(e)]
    assert up_jobs and all(up_jobs)
    scraped = {job["job_name"] for job in load_yaml(PROMETHEUS)["scrape_configs"]}
    assert {worker_job(), notify_job()} <= {m.group(1) for m in up_jobs if m} <= scraped


def test_the_dashboard_shows_alert_delivery() -> None:
    """The radar notify row: outcomes, latency per destination, in flight, dead letters."""
    row = row_panels("Alert delivery (radar notify)")
    exprs = [" ".join(t["expr"].split()) for p in row for t in p["targets"]]
    assert all(p["datasource"]["uid"] == "prometheus" for p in row)
    used = {name for e in exprs for name in promql_metric_names(e)}
    assert {"radar_notify_deliveries_total", "radar_notify_delivery_seconds_bucket",
            "radar_notify_in_flight"} <= used
    assert all(name.startswith("radar_notify_") or name == "up" for name in used), used
    assert any("sum by (destination, outcome)" in e and "rate(radar_notify_deliveries_total" in e
               for e in exprs)
    for q in ("0.5", "0.99"):
        assert any(f"histogram_quantile({q}, sum by (le, destination)" in e
                   and "radar_notify_delivery_seconds_bucket" in e for e in exprs), q
    assert any("by (destination)" in e and "radar_notify_in_flight" in e for e in exprs)
    assert any('outcome="dead_lettered"' in e and "[1h]" in e for e in exprs)
    assert f'up{{job="{notify_job()}"}}' in exprs


# -- the ClickHouse panels ------------------------------------------------------------------------

def schema_relations() -> set[str]:
    """Tables and views ``radar db init`` creates."""
    pattern = re.compile(r"CREATE\s+(?:TABLE\s+IF\s+NOT\s+EXISTS|OR\s+REPLACE\s+VIEW)\s+(\w+)",
                         re.I)
    return {m.group(1) for s in STATEMENTS for m in pattern.finditer(s)}


def referenced_relations(sql: str) -> set[str]:
    return {m.group(1) for m in re.finditer(r"\b(?:FROM|JOIN)\s+([A-Za-z_][\w.]*)", sql, re.I)}


def clickhouse_queries() -> list[tuple[str, str]]:
    return [(p["title"], t["rawSql"]) for p in clickhouse_panels() for t in p["targets"]]


def test_the_schema_scan_sees_the_analysts_contract() -> None:
    assert {"events", "signals", "account_state", "dead_letters", "at_risk_accounts",
            "expansion_candidates", "single_threaded_accounts", "continuity_gaps",
            "weekly_engagement"} <= schema_relations()


def test_every_clickhouse_panel_reads_tables_and_views_of_the_schema() -> None:
    relations = schema_relations()
    queries = clickhouse_queries()
    assert queries
    for title, sql in queries:
        used = referenced_relations(sql)
        assert used, (title, sql)
        assert used <= relations, (title, used - relations)
    used_everywhere = {r for _, sql in queries for r in referenced_relations(sql)}
    assert {"at_risk_accounts", "expansion_candidates", "account_state"} <= used_everywhere


def test_every_clickhouse_panel_query_runs_on_the_real_schema(tmp_path: Path) -> None:
    """An empty embedded database with the schema: a renamed column fails here."""
    from sinks.clickhouse import READ_ONLY_SETTINGS, init_schema, open_client

    client = open_client(f"chdb://{tmp_path / 'clickhouse'}")
    try:
        init_schema(client)
        for title, sql in clickhouse_queries():
            if "$" in sql:  # Grafana macros only expand inside Grafana
                continue
            try:
                client.query(sql, settings=READ_ONLY_SETTINGS)
            except Exception as exc:  # noqa: BLE001 - report which panel broke
                pytest.fail(f"panel {title!r}: {exc}")
    finally:
        client.close()


def test_clickhouse_queries_are_tables_the_plugin_can_show() -> None:
    for panel in clickhouse_panels():
        for target in panel["targets"]:
            assert target["editorType"] == "sql"
            assert target["queryType"] == "table" and target["format"] == 1  # 1 = table


# -- the alert rules -----------------------------------------------------------------------------

def test_the_alert_rules_parse_and_include_the_required_alerts() -> None:
    rules = alert_rules()
    names = [r["alert"] for r in rules]
    assert len(names) == len(set(names))
    assert set(names) >= REQUIRED_ALERTS
    for rule in rules:
        assert rule["expr"].strip(), rule["alert"]
        assert re.fullmatch(r"\d+[smh]", str(rule.get("for", "0s"))), rule["alert"]
        assert rule["labels"]["severity"] in {"critical", "warning", "info"}, rule["alert"]
        assert rule["annotations"]["summary"], rule["alert"]


def test_every_alert_expression_uses_only_metrics_the_worker_exports() -> None:
    for rule in alert_rules():
        assert promql_metric_names(rule["expr"]), rule["alert"]
        assert unknown_metrics(rule["expr"]) == set(), (rule["alert"], rule["expr"])


def test_the_alerts_say_what_was_asked() -> None:
    expr = {r["alert"]: " ".join(r["expr"].split()) for r in alert_rules()}
    assert re.fullmatch(rf'up\{{job="{re.escape(worker_job())}"\}} == 0', expr["RadarWorkerDown"])
    assert "radar_consumer_lag" in expr["RadarConsumerLagGrowing"]
    assert re.search(r"\b(deriv|delta|increase)\(radar_consumer_lag\[10m\]\)",
                     expr["RadarConsumerLagGrowing"])
    assert {"radar_events_rejected_total", "radar_events_consumed_total"} == \
        promql_metric_names(expr["RadarDeadLetterRateHigh"])
    assert "increase(radar_events_consumed_total[10m])" in expr["RadarNoEvents"]
    assert expr["RadarNoEvents"].endswith("== 0")
    assert "histogram_quantile(0.99," in expr["RadarAlertLatencyHigh"]
    assert "radar_alert_latency_seconds_bucket" in expr["RadarAlertLatencyHigh"]
    assert expr["RadarAlertLatencyHigh"].endswith("> 1")


def test_the_notify_alerts_say_what_was_asked() -> None:
    """(deploy/prometheus/alerts_test.yml runs them on sample series, with promtool.)"""
    rules = {r["alert"]: r for r in alert_rules()}
    expr = {name: " ".join(r["expr"].split()) for name, r in rules.items()}
    down, failing, retrying = (rules[name] for name in (
        "RadarNotifyDown", "RadarNotifyDeliveriesFailing", "RadarNotifyRetrying"))
    assert re.fullmatch(rf'up\{{job="{re.escape(notify_job())}"\}} == 0', expr["RadarNotifyDown"])
    assert (down["for"], down["labels"]["severity"]) == ("1m", "critical")
    # a dead letter is someone not told: critical, per destination, at once
    assert 'radar_notify_deliveries_total{outcome="dead_lettered"}' in expr[
        "RadarNotifyDeliveriesFailing"]
    assert "increase(" in expr["RadarNotifyDeliveriesFailing"]
    assert expr["RadarNotifyDeliveriesFailing"].startswith("sum by (destination)")
    assert failing["labels"]["severity"] == "critical"
    # retries while nothing is delivered, for 10 minutes: a warning
    assert 'outcome="retried"' in expr["RadarNotifyRetrying"]
    assert re.search(r'unless on \(destination\) .*outcome="delivered"', expr["RadarNotifyRetrying"])
    assert (retrying["for"], retrying["labels"]["severity"]) == ("10m", "warning")
    # what the operator checks: the destination's settings, the receiver, the records
    for rule in (failing, retrying):
        text = rule["annotations"]["description"]
        for what in ("notify.toml", "url", "receiver", "alert_deliveries"):
            assert what in text, (rule["alert"], what)


# -- where compose puts the files ----------------------------------------------------------------

def mounts(service: str) -> dict[str, Path]:
    """Container path -> repository file or folder of the service's bind mounts."""
    compose = load_yaml(REPO / "docker-compose.yml")
    found: dict[str, Path] = {}
    for volume in compose["services"][service].get("volumes", []):
        source, target = str(volume).split(":")[:2]
        if source.startswith("./"):
            found[target] = REPO / source
    return found


def test_prometheus_loads_the_alert_rules_that_compose_mounts() -> None:
    config_mounts = mounts("prometheus")
    assert config_mounts["/etc/prometheus/prometheus.yml"] == PROMETHEUS
    rule_files = load_yaml(PROMETHEUS)["rule_files"]
    assert rule_files
    for path in rule_files:
        assert path in config_mounts, path
        assert config_mounts[path] == ALERTS


def test_grafana_finds_the_dashboard_where_compose_mounts_it() -> None:
    grafana = mounts("grafana")
    assert grafana["/etc/grafana/provisioning"] == REPO / "deploy/grafana/provisioning"
    providers = load_yaml(DASHBOARD_PROVIDERS)["providers"]
    paths = [p["options"]["path"] for p in providers]
    assert paths
    for path in paths:
        assert path in grafana, path
        assert (grafana[path] / DASHBOARD.name).is_file()


def test_grafana_installs_the_clickhouse_plugin_it_provisions() -> None:
    compose = load_yaml(REPO / "docker-compose.yml")
    plugins = str(compose["services"]["grafana"]["environment"]["GF_INSTALL_PLUGINS"])
    assert CLICKHOUSE_PLUGIN in plugins.split(",")
    assert CLICKHOUSE_PLUGIN in datasource_types().values()


# -- who logs in where: the token, the writer and the analyst -------------------------------------

USERS_FILE = REPO / "deploy/clickhouse/users.d/radar-users.xml"
ACCESS_FILE = REPO / "deploy/clickhouse/config.d/radar-access.xml"
COMPOSE_ENV = {
    "CLICKHOUSE_PASSWORD": "admin-Pa55", "CLICKHOUSE_WRITER_PASSWORD": "writer-Pa55",
    "CLICKHOUSE_ANALYST_PASSWORD": "analyst-Pa55", "RADAR_SQL_TOKEN": "t" * 24,
}


class ComposeRefuses(Exception):
    """docker compose would not start: a ``${VAR:?message}`` variable is unset or empty."""


_COMPOSE_VAR = re.compile(r"\$(?:\{(\w+)(?:(:?[-?])([^}]*))?\}|(\w+))")


def interpolate(value: Any, env: dict[str, str]) -> Any:
    """``value`` (parsed compose YAML) with variables filled as docker compose fills them:
    ``${V}``, ``$V``, ``${V:-default}``, ``${V-default}``, ``${V:?err}``, ``${V?err}``, ``$$``."""
    if isinstance(value, dict):
        return {k: interpolate(v, env) for k, v in value.items()}
    if isinstance(value, list):
        return [interpolate(v, env) for v in value]
    if not isinstance(value, str):
        return value

    def fill(match: re.Match[str]) -> str:
        name = match.group(1) or match.group(4)
        op, arg, found = match.group(2), match.group(3) or "", env.get(name)
        unset = found is None or (found == "" and op is not None and op.startswith(":"))
        if op in (":?", "?") and unset:
            raise ComposeRefuses(f"{name}: {arg}")
        if op in (":-", "-") and unset:
            return arg
        return found or ""

    parts = value.split("$$")
    return "$".join(_COMPOSE_VAR.sub(fill, part) for part in parts)


def compose_with(env: dict[str, str]) -> dict[str, Any]:
    data: dict[str, Any] = interpolate(load_yaml(REPO / "docker-compose.yml"), env)
    return data


def service_env(service: str, env: dict[str, str] = COMPOSE_ENV) -> dict[str, str]:
    return {k: str(v) for k, v in compose_with(env)["services"][service]["environment"].items()}


def test_the_compose_interpolation_reads_variables_as_compose_does() -> None:
    env = {"SET": "x", "EMPTY": ""}
    assert interpolate("${SET}-$SET-${UNSET:-d}-${EMPTY:-d}-${EMPTY-d}-$$SET", env) == "x-x-d-d--$SET"
    for refused in ("${UNSET:?no}", "${EMPTY:?no}", "${UNSET?no}"):
        with pytest.raises(ComposeRefuses):
            interpolate(refused, env)
    assert interpolate("${EMPTY?no}", env) == ""


@pytest.mark.parametrize("name", sorted(COMPOSE_ENV))
def test_compose_does_not_start_without_each_password_and_the_token(name: str) -> None:
    for missing in ({k: v for k, v in COMPOSE_ENV.items() if k != name}, {**COMPOSE_ENV, name: ""}):
        with pytest.raises(ComposeRefuses, match=name):
            compose_with(missing)


def test_the_store_listens_beyond_loopback_with_the_token_as_the_writer() -> None:
    from sinks.grants import WRITER, dsn_database
    from streams.settings import load_settings

    for service in ("store", "radar-db-init"):
        radar = {k: v for k, v in service_env(service).items() if k.startswith("RADAR_")}
        settings = load_settings(radar)
        dsn = urlparse(settings.dsn)
        assert (dsn.username, dsn.password) == (WRITER, COMPOSE_ENV["CLICKHOUSE_WRITER_PASSWORD"])
        assert dsn_database(settings.dsn) == "radar"
        assert settings.events_ttl_days is None  # retention only when RADAR_EVENTS_TTL_DAYS is set
    store = load_settings({k: v for k, v in service_env("store").items() if k.startswith("RADAR_")})
    assert not store.web_on_loopback
    assert store.sql_token is not None
    assert store.sql_token.get_secret_value() == COMPOSE_ENV["RADAR_SQL_TOKEN"]
    # the workers get no database at all
    assert "RADAR_CLICKHOUSE_DSN" not in service_env("worker")
    with_ttl = service_env("store", {**COMPOSE_ENV, "RADAR_EVENTS_TTL_DAYS": "30"})
    assert load_settings({k: v for k, v in with_ttl.items() if k.startswith("RADAR_")}
                         ).events_ttl_days == 30


def test_prometheus_scrapes_the_worker_without_the_sql_token() -> None:
    job = next(j for j in load_yaml(PROMETHEUS)["scrape_configs"] if j["job_name"] == worker_job())
    assert job["metrics_path"] == "/metrics"
    assert not {"authorization", "bearer_token", "bearer_token_file", "basic_auth"} & set(job)


def test_clickhouse_loads_the_radar_users_with_passwords_from_its_environment() -> None:
    import xml.etree.ElementTree as ET

    from sinks.grants import USERS

    clickhouse = mounts("clickhouse")
    assert clickhouse["/etc/clickhouse-server/users.d/radar-users.xml"] == USERS_FILE
    assert clickhouse["/etc/clickhouse-server/config.d/radar-access.xml"] == ACCESS_FILE
    access = ET.fromstring(ACCESS_FILE.read_text())
    assert access.findtext("access_control_improvements/settings_constraints_replace_previous") == "true"
    env = service_env("clickhouse")
    users = ET.fromstring(USERS_FILE.read_text()).find("users")
    assert users is not None
    for user in USERS:
        entry = users.find(user.name)
        assert entry is not None, user.name
        variable = entry.find("password")
        assert variable is not None and variable.get("from_env") == user.password_var
        assert env[user.password_var] == COMPOSE_ENV[user.password_var]


def test_grafana_reads_clickhouse_as_the_analyst_within_its_time_bound() -> None:
    import xml.etree.ElementTree as ET

    from sinks.grants import ANALYST, ANALYST_PROFILE

    source = next(s for s in load_yaml(DATASOURCES)["datasources"] if s["type"] == CLICKHOUSE_PLUGIN)
    assert source["jsonData"]["username"] == ANALYST
    password = source["secureJsonData"]["password"]
    grafana = service_env("grafana")
    # Grafana fills ${VAR} in provisioning files from its own environment
    assert interpolate(password, grafana) == COMPOSE_ENV["CLICKHOUSE_ANALYST_PASSWORD"]
    assert not {"CLICKHOUSE_PASSWORD", "CLICKHOUSE_WRITER_PASSWORD"} & set(grafana)
    # the plugin sends max_execution_time = queryTimeout + 5 with each query; the analyst's
    # profile refuses more than its bound
    profile = ET.fromstring(USERS_FILE.read_text()).find(f"profiles/{ANALYST_PROFILE}")
    assert profile is not None
    bound = float(profile.findtext("constraints/max_execution_time/max") or "0")
    assert 0 < int(source["jsonData"]["queryTimeout"]) + 5 <= bound
