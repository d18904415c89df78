"""A quick check of ranker settings on the TRAINING groups only (dsagent's own split, seed 0; the test
groups are never read): GroupKFold over every training row, each setting fitted as the search fits it
(dsagent.tools.ranking.models.fit), mean NDCG@k over the folds. Needs the data files of datasets.py.

    .venv/bin/python benchmarks/ranking/cv_check.py movielens --folds 3
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import pandas as pd

from dsagent.tools.ranking import metrics, models, split, tune
from dsagent.tools.ranking.task import RankingSpec, RankingTask

WORK = Path(__file__).resolve().parents[1] / "work" / "ranking"
SPECS = {"movielens": RankingSpec("rating", "userId", 10, 7), "travelmode": RankingSpec("choice", "individual", 1)}
SETTINGS = {"lgbm_defaults": ("lgbm_lambdarank", None), "xgb_defaults": ("xgb_ndcg", None),
            "lgbm_warm_start": ("lgbm_tuned", tune.WARM_STARTS["lightgbm"] | {"subsample_freq": 1}),
            "xgb_warm_start": ("xgb_ndcg_tuned", tune.WARM_STARTS["xgboost"])}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("dataset", choices=sorted(SPECS))
    ap.add_argument("--folds", type=int, default=3)
    ap.add_argument("--settings", nargs="*", default=list(SETTINGS))
    args = ap.parse_args()
    df = pd.read_csv(WORK / f"{args.dataset}.csv")
    task = RankingTask(SPECS[args.dataset])
    rec = task.define(df, 0)
    lab, g, groups = task.labelled(df, rec)
    tr = np.asarray(rec["split"]["train_rows"])
    X, gt, grp = lab.iloc[tr].reset_index(drop=True), g[tr], groups[tr]
    cv = split.folds(grp, 0, args.folds)
    for label in args.settings:
        name, params = SETTINGS[label]
        t0, scores = time.monotonic(), []
        for a, b in cv:
            fitted = models.fit(name, X.iloc[a], gt[a], grp[a], rec["categorical"], rec["numeric"], rec["k"],
                                rec["relevance_threshold"], 0, params)
            scores.append(metrics.score_groups(gt[b], fitted.score(X.iloc[b]), grp[b], rec["k"],
                                               rec["relevance_threshold"])["ndcg"])
        print(f"{label}: NDCG@{rec['k']} {np.mean(scores):.4f} (folds {', '.join(f'{s:.4f}' for s in scores)}; "
              f"{time.monotonic() - t0:.1f}s)", flush=True)


if __name__ == "__main__":
    main()
