"""Bagged final model against one refit, the same chosen candidate, scored on the benchmark's
test split (issue 18: is bagging worth making the default?). Quality only: the candidates are
fixed and the search time generous, so a loaded machine changes the timings, not the scores.

    .venv/bin/python benchmarks/automl/bagging_check.py hsb2 carseats ...   # development-half names

Needs the prepared splits (datasets.py). Prints one JSON line per dataset.
"""

from __future__ import annotations

import json
import shutil
import sys
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn import metrics as skm

from dsagent.tools.model_io import load_model
from dsagent.tools.registry import ToolContext, all_tools

DATA = Path(__file__).resolve().parent.parent / "work" / "data"
METRIC = {"binary": "roc_auc", "multiclass": "log_loss", "regression": "rmse"}
CANDIDATES = ["linear", "hist_gb_default", "xgboost_default", "xgboost"]


def test_score(model, manifest: dict, meta: dict, test: pd.DataFrame) -> float:
    X, truth = test.drop(columns=[meta["target"]]), test[meta["target"]]
    if meta["task"] == "regression":
        return float(np.sqrt(np.mean((model.predict(X) - truth.to_numpy()) ** 2)))
    classes = [str(c) for c in manifest["classes"]]
    y = truth.astype(str).map({c: i for i, c in enumerate(classes)}).to_numpy()
    proba = model.predict_proba(X)
    if meta["task"] == "binary":
        return float(skm.roc_auc_score(y, proba[:, 1]))
    return float(skm.log_loss(y, proba, labels=range(len(classes))))


def check(name: str) -> dict:
    meta = json.loads((DATA / name / "meta.json").read_text())
    test = pd.read_csv(DATA / name / "test.csv")
    session = Path(tempfile.mkdtemp())
    (session / "artifacts").mkdir()
    shutil.copy(DATA / name / "train.csv", session / "data.csv")
    ctx = ToolContext(session_dir=session, artifacts_dir=session / "artifacts", data_path=session / "data.csv", seed=0,
                      answers={"task": meta["task"]}, roots=[str(session)])
    tools = all_tools()
    tools["define_task"].invoke(ctx, {"target": meta["target"], "metric": METRIC[meta["task"]], "task": meta["task"]})
    tools["train_models"].invoke(ctx, {"models": CANDIDATES, "time_budget_s": 120})
    scores = {}
    for bagged in (False, True):
        chosen = tools["evaluate_model"].invoke(ctx, {"bagged": bagged}).summary["model"]
        scores["bagged" if bagged else "single"] = round(test_score(*load_model(session), meta, test), 5)
    shutil.rmtree(session, ignore_errors=True)
    return {"dataset": name, "model": chosen, "metric": METRIC[meta["task"]], **scores}


if __name__ == "__main__":
    for arg in sys.argv[1:]:
        print(json.dumps(check(arg)), flush=True)
