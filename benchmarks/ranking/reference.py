"""Default-settings references for the ranking benchmark (run with benchmarks/work/venv-rank):
XGBoost's XGBRanker (objective rank:ndcg) and LightGBM's LGBMRanker (lambdarank), each with its
library defaults, fitted on the training rows of dsagent's own split (task.json: the same groups)
with the same feature columns (text categories as integer codes), scoring the test rows.

    python reference.py DATA.csv TASK.json OUT.csv   -> OUT.csv: row, xgb_ndcg, lgbm_lambdarank, seconds_*
"""

from __future__ import annotations

import json
import sys
import time

import numpy as np
import pandas as pd


def main(data: str, task_path: str, out: str) -> None:
    rec = json.load(open(task_path))
    df = pd.read_csv(data)
    lab = df[df[rec["target"]].notna() & df[rec["group_column"]].notna()].reset_index(drop=True)
    X = lab[rec["categorical"] + rec["numeric"]].copy()
    for c in rec["categorical"]:
        X[c] = X[c].astype("category").cat.codes
    y = lab[rec["target"]].to_numpy(dtype=float)
    if rec["grades"]["mapping"] != "as given":  # the same ordered grades dsagent learns (ratings 0.5-5 -> 0-9)
        y = np.searchsorted(np.array(rec["grades"]["values"]), y).astype(float)
    qid = pd.factorize(lab[rec["group_column"]].astype(str))[0]
    tr, te = np.array(rec["split"]["train_rows"]), np.array(rec["split"]["test_rows"])
    order = tr[np.argsort(qid[tr], kind="stable")]
    result = pd.DataFrame({"row": te})
    from xgboost import XGBRanker

    t0 = time.monotonic()
    xgb = XGBRanker(objective="rank:ndcg").fit(X.iloc[order], y[order], qid=qid[order])
    result["xgb_ndcg"] = xgb.predict(X.iloc[te])
    result["seconds_xgb_ndcg"] = round(time.monotonic() - t0, 2)
    from lightgbm import LGBMRanker

    t0 = time.monotonic()
    sizes = np.unique(qid[order], return_counts=True)[1]  # rows per group, in the sorted order
    lgb = LGBMRanker(verbose=-1).fit(X.iloc[order], y[order].astype(int), group=sizes)
    result["lgbm_lambdarank"] = lgb.predict(X.iloc[te])
    result["seconds_lgbm_lambdarank"] = round(time.monotonic() - t0, 2)
    result.to_csv(out, index=False)


if __name__ == "__main__":
    main(*sys.argv[1:4])
