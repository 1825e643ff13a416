#!/usr/bin/env bash
# Install everything and serve the coach at http://127.0.0.1:7860 (Ctrl-C stops it).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
exec .venv/bin/coach serve "$@"
