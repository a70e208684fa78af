"""The domain stays pure (STYLE.md): nothing under ``processors/`` talks to Kafka, ClickHouse,
Prometheus, the environment or the clock. ``now`` and the rules are always handed in."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[3]
PROCESSORS = ROOT / "processors"
SOURCES = sorted(PROCESSORS.rglob("*.py"))

BANNED_MODULES = ("faust", "kafka", "aiokafka", "clickhouse_connect", "chdb",
                  "prometheus_client", "mode")
# attribute chains that read the environment or the clock
BANNED_ATTRIBUTES = {
    ("os", "environ"), ("os", "getenv"), ("os", "putenv"),
    ("time", "time"), ("time", "time_ns"), ("time", "monotonic"), ("time", "perf_counter"),
    ("datetime", "now"), ("datetime", "utcnow"), ("datetime", "today"), ("date", "today"),
}
BANNED_NAMES = {  # ``from os import environ`` and the like
    ("os", "environ"), ("os", "getenv"), ("time", "time"), ("time", "time_ns"),
    ("time", "monotonic"),
}


def _dotted(node: ast.AST) -> list[str]:
    parts: list[str] = []
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
    if isinstance(node, ast.Name):
        parts.append(node.id)
    return parts[::-1]


def offences(source: str) -> list[str]:
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found += [f"import {a.name}" for a in node.names
                      if a.name.split(".")[0] in BANNED_MODULES]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            top = node.module.split(".")[0]
            if top in BANNED_MODULES:
                found.append(f"from {node.module} import ...")
            found += [f"from {node.module} import {a.name}" for a in node.names
                      if (node.module, a.name) in BANNED_NAMES]
        elif isinstance(node, ast.Attribute):
            chain = _dotted(node)
            found += [f"{chain[i]}.{chain[i + 1]}" for i in range(len(chain) - 1)
                      if (chain[i], chain[i + 1]) in BANNED_ATTRIBUTES]
    return found


def test_the_scan_sees_the_whole_package() -> None:
    names = {p.relative_to(PROCESSORS).as_posix() for p in SOURCES}
    assert {"engine.py", "rules.py", "state.py", "watermark.py", "churn/champion_left.py",
            "expansion/reference_candidate.py"} <= names


@pytest.mark.parametrize("path", SOURCES, ids=lambda p: p.relative_to(PROCESSORS).as_posix())
def test_no_io_environment_or_clock_in_processors(path: Path) -> None:
    assert offences(path.read_text(encoding="utf-8")) == []


@pytest.mark.parametrize(("source", "expected"), [
    ("import faust", ["import faust"]),
    ("import kafka.admin", ["import kafka.admin"]),
    ("from aiokafka import AIOKafkaConsumer", ["from aiokafka import ..."]),
    ("import clickhouse_connect as ch", ["import clickhouse_connect"]),
    ("from chdb import session", ["from chdb import ..."]),
    ("from prometheus_client import Counter", ["from prometheus_client import ..."]),
    ("import os\nx = os.environ['A']", ["os.environ"]),
    ("from os import environ", ["from os import environ"]),
    ("import time\nt = time.time()", ["time.time"]),
    ("from datetime import datetime\nn = datetime.now()", ["datetime.now"]),
    ("import datetime\nn = datetime.datetime.now(datetime.UTC)", ["datetime.now"]),
    ("from datetime import date\nd = date.today()", ["date.today"]),
    ("from datetime import datetime\nd = datetime.fromtimestamp(0)", []),
    ("import os.path\np = os.path.join('a', 'b')", []),
])
def test_the_scanner_catches_what_it_should(source: str, expected: list[str]) -> None:
    assert offences(source) == expected


def test_importing_the_engine_loads_no_io_library() -> None:
    """The same rule for what ``processors`` pulls in transitively (e.g. via ``schemas``)."""
    code = (
        "import sys\n"
        "import processors.engine, processors.watermark, processors.ingest\n"
        f"banned = {BANNED_MODULES!r}\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in banned))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True,
                         text=True, check=True)
    assert out.stdout.strip() == "[]"
