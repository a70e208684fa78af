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
    echo "== lint (ruff) and types (mypy --strict)"
    .venv/bin/ruff check .
    .venv/bin/mypy
    echo "== tests: unit, then integration on a real local Kafka and embedded ClickHouse"
    exec .venv/bin/python -m pytest "$@"
    ;;
  *)
    echo "usage: ./run.sh demo   # set up and run the demo on the embedded defaults" >&2
    echo "       ./run.sh test   # set up and run lint, type checks and all tests" >&2
    exit 64
    ;;
esac
