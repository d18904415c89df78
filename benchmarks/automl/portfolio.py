"""Learn a small portfolio of configurations per model family on the development half (issue 18's
zero-shot step: FLAML's and AutoGluon's presets are learned the same way).

    .venv/bin/python benchmarks/automl/portfolio.py [--datasets NAME ...] [--family xgboost ...]

Each configuration of a family's grid is cross-validated (dsagent's own folds and preprocessing)
on the training split of every development dataset; scores are normalised per dataset (1 = the
best configuration there, 0 = the worst), and configurations are then picked greedily: each pick
adds the most to the mean over datasets of the best normalised score among those picked, per
second of CV it costs. The result, benchmarks/results/portfolio.json, lists each family's picks in
that order; tools/portfolio.py ships them (copy them there by hand after a re-run: a test holds the
two equal). It reads only training splits of the development half, so the confirmation half judges
it (budget_ab.py's `portfolio` arm). Families run one after the other; `--family A B --out F` learns
some of them into another file, keeping the families F already holds.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from dsagent.tools.registry import ToolContext, all_tools
from dsagent.tools.task_data import search_data
from dsagent.tools.cv import cross_validate, cv_splits
from dsagent.tools.families import model_families
from dsagent.tools.task_types import get_task_type

HERE = Path(__file__).resolve().parent
DATA = HERE.parent / "work" / "data"
OUT = HERE.parent / "results" / "portfolio.json"
METRIC = {"binary": "roc_auc", "multiclass": "log_loss", "regression": "rmse"}
# A coarse grid per family, in the family's own search-space keys (tools/builtin_families.py) so a pick
# can be enqueued as a tuning trial as it stands. XGBoost's rounds are not searched (each fold early-stops).
_PAIRS = ((0.04, 400), (0.12, 200))  # (learning rate, rounds): a slow and a fast schedule
GRIDS = {
    "xgboost": [{"learning_rate": lr, "max_depth": d, "min_child_weight": m, "subsample": s, "colsample_bytree": c,
                 "reg_lambda": 1.0, "reg_alpha": 1e-8}
                for lr, _ in _PAIRS for d in (3, 6, 9) for m, s, c in ((1.0, 0.8, 0.8), (5.0, 0.7, 0.5))],
    "hist_gb": [{"learning_rate": lr, "max_iter": n, "max_leaf_nodes": leaves, "min_samples_leaf": m, "l2_regularization": l2}
                for lr, n in _PAIRS for leaves, m in ((15, 10), (31, 20), (63, 40)) for l2 in (1e-6, 1.0)],
    "lightgbm": [{"learning_rate": lr, "n_estimators": n, "num_leaves": leaves, "min_child_samples": m, "subsample": s,
                  "colsample_bytree": c, "reg_lambda": 1.0}
                 for lr, n in _PAIRS for leaves, m in ((15, 10), (31, 20), (63, 40)) for s, c in ((0.8, 0.8), (0.7, 0.5))],
    "extra_trees": [{"min_samples_leaf": m, "max_features": f} for m in (1, 3, 10) for f in (0.3, 0.6, 1.0)],
    "random_forest": [{"min_samples_leaf": m, "max_features": f} for m in (1, 3, 10) for f in (0.3, 0.6, 1.0)],
    "mlp": [{"alpha": a, "learning_rate_init": lr} for a in (1e-3, 0.1, 1.0) for lr in (1e-3, 3e-3)],
}


def development_half() -> list[str]:
    return json.loads((HERE.parent / "suite_split.json").read_text())["development"]["datasets"]


def cv_grid(name: str, family: str) -> list[tuple[float, float]]:
    """(CV mean, CV seconds) of each configuration of the family's grid on one dataset."""
    meta = json.loads((DATA / name / "meta.json").read_text())
    session = Path(tempfile.mkdtemp())
    (session / "artifacts").mkdir()
    shutil.copy(DATA / name / "train.csv", session / "data.csv")
    ctx = ToolContext(session_dir=session, artifacts_dir=session / "artifacts", data_path=session / "data.csv", seed=0,
                      answers={"task": meta["task"]}, roots=[str(session)])
    all_tools()["define_task"].invoke(ctx, {"target": meta["target"], "metric": METRIC[meta["task"]], "task": meta["task"]})
    X, y, task = search_data(ctx)
    splits = cv_splits(task, X, y, ctx)
    out = []
    for params in GRIDS[family]:
        started = time.perf_counter()
        cv = cross_validate({"family": family, "params": params}, X, y, task, ctx, splits)
        # Normalised below with the sign that makes higher better.
        out.append((float(np.mean(cv.fold_scores)) * (1 if task.greater_is_better else -1), time.perf_counter() - started))
    shutil.rmtree(session, ignore_errors=True)
    return out


def supports(family: str, name: str) -> bool:
    task = json.loads((DATA / name / "meta.json").read_text())["task"]
    return get_task_type(task).supports(model_families()[family])


def greedy(scores: np.ndarray, seconds: np.ndarray, size: int) -> list[int]:
    """scores: datasets x configurations, higher better. The picks, best gain per second first."""
    lo, hi = scores.min(axis=1, keepdims=True), scores.max(axis=1, keepdims=True)
    norm = np.where(hi > lo, (scores - lo) / np.where(hi > lo, hi - lo, 1), 1.0)
    cost = seconds.mean(axis=0)
    picked: list[int] = []
    best = np.zeros(len(scores))
    while len(picked) < min(size, scores.shape[1]):
        gains = [(np.maximum(best, norm[:, j]).mean() - best.mean()) / max(cost[j], 1e-3) if j not in picked else -1
                 for j in range(scores.shape[1])]
        j = int(np.argmax(gains))
        if gains[j] <= 0 and picked:
            break
        picked.append(j)
        best = np.maximum(best, norm[:, j])
    return picked


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--datasets", nargs="*", default=None, help="default: the development half")
    ap.add_argument("--family", nargs="*", default=list(GRIDS))
    ap.add_argument("--size", type=int, default=3)
    ap.add_argument("--out", type=Path, default=OUT, help="families already in this file and not run now are kept")
    args = ap.parse_args()
    names = args.datasets or development_half()
    confirmation = set(json.loads((HERE.parent / "suite_split.json").read_text())["confirmation"]["datasets"])
    if confirmation & set(names):
        sys.exit(f"refusing to learn on the confirmation half: {sorted(confirmation & set(names))}")
    result = {"datasets": names, "families": {}}
    kept = json.loads(args.out.read_text()) if args.out.exists() else {}
    if kept.get("datasets") == names:
        result["families"] = kept["families"]
    for family in args.family:
        # A family learns on the datasets whose task it supports (mlp: classification only).
        runs = [cv_grid(n, family) for n in names if supports(family, n)]
        scores = np.array([[s for s, _ in r] for r in runs])
        seconds = np.array([[t for _, t in r] for r in runs])
        picks = greedy(scores, seconds, args.size)
        result["families"][family] = [{"params": GRIDS[family][j], "mean_cv_s": round(float(seconds[:, j].mean()), 2)}
                                      for j in picks]
        print(family, json.dumps(result["families"][family]), flush=True)
        args.out.write_text(json.dumps(result, indent=1) + "\n")  # after each family: a long run keeps what it has


if __name__ == "__main__":
    main()
