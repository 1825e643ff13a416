#!/usr/bin/env bash
# Create .venv and install the coach with its test extras. torch==2.13.0 goes
# first: it is a CPU build on this machine's disk; without it pip would pull
# the newest CUDA build (several GB). Re-running is cheap: a stamp of
# pyproject.toml skips the install when nothing changed.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3.11}
command -v "$PY" >/dev/null || PY=python3
[ -x .venv/bin/python ] || "$PY" -m venv .venv
stamp=$(sha256sum pyproject.toml | cut -c1-16)
if [ "$(cat .setup-stamp 2>/dev/null)" != "$stamp" ]; then
  echo "setup: installing dependencies into .venv (first run takes a few minutes)..."
  .venv/bin/pip install -q --upgrade pip
  .venv/bin/pip install -q torch==2.13.0
  .venv/bin/pip install -q -e ".[test,llm]"
  echo "$stamp" > .setup-stamp
fi
