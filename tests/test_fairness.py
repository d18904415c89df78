"""Fairness is offered, not only run on request: sensitive-looking columns get one question (default:
audit them, for the report only), and the fairness table gives each group's metric with a
bootstrap CI and the largest gap with its CI."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd

from dsagent.questions import sensitive_columns
from dsagent.tools.fairness import fairness_table
from dsagent.tools.metrics import get_metric


def test_sensitive_looking_columns_are_found_by_name_and_a_person_like_age():
    cols = ["Sex", "applicant_gender", "Race", "Ethnicity", "Marital Status", "MaritalStatus", "religion", "nationality",
            "disability", "age", "cement", "usage", "stage", "page_views"]
    facts = {"age": {"min": 17, "max": 90}}
    assert sensitive_columns(cols, facts) == cols[:10]
    assert sensitive_columns(["age"], {"age": {"min": 1, "max": 365}}) == []  # concrete's age in days


def test_each_group_has_a_ci_and_the_gap_has_one():
    rng = np.random.default_rng(0)
    n = 400
    group = pd.Series(np.where(rng.random(n) < 0.5, "a", "b"))
    y = rng.integers(0, 2, n)
    pred = np.where(group.to_numpy() == "a", y, np.where(rng.random(n) < 0.6, y, 1 - y))  # b is served worse
    table = fairness_table(group, y, pred, None, get_metric("accuracy", "binary"))
    by = {r["value"]: r for r in table["groups"]}
    assert by["a"]["score"] == 1.0 and 0.5 < by["b"]["score"] < 0.7
    lo, hi = by["b"]["ci"]
    assert lo < by["b"]["score"] < hi
    gap = table["gap"]
    assert gap["between"] == ["a", "b"] and gap["ci"][0] < gap["value"] < gap["ci"][1] and gap["ci"][0] > 0.2


def test_the_offline_run_offers_and_runs_the_audit(offline_run):
    """The shared run (penguins, target species) gave no sensitive_columns: `sex` was offered and
    assumed audited; the report shows its groups with CIs and the gap with its CI, and sex is still a feature."""
    assert offline_run.answers["sensitive_columns"].value == ["sex"]
    assert offline_run.answers["sensitive_columns"].source == "assumed"
    art = Path(offline_run.session_dir) / "artifacts"
    ev = json.loads((art / "evaluation.json").read_text())
    sex = ev["fairness"]["sex"]
    assert {r["value"] for r in sex["groups"]} >= {"male", "female"} and all(r["ci"] for r in sex["groups"] if r["judged"])
    assert sex["gap"] is not None and len(sex["gap"]["ci"]) == 2
    report = (art / "report.md").read_text()
    assert "Largest gap in" in report and "95% CI" in report and "| group | rows |" in report
    assert "sex" in json.loads((art / "task.json").read_text())["features"]


def test_the_vectorised_draws_agree_with_one_at_a_time():
    """ROC-AUC per group: all resamples at once (the fast path) give the intervals the one-at-a-time
    path gives, within bootstrap noise."""
    from dsagent.tools import fairness

    rng = np.random.default_rng(1)
    n = 600
    group = pd.Series(rng.choice(["a", "b", "c"], n))
    y = rng.integers(0, 2, n)
    s = np.clip(0.5 * y + rng.normal(0.25, 0.3, n) * np.where(group == "c", 2.0, 1.0), 0, 1)
    proba = np.c_[1 - s, s]
    metric = get_metric("roc_auc", "binary")
    fast = fairness_table(group, y, (s > 0.5).astype(int), proba, metric, n_boot=400)
    slow_path = fairness.resampled_scores
    try:
        fairness.resampled_scores = lambda *a, **k: None  # forces the one-at-a-time loop
        slow = fairness_table(group, y, (s > 0.5).astype(int), proba, metric, n_boot=400, time_limit=60)
    finally:
        fairness.resampled_scores = slow_path
    assert fast["n_boot"] == slow["n_boot"] == 400
    for f, sl in zip(fast["groups"], slow["groups"]):
        assert f["value"] == sl["value"] and f["score"] == sl["score"]
        assert abs(f["ci"][0] - sl["ci"][0]) < 0.03 and abs(f["ci"][1] - sl["ci"][1]) < 0.03
    assert fast["gap"]["between"] == slow["gap"]["between"] and abs(fast["gap"]["ci"][1] - slow["gap"]["ci"][1]) < 0.04
