"""A segment of the test split whose rows are all one class leaves ROC-AUC undefined. scikit-learn
warns and returns NaN there (it used to raise); the NaN reached the segments plot's axis limits and
stopped write_report on german_credit, so that run shipped no report. The report now says the metric
is undefined for that segment and still draws the others."""

from __future__ import annotations

import json

import numpy as np

from test_bagging import _call, _ctx

from dsagent.tools.metrics import get_metric


def test_an_undefined_metric_is_none_not_nan():
    from dsagent.tools.metric_table import defined_score, scores_of

    auc = get_metric("roc_auc", "binary")
    y, proba = np.array([1, 1, 1]), np.array([[0.2, 0.8], [0.4, 0.6], [0.9, 0.1]])
    assert defined_score(auc, y, y, proba) is None
    assert defined_score(auc, np.array([1, 0, 1]), y, proba) == 0.5
    assert "roc_auc" not in scores_of({"roc_auc": auc}, y, y, proba)


def test_the_report_is_written_when_a_segment_holds_one_class(tmp_path):
    ctx, df = _ctx(tmp_path, n=240)
    # Every row of branch "z" is a "no": in the test split its ROC-AUC has one class to rank.
    df["branch"] = np.where(df["y"] == "no", np.random.default_rng(2).choice(["x", "y", "z"], len(df)), "x")
    df.to_csv(ctx.data_path, index=False)
    ctx.answers = {"sensitive_columns": ["branch"]}
    _call(ctx, "define_task", target="y", metric="roc_auc")
    _call(ctx, "train_models", models=["linear"], time_budget_s=20)
    _call(ctx, "evaluate_model", model="linear")
    task = json.loads((ctx.artifacts_dir / "task.json").read_text())
    assert set(df.iloc[task["test_rows"]].query("branch == 'z'")["y"]) == {"no"}
    out = _call(ctx, "write_report")
    report = (ctx.artifacts_dir / "report.md").read_text()
    rows = {line.split("|")[1].strip(): line for line in report.splitlines() if line.startswith("| ")}
    assert rows["z"].split("|")[3].strip() == "n/a" and "nan" not in report.lower()
    assert "plots/segments_branch.png" in out.summary["plots_added"]  # the other branches are still drawn
    assert (ctx.artifacts_dir / "plots" / "segments_branch.png").exists()
