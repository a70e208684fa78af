"""The Prometheus alert rules and config, run through ``promtool`` when it is installed.

tests/unit/test_dashboard.py reads the rules (metric names, thresholds, wording); only promtool
parses them as Prometheus does and evaluates them on sample series
(deploy/prometheus/alerts_test.yml). Without promtool (``apt-get install prometheus``;
``run.sh test`` installs it when it can) those tests are skipped, saying so, except in CI
(ACCOUNT_RADAR_REQUIRE_PROMTOOL), where they fail; the check that the sample tests cover every
radar notify alert runs anyway.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
PROMETHEUS = REPO / "deploy/prometheus/prometheus.yml"
ALERTS = REPO / "deploy/prometheus/alerts.yml"
ALERTS_TEST = REPO / "deploy/prometheus/alerts_test.yml"


def load_yaml(path: Path) -> Any:
    return yaml.safe_load(path.read_text())


def promtool(*args: str | Path) -> subprocess.CompletedProcess[str]:
    """Run promtool, skipping the test when it is not installed."""
    tool = shutil.which("promtool")
    if tool is None and os.environ.get("ACCOUNT_RADAR_REQUIRE_PROMTOOL"):
        pytest.fail("promtool is not installed and CI requires it (run.sh installs it)")
    if tool is None:
        pytest.skip("promtool is not installed (apt-get install prometheus): the alert rules "
                    "were not checked by Prometheus' own parser")
    return subprocess.run([tool, *map(str, args)], capture_output=True, text=True, timeout=120,
                          check=False)


def test_the_sample_tests_exercise_every_notify_alert_and_nothing_else() -> None:
    """alerts_test.yml loads alerts.yml, and names only alerts that exist (promtool would
    otherwise pass a test of a renamed alert that expects nothing), including each of the
    notifier's."""
    tests = load_yaml(ALERTS_TEST)
    assert [ALERTS_TEST.parent / f for f in tests["rule_files"]] == [ALERTS]
    defined = {r["alert"] for g in load_yaml(ALERTS)["groups"] for r in g["rules"]}
    tested = {case["alertname"] for t in tests["tests"] for case in t["alert_rule_test"]}
    assert tested <= defined, tested - defined
    assert {name for name in defined if name.startswith("RadarNotify")} <= tested
    # each one both fires and, at another time, does not
    for name in tested:
        cases = [case for t in tests["tests"] for case in t["alert_rule_test"]
                 if case["alertname"] == name]
        assert any(case["exp_alerts"] for case in cases), name
        assert any(not case["exp_alerts"] for case in cases), name


def test_promtool_accepts_the_alert_rules() -> None:
    result = promtool("check", "rules", ALERTS)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout


def test_the_alert_rules_pass_their_sample_tests() -> None:
    result = promtool("test", "rules", ALERTS_TEST)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout and "FAILED" not in result.stdout


def test_promtool_accepts_the_prometheus_config_with_its_rules(tmp_path: Path) -> None:
    """The config names the rule file where compose mounts it (/etc/prometheus/alerts.yml); a
    copy naming the repository's file instead lets promtool check both together."""
    config = load_yaml(PROMETHEUS)
    assert config["rule_files"] == ["/etc/prometheus/alerts.yml"]
    config["rule_files"] = [str(ALERTS)]
    copy = tmp_path / "prometheus.yml"
    copy.write_text(yaml.safe_dump(config))
    result = promtool("check", "config", copy)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS: 1 rule files found" in result.stdout
