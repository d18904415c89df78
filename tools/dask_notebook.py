"""notebook.ipynb for a model trained on the cluster (train_on_cluster): the same workflow on a
sample that fits one process, with a note saying so.

The cluster's model saw every training row through xgboost.dask; a notebook that must run on a
laptop cannot. So it reads the first parts of the data until it holds SAMPLE_ROWS rows, applies the
same hash split (tools/hash_split.py: the same rows are test rows whatever the partitioning), fits
the shipped family with the recorded settings (XGBoost: its parameters and the number of rounds the
cluster kept; a sample family: the same scikit-learn pipeline) and scores it on the sample's test
rows, next to the cluster's test score on all of them.
The scores differ by design (fewer rows, another subset); what must agree is the workflow. Dask is
not used: the notebook needs only pandas, xgboost and scikit-learn.
"""

from __future__ import annotations

from typing import Any

import nbformat
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

from dsagent.tools.markdown import md_cell
from dsagent.tools.registry import ToolContext

SAMPLE_ROWS = 50_000


def build_cluster_notebook(ctx: ToolContext, session: dict[str, Any], rec: dict[str, Any]) -> nbformat.NotebookNode:
    best, kind, metric = rec["best"], rec["task"], rec["metric"]
    xgb = rec["rows_seen"]["xgboost_dask"]
    split = rec["rows_seen"]["test"]
    score = rec["scores"][best]
    keys = rec.get("key_columns") or None
    data = session.get("data_path")
    rounds = int(xgb.get("best_iteration", 0)) + 1
    intro = (f"# Predict `{md_cell(rec['target'])}`: the cluster run, re-created on a sample\n\n"
             f"The shipped model, **{best}**, was trained on a Dask cluster: xgboost.dask saw {xgb['rows']:,} training rows "
             f"(+{xgb['validation_rows']:,} validation rows for early stopping), the other families a sample. Its test "
             f"{metric} is **{score[metric]}** (95% CI {score['ci'][0]} - {score['ci'][1]}) on {split['rows']:,} test rows, "
             "scored partition by partition.\n\n"
             f"**This notebook re-creates the model on a sample** of at most {SAMPLE_ROWS:,} rows (the first parts of the data) so that "
             "it runs in one process without Dask: the same hash split, the same family and settings"
             + (f" (XGBoost `hist`, {rounds} rounds: the cluster's best iteration)" if best == "xgboost_dask" else "")
             + ". Its scores are on the sample's test rows and differ from the cluster's by design.")
    load = f'''from pathlib import Path

import numpy as np
import pandas as pd

from dsagent.tools.hash_split import test_mask

DATA = Path({data!r})
TARGET, KIND, SEED = {rec["target"]!r}, {kind!r}, {ctx.seed}
FEATURES = {rec["features"]!r}
KEYS = {keys!r}  # the hash split's row key (None: every column of the row)
CLASSES = {rec.get("classes") or []!r}
SAMPLE_ROWS = {SAMPLE_ROWS}

if DATA.is_dir():  # Parquet parts, in order, until the sample is full
    frames, n = [], 0
    for part in sorted(p for p in DATA.rglob("*") if p.suffix.lower() in (".parquet", ".pq")):
        frames.append(pd.read_parquet(part))
        n += len(frames[-1])
        if n >= SAMPLE_ROWS:
            break
    df = pd.concat(frames, ignore_index=True).iloc[:SAMPLE_ROWS]
elif DATA.suffix.lower() in (".parquet", ".pq"):
    df = pd.read_parquet(DATA).iloc[:SAMPLE_ROWS]
else:
    df = pd.read_csv(DATA, nrows=SAMPLE_ROWS)
print(f"{{len(df):,}} rows read of {{DATA.name}}")'''
    split_code = f'''# The hash split (the cluster's): test rows first, then validation rows out of the training side.
hashed = KEYS or list(df.columns)
df = df.dropna(subset=[TARGET])
is_test = test_mask(df, hashed, {rec.get("test_fraction", 0.2)!r}, SEED).to_numpy()
train, test = df[~is_test], df[is_test]
fit = train[~test_mask(train, hashed, 0.1, SEED + 1).to_numpy()]
if KIND == "regression":
    y_fit, y_test = fit[TARGET].astype(float).to_numpy(), test[TARGET].astype(float).to_numpy()
else:
    codes = {{c: i for i, c in enumerate(CLASSES)}}
    y_fit = fit[TARGET].astype(str).map(codes).to_numpy()
    y_test = test[TARGET].astype(str).map(codes).to_numpy()
print(f"fit {{len(fit):,}} rows, test {{len(test):,}} rows of the sample")'''
    if best == "xgboost_dask":
        params = {k: v for k, v in (xgb.get("params") or {}).items()}
        fit_code = f'''import xgboost as xgb

PARAMS = {params!r}  # as on the cluster
model = xgb.train(PARAMS, xgb.DMatrix(fit[FEATURES], label=y_fit), num_boost_round={rounds})'''
    else:
        fit_code = f'''from dsagent.tools.dask_train import sample_models

model = sample_models(KIND, SEED)[{best!r}].fit(fit[FEATURES], y_fit)  # the same pipeline as on the cluster'''
    # (Not the saved model.skops: loading it imports skops, whose trusted-type scan imports every
    # scikit-learn module, torch included; tens of seconds for a check the report already makes.)
    score_code = f'''from dsagent.tools.dask_deliverables import loss

recreated_score = loss(model, test[FEATURES], y_test, KIND)
print(f"sample test {metric}, re-created on {{len(fit):,}} rows: {{recreated_score:.5f}}")
print("cluster test {metric} on all {split['rows']:,} test rows: {score[metric]} (95% CI {score['ci'][0]} - {score['ci'][1]})")'''
    nb = new_notebook(cells=[
        new_markdown_cell(intro),
        new_markdown_cell("## The data (a sample)"), new_code_cell(load),
        new_markdown_cell(f"## The split\n\n{md_cell(split['split'], 400)}."), new_code_cell(split_code),
        new_markdown_cell(f"## The model: {best}"), new_code_cell(fit_code),
        new_markdown_cell("## Scores on the sample's test rows"), new_code_cell(score_code),
        new_markdown_cell("The cluster's figures (report.md) are the ones to quote: they are computed on every test row."),
    ])
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nb.metadata["dsagent"] = {"reported_test_score": score[metric], "recreated_on_sample": SAMPLE_ROWS}
    return nb
