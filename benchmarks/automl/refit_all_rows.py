"""What shipping a model refit on every labelled row would buy (issue 18; a measurement, not a
product change).

dsagent keeps an untouched test split (20% of the rows it is given) and ships the model fitted on
the other 80%; FLAML and AutoGluon fit on every row they are given. This script takes the model
each dsagent run of the AutoML table shipped (benchmarks/results/automl.json), clones its
estimator (same configuration, same seeds) and fits it twice on the benchmark's training file:
on the session's own training rows (which reproduces the table's score exactly, the check that the
clone is the shipped model) and on all of them; both are scored on the benchmark's test file.

    .venv/bin/python benchmarks/automl/refit_all_rows.py --half development

Writes benchmarks/results/refit_all_rows_<half>.json and prints one line per dataset.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.base import clone

from bench import DATA, ROOT, _row_score, _truth  # the table's own scorer, on the same test labels
from dsagent.tools.model_io import load_model

RESULTS = ROOT / "benchmarks" / "results"


def _predict(model, kind: str, X: pd.DataFrame, task_classes: list[str], meta_classes: list[str]) -> np.ndarray:
    """Predictions in bench.py's layout: values, or probabilities with columns in meta.json's class order."""
    if kind == "regression":
        return np.asarray(model.predict(X), dtype=float)
    return np.asarray(model.predict_proba(X), dtype=float)[:, [task_classes.index(c) for c in meta_classes]]


def measure(name: str, entry: dict) -> dict:
    """The shipped estimator fitted on the session's training rows and on every row, both scored."""
    session = entry["systems"]["dsagent"]["session_dir"]  # recorded from the clone that ran the table
    artifacts = ROOT / "benchmarks" / "work" / session.split("benchmarks/work/", 1)[1] / "artifacts"
    task = json.loads((artifacts / "task.json").read_text())
    meta = json.loads((DATA / name / "meta.json").read_text())
    train = pd.read_csv(DATA / name / "train.csv")
    test = pd.read_csv(DATA / name / "test.csv")
    truth = _truth(meta)
    estimator = load_model(artifacts / "model")[0]
    features, target, kind = list(task["features"]), task["target"], entry["task"]
    rows = task["train_rows"]
    rows = json.loads(rows) if isinstance(rows, str) else rows
    out = {"metric": entry["metric"], "greater_is_better": entry["greater_is_better"],
           "table": entry["systems"]["dsagent"]["score"], "rows_shipped": len(rows), "rows_all": len(train)}
    for label, picked in (("shipped_rows", rows), ("all_rows", list(range(len(train))))):
        y = train[target].iloc[picked]
        if kind != "regression":
            y = y.astype(str).map({c: i for i, c in enumerate(task["classes"])}).to_numpy()
        model = clone(estimator).fit(train[features].iloc[picked], y)
        pred = _predict(model, kind, test[features], task.get("classes") or [], meta.get("classes") or [])
        out[label] = round(_row_score(kind, truth, pred), 6)
    for peer in ("flaml", "autogluon"):
        out[peer] = entry["systems"].get(peer, {}).get("score")
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--half", default="development", choices=["development", "confirmation"])
    args = ap.parse_args()
    table = json.loads((RESULTS / "automl.json").read_text())["datasets"]
    names = json.loads((ROOT / "benchmarks" / "suite_split.json").read_text())[args.half]["datasets"]
    results = {}
    for name in names:
        results[name] = measure(name, table[name])
        print(name, results[name], file=sys.stderr, flush=True)
    (RESULTS / f"refit_all_rows_{args.half}.json").write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
