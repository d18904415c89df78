"""Stacking on out-of-fold predictions (issue 18): kept only when its own cross-validated score
beats the best single model and the greedy blend; the stacked model rebuilds from its spec,
survives a skops round trip and predicts on raw rows."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest

from dsagent.tools.metrics import get_metric
from dsagent.tools.schemas import LeaderboardRow, TaskSpec


def _task(kind: str, metric: str, classes=None, split: str = "stratified") -> TaskSpec:
    return TaskSpec.model_validate({"target": "y", "task": kind, "metric": metric, "greater_is_better": metric != "log_loss"
                                    and metric != "rmse", "features": {}, "n_rows": 0, "n_labelled": 0, "n_train": 0,
                                    "n_test": 0, "split": {"kind": split}, "cv": {"kind": "kfold"}, "classes": classes})


def _rows(*names) -> list[LeaderboardRow]:
    return [LeaderboardRow(name=n, family="linear", metric="m", cv_mean=0.0, fit_s=1.0) for n in names]


def _folds(n: int, k: int = 5):
    return [(np.empty(0, int), np.arange(i, n, k)) for i in range(k)]


def _try(task, metric, y, oofs, blend_value=None, cost=None, max_refit_s=None):
    from dsagent.tools.ensemble import fold_scores, try_stacking

    folds = _folds(len(y))
    single = [float(np.mean(fold_scores(task, metric, y, o, folds))) for o in oofs]
    sign = 1 if metric.greater_is_better else -1
    order = sorted(range(len(oofs)), key=lambda i: -sign * single[i])  # the pool comes best first
    pool = _rows(*[f"m{i}" for i in order])
    return try_stacking(SimpleNamespace(seed=0), task, metric, pool, [oofs[i] for i in order], y, folds,
                        cost or [1.0] * len(oofs), max_refit_s, single[order[0]], blend_value)


def test_stacking_is_kept_when_a_learned_combination_beats_the_single_model_and_the_blend():
    """Two members that see different halves of the signal, one of them on the wrong scale (its
    predictions are twice the truth): an average cannot undo the scale, non-negative level-2
    weights can, so the stack's out-of-fold RMSE beats both."""
    rng = np.random.default_rng(0)
    n = 600
    a, b = rng.normal(size=n), rng.normal(size=n)
    y = a + b + rng.normal(0, 0.3, n)
    oofs = [a + 0.5 * rng.normal(0, 0.3, n), 2.0 * b + 0.2 * rng.normal(size=n)]
    task, metric = _task("regression", "rmse"), get_metric("rmse", "regression")
    blend_value = float(np.sqrt(np.mean((y - (oofs[0] + oofs[1]) / 2) ** 2)))  # the best equal-weight blend
    out = _try(task, metric, y, oofs, blend_value=blend_value)
    assert out["summary"]["tried"] and out["summary"]["kept"], out["summary"]
    assert out["summary"]["stack_cv"] < blend_value
    assert out["spec"]["family"] == "stack" and len(out["spec"]["params"]["members"]) == 2
    assert np.all(np.asarray(out["spec"]["params"]["coef"]) >= 0)  # non-negative level-2 weights
    assert not np.isnan(out["oof"]).any()


def test_stacking_is_refused_when_it_does_not_beat_the_best_single_model():
    """The first member is the true probability itself: no combination learned out of fold can beat
    it, so the stack is tried, scored and refused, and the summary says why."""
    rng = np.random.default_rng(1)
    n = 800
    p = 1 / (1 + np.exp(-rng.normal(0, 2, n)))
    y = (rng.random(n) < p).astype(int)
    noisy = np.clip(p + rng.normal(0, 0.25, n), 0.01, 0.99)
    oofs = [np.c_[1 - p, p], np.c_[1 - noisy, noisy]]
    task, metric = _task("binary", "log_loss", ["no", "yes"]), get_metric("log_loss", "binary")
    out = _try(task, metric, y, oofs)
    s = out["summary"]
    assert s["tried"] and not s["kept"] and "spec" not in out
    assert s["stack_cv"] > s["best_single_cv"] and "does not beat" in s["reason"]


def test_stacking_is_not_tried_when_turned_off_under_a_time_split_or_without_room():
    y = np.arange(50, dtype=float)
    oofs = [y + 1, y - 1]
    metric = get_metric("rmse", "regression")
    from dsagent.tools.ensemble import try_stacking

    off = try_stacking(SimpleNamespace(seed=0), _task("regression", "rmse"), metric, _rows("a", "b"), oofs, y, _folds(50),
                       [1, 1], None, 1.0, None, enabled=False)
    assert not off["summary"]["tried"] and "DSAGENT_STACKING=1" in off["summary"]["reason"]
    timed = _try(_task("regression", "rmse", split="time"), metric, y, oofs)
    assert not timed["summary"]["tried"] and "time split" in timed["summary"]["reason"]
    # Only the best member's refit fits the final fit's time: nothing to stack.
    tight = _try(_task("regression", "rmse"), metric, y, oofs, cost=[3.0, 3.0], max_refit_s=4.0)
    assert not tight["summary"]["tried"] and "fewer than two" in tight["summary"]["reason"]


def test_multiclass_level2_probabilities_are_honest_and_sum_to_one():
    from dsagent.tools.stacking import level2_inputs, level2_oof

    rng = np.random.default_rng(2)
    y = rng.integers(0, 3, 300)
    members = [rng.dirichlet([1, 1, 1], 300) for _ in range(2)]
    Z = level2_inputs("multiclass", members)
    assert Z.shape == (300, 6)
    oof = level2_oof("multiclass", Z, y, [va for _, va in _folds(300)], 3)
    np.testing.assert_allclose(oof.sum(axis=1), 1.0)
    # Members that know nothing: the out-of-fold stack stays near the class prior (log-loss ~ log 3).
    assert get_metric("log_loss", "multiclass").fn(y, oof) == pytest.approx(np.log(3), abs=0.1)


def test_a_stacked_model_rebuilds_from_its_spec_survives_skops_and_predicts_raw_rows(tmp_path):
    from dsagent.tools.features import build_pipeline
    from dsagent.tools.model_io import load_model, save_model
    from dsagent.tools.stacking import apply_level2, level2_inputs

    rng = np.random.default_rng(3)
    n = 160
    X = pd.DataFrame({"x1": rng.normal(size=n), "color": rng.choice(["red", "blue"], n)})
    y = ((X["x1"] + (X["color"] == "red")) + rng.normal(0, 0.5, n) > 0.5).astype(int).to_numpy()
    kinds = {"x1": "numeric", "color": "categorical"}
    members = [{"family": "linear", "params": {"C": 0.5}}, {"family": "xgboost", "params": {"n_estimators": 20}}]
    spec = {"family": "stack", "params": {"members": members, "names": ["linear", "xgboost"],
                                          "coef": [[0.8, 0.4]], "intercept": [-0.1]}}
    model = build_pipeline(spec, kinds, X, "binary", 0, 2).fit(X, y)
    parts = [build_pipeline(m, kinds, X, "binary", 0, 2).fit(X, y).predict_proba(X) for m in members]
    expected = apply_level2("binary", level2_inputs("binary", parts), [[0.8, 0.4]], [-0.1])
    np.testing.assert_allclose(model.predict_proba(X), expected, rtol=1e-6)
    path = tmp_path / "model" / "model.skops"
    save_model(model, path, {"task": "binary"})
    loaded, _ = load_model(path)
    np.testing.assert_array_equal(loaded.predict_proba(X), model.predict_proba(X))
    assert set(loaded.named_estimators_) == {"linear", "xgboost"}  # explain finds the XGBoost member
