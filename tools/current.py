"""The model against what is in use today (answers key `current_baseline`).

Today's system given as per-row predictions (a column of the data, or a rule in the derived-feature
language such as `tenure_months < 12`) is scored on the same test rows as the model, and the two
are compared by a paired bootstrap of the difference: each resample draws the same rows for both,
so the CI reflects how much better the model is on these rows, not the two scores' separate noise.
A number (today's score) has no rows to pair with: it is compared with the model's CI
(tools/business.against_current).

No @tool here: evaluate_model calls `compare_with_current`.
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np
import pandas as pd

from dsagent.tools.business import against_current
from dsagent.tools.derived_step import DerivedFeatures
from dsagent.tools.metrics import Metric, score

N_BOOT = 1000
TIME_LIMIT_S = 3.0


def current_predictions(rule: str, train: pd.DataFrame, test: pd.DataFrame, task_kind: str,
                        classes: list[str] | None) -> tuple[np.ndarray, np.ndarray | None, np.ndarray]:
    """(pred, proba or None, rows with a prediction) of today's system on the test rows. A column
    of class labels gives those labels; for a binary target, numbers in [0, 1] are the probability
    of the positive class (a 0/1 rule is a decision); for regression, the numbers are the predictions."""
    name = "current_baseline"
    step = DerivedFeatures([f"{name} = {rule}"]).fit(train)
    rule_is_column = rule.strip().strip("`") in test.columns
    raw = test[rule.strip().strip("`")] if rule_is_column else step.transform(test)[name]
    raw = pd.Series(np.asarray(raw), index=range(len(test)))
    if task_kind == "regression" or not classes:
        values = pd.to_numeric(raw, errors="coerce").to_numpy(dtype=float)
        ok = np.isfinite(values)
        return values, None, ok
    labels = raw.astype("string")
    index = {str(c): i for i, c in enumerate(classes)}
    if labels.dropna().isin(list(index)).all() and labels.notna().any():  # today's system names classes
        ok = labels.notna().to_numpy()
        pred = np.array([index.get(str(v), 0) if pd.notna(v) else 0 for v in labels])
        return pred, np.eye(len(classes))[pred], ok
    p = pd.to_numeric(raw, errors="coerce").to_numpy(dtype=float)
    ok = np.isfinite(p) & (p >= 0) & (p <= 1)
    if len(classes) != 2 or not ok.any():
        raise ValueError(f"current_baseline {rule!r} gives neither class labels ({', '.join(map(str, classes))}) "
                         "nor probabilities in [0, 1]")
    p = np.where(ok, p, 0.0)
    return (p >= 0.5).astype(int), np.column_stack([1 - p, p]), ok


def _safe(metric: Metric, y, pred, proba) -> float | None:
    try:
        value = score(metric, y, pred, proba)
    except Exception:  # a resample with one class: AUC is undefined there
        return None
    return value if np.isfinite(value) else None


def paired_difference(metric: Metric, y: np.ndarray, model: tuple[np.ndarray, np.ndarray | None],
                      current: tuple[np.ndarray, np.ndarray | None], *, seed: int = 0, n: int = N_BOOT,
                      time_limit: float = TIME_LIMIT_S) -> dict[str, Any]:
    """Model minus today's system on the same rows, with a paired bootstrap 95% CI of the difference."""
    pick = lambda p, rows: None if p is None else p[rows]  # noqa: E731
    model_score = score(metric, y, *model)
    current_score = score(metric, y, *current)
    rng = np.random.default_rng(seed)
    diffs: list[float] = []
    started = time.perf_counter()
    for _ in range(n):
        rows = rng.integers(0, len(y), len(y))
        a = _safe(metric, y[rows], model[0][rows], pick(model[1], rows))
        b = _safe(metric, y[rows], current[0][rows], pick(current[1], rows))
        if a is not None and b is not None:
            diffs.append(a - b)
        if time.perf_counter() - started > time_limit and len(diffs) >= 200:
            break
    lo, hi = (float(np.percentile(diffs, 2.5)), float(np.percentile(diffs, 97.5))) if len(diffs) >= 20 else (np.nan, np.nan)
    return {"model_score": model_score, "current_score": current_score, "difference": model_score - current_score,
            "difference_ci": [lo, hi], "n_boot": len(diffs), "n_rows": int(len(y))}


def compare_with_current(current: Any, metric: Metric, y: np.ndarray, pred: np.ndarray, proba: np.ndarray | None,
                         ci: Any, *, train: pd.DataFrame, test: pd.DataFrame, task_kind: str,
                         classes: list[str] | None, seed: int = 0, n_boot: int = N_BOOT) -> dict[str, Any] | None:
    """evaluation.json's `current_comparison`: paired when today's predictions can be computed per
    row, else the number against the model's CI; None when no current_baseline was given."""
    if current is None:
        return None
    if not isinstance(current, str):
        return against_current(current, score(metric, y, pred, proba), ci, metric.greater_is_better)
    try:
        c_pred, c_proba, ok = current_predictions(current, train, test, task_kind, classes)
    except Exception as exc:  # noqa: BLE001  the rule was checked up front; what remains is said, not raised
        return {"current_baseline": current, "outcome": "not compared", "reason": f"not compared with today's system "
                f"({current}): {str(exc).splitlines()[0][:200]}"}
    rows = np.flatnonzero(ok)
    out = paired_difference(metric, y[rows], (pred[rows], None if proba is None else proba[rows]),
                            (c_pred[rows], None if c_proba is None else c_proba[rows]), seed=seed, n=n_boot)
    lo, hi = out["difference_ci"]
    sign = 1 if metric.greater_is_better else -1
    outcome = ("better" if sign * lo > 0 and sign * hi > 0 else "worse" if sign * lo < 0 and sign * hi < 0
               else "not distinguishable")
    skipped = len(y) - len(rows)
    relation = {"better": "better than", "worse": "worse than"}.get(outcome, "not distinguishable from")
    out.update(current_baseline=current, outcome=outcome, paired=True,
               reason=f"{relation} what is in use today ({current}): {metric.name} {out['model_score']:.4g} against "
                      f"{out['current_score']:.4g} on the same {len(rows)} test rows"
                      + (f" ({skipped} rows without a prediction from it left out)" if skipped else "")
                      + f"; difference {out['difference']:+.4g}, paired bootstrap 95% CI {lo:+.4g} to {hi:+.4g}")
    return out
