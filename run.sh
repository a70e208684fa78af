#!/usr/bin/env bash
# Account Radar, from a fresh clone: `./run.sh demo` or `./run.sh test`.
# Needs Python 3.11+, Java 17+ and Maven; everything else (virtualenv, packages, Kafka's jars)
# is installed by this script into .venv/ and .local/ (both git-ignored).
set -euo pipefail
cd "$(dirname "$0")"

PYTHON="${PYTHON:-python3}"

setup() {
  if [ ! -x .venv/bin/python ]; then
    echo "creating .venv with $($PYTHON --version) ..."
    "$PYTHON" -m venv .venv
  fi
  echo "installing Account Radar and its dependencies into .venv ..."
  .venv/bin/python -m pip install --quiet --disable-pip-version-check -e '.[dev]'
}

case "${1:-}" in
  demo)
    shift
    setup
    exec .venv/bin/radar demo "$@"
    ;;
  test)
    shift
    setup
    if ! command -v promtool >/dev/null 2>&1 && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
      # Prometheus' own checker of the alert rules (tests/unit/test_alert_rules.py)
      echo "installing promtool (Debian's prometheus package) ..."
      (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
        --no-install-recommends prometheus >/dev/null) || echo "could not install promtool"
    fi
    echo "== lint (ruff) and types (mypy --strict)"
    .venv/bin/ruff check .
    .venv/bin/mypy
    # the pytest options given (e.g. -x, -k NAME, --durations=25) apply to both runs; a single
    # test runs with `.venv/bin/python -m pytest PATH`
    unit=0 integration=0
    echo "== unit tests (pure, no broker; in parallel processes)"
    .venv/bin/python -m pytest tests/unit -n auto --maxprocesses 4 "$@" || unit=$?
    echo "== integration tests, one at a time, on a real local Kafka and embedded ClickHouse"
    .venv/bin/python -m pytest tests/integration "$@" || integration=$?
    # pytest's 5 is "no test selected": fine for one run (-k naming tests of the other), not both
    if [ "$unit" = 5 ] && [ "$integration" = 5 ]; then exit 5; fi
    [ "$unit" = 5 ] && unit=0
    [ "$integration" = 5 ] && integration=0
    exit $(( unit != 0 ? unit : integration ))
    ;;
  *)
    echo "usage: ./run.sh demo   # set up and run the demo on the embedded defaults" >&2
    echo "       ./run.sh test   # set up and run lint, type checks and all tests" >&2
    exit 64
    ;;
esac
