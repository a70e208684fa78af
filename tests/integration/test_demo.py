"""`radar demo` end to end on a reduced world: real Kafka, a real worker and store, embedded
ClickHouse."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from schemas.signals import CHURN_TYPES, EXPANSION_TYPES
from tests.integration.conftest import REPO, RadarEnv

pytestmark = pytest.mark.integration


def test_demo_on_a_reduced_world_reports_every_signal_type_and_the_evaluation(
    radar: RadarEnv, tmp_path: Path,
) -> None:
    env = {**radar.full_env(), "RADAR_LOCAL_DIR": str(tmp_path / "local")}
    done = subprocess.run(
        [sys.executable, "-m", "streams.cli", "demo", "--accounts", "20", "--days", "120"],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=600, check=False,
    )
    out = done.stdout
    assert done.returncode == 0, f"{out[-4000:]}\n{done.stderr[-4000:]}"

    # the summary's "signals by type" table: a non-zero count for every type of SPEC section 4
    table = out.split("== signals by type", 1)[1].split("\n== ", 1)[0]
    counts: dict[str, int] = {}
    for kind in (*CHURN_TYPES, *EXPANSION_TYPES):
        rows = re.findall(rf"\b{kind}\s+\w+\s+(\d+)", table)
        counts[kind] = sum(int(n) for n in rows)
    assert all(counts.values()), f"types without signals: {[k for k, v in counts.items() if not v]}"

    # the same figures are in ClickHouse, queryable after the demo stopped its store
    stored = dict(radar.sql("SELECT type, count() FROM signals FINAL GROUP BY type"))
    assert {k: stored.get(k, 0) for k in counts} == counts

    # alerts were printed as they fired, the evaluation ran against the labels, and the
    # processes the demo started are gone
    assert re.search(r"ALERT \d{4}-\d\d-\d\d champion_left", out)
    quality = out.split("== signal quality", 1)[1]
    assert re.search(r"champion_left.*100(\.0)?%", quality)
    assert (tmp_path / "local" / "reports" / "evaluation.md").is_file()
    assert "demo finished in" in out

    # alerts reached people: radar notify delivered each alert once to the local receiver
    # (the webhook takes every alert, and a follow-up of each withdrawn one), and a few are
    # shown as the Slack channel reads them
    delivered = out.split("== alerts delivered to people", 1)[1].split("\n== ", 1)[0]
    received = re.search(r"(\d+) Slack message\(s\) and (\d+) webhook call\(s\)", delivered)
    assert received is not None, delivered
    alerts, withdrawn = radar.sql(
        "SELECT uniqExact(signal_id), uniqExactIf(signal_id, status = 'withdrawn') "
        "FROM signals FINAL WHERE severity = 'critical' OR type IN "
        "('champion_left', 'renewal_at_risk', 'succession_overdue')")[0]
    assert int(received.group(2)) == alerts + withdrawn > 0
    assert int(received.group(1)) > 0
    assert re.search(r"(CHAMPION LEFT|RENEWAL AT RISK|SUCCESSION OVERDUE) AT", delivered)
    assert re.search(r"crm-hook\s+delivered\s+" + received.group(2) + r"\b", delivered)
    assert "received twice by the receiver: 0" in delivered
    stored = dict(radar.sql("SELECT destination, countIf(outcome = 'delivered') "
                            "FROM alert_deliveries FINAL GROUP BY destination"))
    assert stored["crm-hook"] == int(received.group(2))
    assert stored["cs-team"] == int(received.group(1))
    radar_pids = subprocess.run(["pgrep", "-f", "streams.cli (worker|store|notify)"],
                                capture_output=True, text=True, check=False).stdout.split()
    for pid in radar_pids:
        environ = Path(f"/proc/{pid}/environ")
        if environ.exists():
            assert radar.env["RADAR_APP_ID"].encode() not in environ.read_bytes()
