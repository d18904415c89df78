"""Model quality guarantees (issue 3), on small synthetic data, each in seconds.

- the test split never reaches fit/tune/ensemble (a spy on every fit);
- unseen categories (and new missing values) at predict time do not crash any family, including
  XGBoost's native categories; missing-indicators only where enough rows are missing;
- class imbalance: PR-AUC by default, class-weighted candidates;
- the decision threshold comes from the stated costs on out-of-fold predictions;
- the same seed and a fixed trial count give the same leaderboard;
- ensembles and log-target models rebuild from their spec and survive a skops round trip.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn.compose import ColumnTransformer
from sklearn.pipeline import Pipeline

from dsagent.tools.registry import ToolContext, all_tools
from dsagent.tools.schemas import CVPlan, CVResult, Leaderboard, LeaderboardRow, SplitSpec, TaskSpec


def _frame(n: int = 240, seed: int = 0, imbalance: float = 0.5) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    x1, x2 = rng.normal(size=n), rng.normal(size=n)
    color = rng.choice(["red", "green", "blue"], size=n)
    city = np.array([f"city{i}" for i in rng.integers(0, 60, size=n)])  # high cardinality: target-encoded
    logit = 1.5 * x1 - x2 + (color == "red") * 1.0 + np.log(imbalance / (1 - imbalance))
    y = (rng.random(n) < 1 / (1 + np.exp(-logit))).astype(int)
    x1[rng.random(n) < 0.1] = np.nan
    return pd.DataFrame({"x1": x1, "x2": x2, "color": color, "city": city, "y": np.where(y == 1, "yes", "no")})


def _ctx(tmp_path: Path, df: pd.DataFrame, name: str = "s", **answers) -> ToolContext:
    session = tmp_path / name
    (session / "artifacts").mkdir(parents=True)
    data = session / "data.csv"
    df.to_csv(data, index=False)
    return ToolContext(session_dir=session, artifacts_dir=session / "artifacts", data_path=data, seed=0,
                       answers=dict(answers), roots=[str(session)])


def _call(ctx: ToolContext, name: str, **args):
    return all_tools()[name].invoke(ctx, args)


def _task(**fields) -> TaskSpec:
    """A task spec for calling a library helper directly: the fields the test names, neutral
    values for the required rest (define_task writes the real one)."""
    neutral = {"target": "y", "task": "binary", "metric": "roc_auc", "greater_is_better": True, "features": {},
               "n_rows": 0, "n_labelled": 0, "n_train": 0, "n_test": 0, "split": {"kind": "stratified"},
               "cv": {"kind": "kfold"}}
    return TaskSpec.model_validate({**neutral, **fields})


def _row(**fields) -> LeaderboardRow:
    """A leaderboard row with the timings the test names (name, metric and score are neutral)."""
    return LeaderboardRow.model_validate({"name": fields.get("family", "m"), "metric": "roc_auc", "cv_mean": 0.0,
                                          **fields})


def _flat_cv(X, splits, fit_s: float, fold_fit_s: float, refit_params: dict | None = None) -> CVResult:
    """What cross_validate returns for a model that predicts 0.5 for every row (for fake CVs that
    only cost time)."""
    return CVResult(oof=np.full((len(X), 2), 0.5), covered=np.ones(len(X), bool), fold_scores=[0.5] * len(splits),
                    fit_s=fit_s, predict_s=0.0, n_predicted=len(X), refit_params=refit_params or {},
                    fold_fit_s=fold_fit_s, fold_rows=len(X), fold_rounds=None, fold_val_rows=len(X) / len(splits))


def test_test_rows_never_reach_fit(tmp_path, monkeypatch):
    """A spy on every Pipeline/ColumnTransformer fit: only training rows, in every tool but
    evaluate's scoring (and evaluate fits on training rows too)."""
    seen: list[tuple[str, set]] = []
    stage = {"name": "?"}
    for cls, methods in ((Pipeline, ("fit",)), (ColumnTransformer, ("fit", "fit_transform"))):
        for meth in methods:
            original = getattr(cls, meth)

            def spy(self, X, y=None, *a, _original=original, **k):
                if hasattr(X, "index"):
                    seen.append((stage["name"], set(X.index.tolist())))
                return _original(self, X, y, *a, **k)

            monkeypatch.setattr(cls, meth, spy)
    ctx = _ctx(tmp_path, _frame())
    for name, args in (("define_task", {"target": "y", "metric": "roc_auc"}),
                       ("train_models", {"models": ["linear", "xgboost"]}),
                       ("tune_model", {"family": "xgboost", "n_trials": 2, "time_budget_s": 60}),
                       ("build_ensemble", {}),
                       ("evaluate_model", {})):
        stage["name"] = name
        _call(ctx, name, **args)
    task = json.loads((ctx.artifacts_dir / "task.json").read_text())
    test_rows, train_rows = set(task["test_rows"]), set(task["train_rows"])
    assert test_rows and not test_rows & train_rows
    stages = {s for s, _ in seen}
    assert {"train_models", "tune_model", "evaluate_model"} <= stages
    for stage_name, rows in seen:
        assert not rows & test_rows, f"{stage_name} fitted on {len(rows & test_rows)} test rows"
        assert rows <= train_rows


@pytest.mark.parametrize("family", ["baseline", "linear", "xgboost", "hist_gb", "random_forest", "extra_trees", "mlp"])
def test_unseen_categories_and_new_missing_values_do_not_crash(family):
    from dsagent.tools.features import build_pipeline

    df = _frame(120)
    df["when"] = pd.date_range("2024-01-01", periods=len(df), freq="D").astype(str)
    df["note"] = np.where(np.arange(len(df)) % 2, "late payment again", "paid on time")
    kinds = {"x1": "numeric", "x2": "numeric", "color": "categorical", "city": "categorical", "when": "datetime",
             "note": "text"}
    X, y = df[list(kinds)], (df["y"] == "yes").astype(int).to_numpy()
    model = build_pipeline({"family": family, "params": {}}, kinds, X, "binary", 0, 2).fit(X, y)
    new = pd.DataFrame({"x1": [np.nan, 1.0], "x2": [np.nan, 0.0], "color": ["purple", None], "city": ["atlantis", None],
                        "when": ["not a date", None], "note": [None, "completely new words"]})
    proba = model.predict_proba(new)
    assert proba.shape == (2, 2) and np.isfinite(proba).all()


def test_imbalanced_binary_gets_pr_auc_and_weighted_candidates(tmp_path):
    from dsagent.tools.task import default_metric
    from dsagent.tools.train import candidate_specs

    assert default_metric("binary", 0.05) == "pr_auc" and default_metric("binary", 0.4) == "roc_auc"
    assert default_metric("multiclass", 0.2) == "log_loss"
    df = _frame(400)
    df["y"] = np.where(np.arange(400) % 20 == 0, "yes", "no")  # 5% positive
    ctx = _ctx(tmp_path, df)
    out = _call(ctx, "define_task", target="y")
    assert out.summary["metric"] == "pr_auc" and out.summary["split"]["kind"] == "stratified"
    task = TaskSpec.read(ctx.artifacts_dir)
    y = np.array([1] * 10 + [0] * 190)
    specs = candidate_specs(task, y)
    assert specs["linear_balanced"]["params"]["class_weight"] == "balanced"
    assert specs["xgboost_balanced"]["params"]["scale_pos_weight"] == pytest.approx(19.0)
    board = _call(ctx, "train_models", models=["linear", "linear_balanced"]).record["leaderboard"]
    assert {r["name"] for r in board} >= {"baseline", "linear", "linear_balanced"}


def test_threshold_minimises_the_stated_costs_on_out_of_fold_predictions():
    from dsagent.tools.evaluate import choose_threshold

    rng = np.random.default_rng(0)
    y = (rng.random(2000) < 0.3).astype(int)
    s = np.clip(0.3 * y + rng.normal(0.35, 0.2, size=2000), 0, 1)

    def cost(t, cfp, cfn):
        pred = s >= t
        return cfp * np.sum(pred & (y == 0)) + cfn * np.sum(~pred & (y == 1))

    costly_misses = choose_threshold(y, s, cost_fp=1.0, cost_fn=10.0)
    costly_alarms = choose_threshold(y, s, cost_fp=10.0, cost_fn=1.0)
    assert costly_misses["threshold"] < costly_alarms["threshold"]
    assert "10 x FN" in costly_misses["rule"] and "out-of-fold" in costly_misses["rule"]
    grid = np.unique(np.quantile(s, np.linspace(0.005, 0.995, 199)))
    assert cost(costly_misses["threshold"], 1, 10) == min(cost(t, 1, 10) for t in grid)
    assert "F1" in choose_threshold(y, s, None, None)["rule"]


def test_evaluate_takes_the_threshold_from_costs_not_from_the_test_split(tmp_path):
    ctx = _ctx(tmp_path, _frame(300), cost_fp=1.0, cost_fn=8.0)
    _call(ctx, "define_task", target="y", metric="roc_auc")
    _call(ctx, "train_models", models=["linear"])
    ev = _call(ctx, "evaluate_model").record
    th = ev["threshold"]
    assert "8 x FN" in th["rule"] and "out-of-fold" in th["rule"]
    assert th["threshold"] < 0.5  # misses cost 8x false alarms: flag earlier
    assert ev["test_ci"][0] <= ev["test_score"] <= ev["test_ci"][1]
    lat = ev["latency"]["single_row_ms"]
    assert lat["p50"] <= lat["p95"] <= lat["p99"]


def test_same_seed_same_leaderboard(tmp_path):
    boards = []
    for name in ("a", "b"):
        ctx = _ctx(tmp_path, _frame(200, seed=3), name=name)
        _call(ctx, "define_task", target="y", metric="roc_auc")
        _call(ctx, "train_models", models=["linear", "xgboost"])
        _call(ctx, "tune_model", family="xgboost", n_trials=3, time_budget_s=120)
        board = json.loads((ctx.artifacts_dir / "leaderboard.json").read_text())
        boards.append([(r["name"], round(r["cv_mean"], 10), json.dumps(r["params"], sort_keys=True)) for r in board])
    assert boards[0] == boards[1]
    assert any(name == "xgboost_tuned" for name, _, _ in boards[0])


def test_xgboost_early_stops_in_cv_and_refits_with_fixed_rounds(tmp_path):
    ctx = _ctx(tmp_path, _frame(200))
    _call(ctx, "define_task", target="y", metric="roc_auc")
    board = _call(ctx, "train_models", models=["xgboost"]).record["leaderboard"]
    row = next(r for r in board if r["name"] == "xgboost")
    assert 10 <= row["params"]["n_estimators"] < 2000  # early stopping found a round count; the refit uses it


def test_ensemble_spec_rebuilds_and_survives_a_skops_round_trip(tmp_path):
    from dsagent.tools.features import build_pipeline
    from dsagent.tools.model_io import load_model, save_model

    df = _frame(150)
    kinds = {"x1": "numeric", "x2": "numeric", "color": "categorical", "city": "categorical"}
    X, y = df[list(kinds)], (df["y"] == "yes").astype(int).to_numpy()
    members = [{"family": "linear", "params": {"C": 0.5}}, {"family": "xgboost", "params": {"n_estimators": 30}}]
    spec = {"family": "ensemble", "params": {"members": members, "weights": [2, 1], "names": ["linear", "xgboost"]}}
    model = build_pipeline(spec, kinds, X, "binary", 0, 2).fit(X, y)
    parts = [build_pipeline(m, kinds, X, "binary", 0, 2).fit(X, y).predict_proba(X) for m in members]
    np.testing.assert_allclose(model.predict_proba(X), (2 * parts[0] + parts[1]) / 3, rtol=1e-6)
    again = build_pipeline(spec, kinds, X, "binary", 0, 2).fit(X, y)  # deterministic: the notebook relies on it
    np.testing.assert_array_equal(model.predict_proba(X), again.predict_proba(X))
    path = tmp_path / "model" / "model.skops"
    save_model(model, path, {"task": "binary"})
    loaded, _ = load_model(path)
    np.testing.assert_array_equal(loaded.predict_proba(X), model.predict_proba(X))


def test_greedy_ensemble_is_kept_only_when_it_beats_the_best_single_model():
    from dsagent.tools.ensemble import greedy_selection
    from dsagent.tools.metrics import get_metric

    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, 400)
    splits = [(None, np.arange(i, 400, 4)) for i in range(4)]
    metric = get_metric("log_loss", "binary")
    good = np.clip(y + rng.normal(0, 0.35, 400), 0.02, 0.98)
    other = np.clip(y + rng.normal(0, 0.35, 400), 0.02, 0.98)  # independent errors: blending helps
    as_proba = [np.c_[1 - p, p] for p in (good, other)]
    counts, value = greedy_selection(_task(task="binary"), metric, y, as_proba, splits)
    assert sum(c > 0 for c in counts) == 2
    single = min(metric.fn(y, p) for p in as_proba)
    assert value < single
    # A copy of the same model adds nothing: the selection stays with one member.
    counts, _ = greedy_selection(_task(task="binary"), metric, y, [as_proba[0], as_proba[0]], splits)
    assert sum(c > 0 for c in counts) == 1


def test_log_target_is_scored_on_the_original_scale(tmp_path):
    rng = np.random.default_rng(0)
    n = 300
    x = rng.normal(size=n)
    price = np.exp(2 + 0.8 * x + rng.normal(0, 0.3, n))  # skewed, positive
    ctx = _ctx(tmp_path, pd.DataFrame({"x": x, "z": rng.normal(size=n), "price": price}))
    _call(ctx, "define_task", target="price", metric="rmse")
    board = _call(ctx, "train_models", models=["linear", "linear_log"]).record["leaderboard"]
    log_row = next(r for r in board if r["name"] == "linear_log")
    assert log_row["params"]["target_transform"] == "log1p"
    # RMSE in price units (the spread of price is ~ tens), not log units (~0.3).
    assert log_row["cv_mean"] > 1.0


def test_fast_bootstrap_matches_scikit_learn():
    from sklearn import metrics as skm

    from dsagent.tools.metrics import _weighted_rank_metric, bootstrap_ci, get_metric

    rng = np.random.default_rng(2)
    y = (rng.random(500) < 0.25).astype(int)
    s = np.round(rng.random(500) * 0.6 + 0.3 * y, 2)  # ties on purpose
    idx = rng.integers(0, 500, (4, 500))
    w = np.zeros((4, 500))
    np.add.at(w, (np.repeat(np.arange(4), 500), idx.ravel()), 1.0)
    for name, fn in (("roc_auc", skm.roc_auc_score), ("pr_auc", skm.average_precision_score)):
        fast = _weighted_rank_metric(get_metric(name, "binary"), y, s, w)
        np.testing.assert_allclose(fast, [fn(y[i], s[i]) for i in idx], rtol=1e-10)
    lo, hi = bootstrap_ci(get_metric("roc_auc", "binary"), y, (s > 0.5).astype(int), np.c_[1 - s, s])
    assert lo < skm.roc_auc_score(y, s) < hi


def test_fast_one_vs_rest_auc_bootstrap_matches_scikit_learn():
    from sklearn import metrics as skm

    from dsagent.tools.metrics import _weighted_ovr_auc, bootstrap_ci, get_metric

    rng = np.random.default_rng(3)
    y = rng.integers(0, 3, 90)
    proba = rng.dirichlet([1, 1, 1], 90) * 0.6 + np.eye(3)[y] * 0.4
    idx = rng.integers(0, 90, (5, 90))
    w = np.zeros((5, 90))
    np.add.at(w, (np.repeat(np.arange(5), 90), idx.ravel()), 1.0)
    np.testing.assert_allclose(_weighted_ovr_auc(y, proba, w),
                               [skm.roc_auc_score(y[i], proba[i], multi_class="ovr", labels=[0, 1, 2]) for i in idx], rtol=1e-10)
    lo, hi = bootstrap_ci(get_metric("roc_auc_ovr", "multiclass"), y, proba.argmax(axis=1), proba)
    assert lo < skm.roc_auc_score(y, proba, multi_class="ovr") < hi


def test_float32_probabilities_score_as_the_run_scored_them():
    """XGBoost's predict_proba is float32 and the run scores its float64 copy (cv.predict_any); the
    notebook scores the float32 array. Both must give the same number to the last bit, or the
    notebook's reproduction check fails (it did on lme4's InstEval: 1.53969910 vs 1.53969920)."""
    from dsagent.tools.metrics import get_metric, score

    rng = np.random.default_rng(0)
    proba = rng.dirichlet(np.ones(5), size=400).astype(np.float32)
    y = rng.integers(0, 5, 400)
    for name in ("log_loss", "roc_auc_ovr"):
        metric = get_metric(name, "multiclass")
        assert score(metric, y, proba.argmax(1), proba) == score(metric, y, proba.argmax(1), proba.astype(float))


def test_offline_run_leaderboard_and_evaluation(offline_run):
    art = Path(offline_run.session_dir) / "artifacts"
    board = json.loads((art / "leaderboard.json").read_text())
    assert any(r["family"] == "baseline" for r in board)
    for r in board:
        assert {"cv_mean", "cv_std", "fit_s", "predict_ms_per_1k"} <= set(r)
    ev = json.loads((art / "evaluation.json").read_text())
    assert ev["metric"] == "log_loss" and ev["test_score"] < ev["baseline_score"]
    assert ev["test_ci"] and "single_row_ms" in ev["latency"]
    assert "island" in ev["segments"]


def test_vectorised_bootstrap_of_label_metrics_matches_scikit_learn():
    from dsagent.tools.metrics import METRICS, _resampled_counts, score

    rng = np.random.default_rng(3)
    idx = rng.integers(0, 400, (6, 400))
    y = rng.integers(0, 2, 400)
    pred = np.where(rng.random(400) < 0.7, y, 1 - y)
    y3 = rng.integers(0, 4, 400)
    pred3 = np.where(rng.random(400) < 0.6, y3, rng.integers(0, 4, 400))
    y_reg = rng.normal(10, 3, 400)
    p_reg = y_reg + rng.normal(0, 1, 400)
    cases = [(n, y, pred) for n in ("precision", "recall", "f1", "balanced_accuracy")]
    cases += [(n, y3, pred3) for n in ("f1_macro", "balanced_accuracy")] + [("r2", y_reg, p_reg)]
    for name, truth, guess in cases:
        fast = _resampled_counts(METRICS[name], truth, guess, idx)
        slow = [score(METRICS[name], truth[i], guess[i], None) for i in idx]
        np.testing.assert_allclose(fast, slow, rtol=1e-12, err_msg=name)


def test_batched_permutation_importance_ranks_the_informative_column_first():
    from dsagent.tools.explain import permutation_drops
    from dsagent.tools.features import build_pipeline

    df = _frame(300)
    task = _task(task="binary", metric="roc_auc", classes=["no", "yes"])
    kinds = {"x1": "numeric", "x2": "numeric", "color": "categorical", "city": "categorical"}
    X, y = df[list(kinds)], (df["y"] == "yes").to_numpy(dtype=int)
    model = build_pipeline({"family": "linear", "params": {}}, kinds, X, "binary", 0, 2).fit(X, y)
    drops, repeats = permutation_drops(model, X, y, task, seed=0, time_limit=30, max_repeats=3)
    assert drops.shape == (4, 3) and repeats == 3
    mean = dict(zip(kinds, drops.mean(axis=1)))
    assert mean["x1"] > 0.05 and mean["x2"] > 0.05  # the two columns the label is drawn from
    assert max(mean, key=mean.get) in ("x1", "x2") and abs(mean["city"]) < mean["x1"]


def test_categorical_strings_are_the_same_for_new_and_previously_saved_models():
    from dsagent.tools.features import ToStrings

    frame = pd.DataFrame({"a": [1.0, None, 2.0], "b": ["x", None, "z"], "c": [True, False, True]})
    frame["d"] = pd.array([1, None, 3], dtype="Int64")
    new = ToStrings().fit(frame).transform(frame)
    assert isinstance(new, np.ndarray)
    assert new[0].tolist() == ["1.0", "x", "True", "1"] and all(pd.isna(new[1, [0, 1, 3]]))
    old = ToStrings().fit(frame)
    del old.frame_output_  # as unpickled from a model saved before the change
    legacy = old.transform(frame)
    assert list(legacy.columns) == ["a", "b", "c", "d"] and legacy.to_numpy().tolist()[2] == new.tolist()[2]


def test_final_fit_on_a_subsample_is_recorded_and_the_notebook_rebuilds_it(tmp_path):
    ctx = _ctx(tmp_path, _frame(700))
    _call(ctx, "define_task", target="y")
    _call(ctx, "train_models", models=["linear"])
    _call(ctx, "evaluate_model", max_fit_rows=300)
    ev = json.loads((ctx.artifacts_dir / "evaluation.json").read_text())
    assert ev["fit_rows"] == 300 and ev["n_train"] == 560
    nb = _call(ctx, "write_notebook", timeout_s=120)
    assert nb.summary["executed"] and nb.summary["matches"] is True, nb.summary
    assert "subsample(X_train, y_train" in (ctx.artifacts_dir / "notebook.ipynb").read_text()
    _call(ctx, "write_report")
    assert "300 of the 560 training rows" in (ctx.artifacts_dir / "report.md").read_text()


@pytest.mark.parametrize("family,params", [("xgboost", {}), ("hist_gb", {"categorical": "native"})])
def test_native_categories_keep_no_order_and_tolerate_unseen_levels(family, params):
    from dsagent.tools.features import build_pipeline

    df = _frame(160)
    kinds = {"x1": "numeric", "x2": "numeric", "color": "categorical", "city": "categorical"}
    X, y = df[list(kinds)], (df["y"] == "yes").astype(int).to_numpy()
    model = build_pipeline({"family": family, "params": params}, kinds, X, "binary", 0, 2).fit(X, y)
    encoded = model.named_steps["preprocess"].transform(X.head())
    assert isinstance(encoded["color"].dtype, pd.CategoricalDtype)  # levels, not codes with an order
    assert list(encoded["color"].cat.categories) == ["blue", "green", "red"]
    new = pd.DataFrame({"x1": [np.nan, 1.0], "x2": [0.5, np.nan], "color": ["purple", None], "city": ["atlantis", None]})
    proba = model.predict_proba(new)
    assert proba.shape == (2, 2) and np.isfinite(proba).all()


def test_native_categories_fall_back_to_codes_with_text_and_refuse_unknown_modes():
    from dsagent.tools.features import build_pipeline

    df = _frame(80)
    df["note"] = np.where(np.arange(len(df)) % 2, "late payment again", "paid on time")
    kinds = {"x1": "numeric", "color": "categorical", "note": "text"}
    X, y = df[list(kinds)], (df["y"] == "yes").astype(int).to_numpy()
    model = build_pipeline({"family": "xgboost", "params": {}}, kinds, X, "binary", 0, 2).fit(X, y)
    assert not isinstance(model.named_steps["preprocess"].transform(X.head()), pd.DataFrame)  # sparse TF-IDF: codes
    for bad in ({"family": "xgboost", "params": {"categorical": "onehot"}},
                {"family": "random_forest", "params": {"categorical": "native"}}):
        with pytest.raises(ValueError, match="categorical"):
            build_pipeline(bad, kinds, X, "binary", 0, 2)


def test_missing_indicators_only_for_columns_missing_in_enough_rows():
    from dsagent.tools.features import RARE, build_pipeline

    df = _frame(120)
    df["once"] = df["x2"].where(np.arange(len(df)) != 0)  # one row: an indicator would learn from one example
    df["often"] = df["x2"].where(np.arange(len(df)) > RARE * 2)
    kinds = {"once": "numeric", "often": "numeric", "color": "categorical"}
    X, y = df[list(kinds)], (df["y"] == "yes").astype(int).to_numpy()
    for family in ("linear", "xgboost"):
        model = build_pipeline({"family": family, "params": {}}, kinds, X, "binary", 0, 2).fit(X, y)
        names = list(model.named_steps["preprocess"].get_feature_names_out())
        assert "missingindicator_often" in names and "missingindicator_once" not in names, names
        assert np.isfinite(model.predict_proba(X.iloc[:3])).all()


def test_narrow_tables_search_more_rows_and_boosting_refits_sublinearly():
    from dsagent.tools.task import search_rows_cap
    from dsagent.tools.cv import estimated_refit_s

    assert search_rows_cap(60) == search_rows_cap(60, 40) == 9_000
    assert search_rows_cap(60, 12) == 18_000 and search_rows_cap(60, 4) == 27_000  # at most 3x
    forest = {"family": "random_forest", "fold_fit_s": 1.0, "fold_rows": 1_000}
    boosting = {**forest, "family": "xgboost"}
    assert estimated_refit_s(forest, 10_000) == pytest.approx(10.0)
    assert 5.0 < estimated_refit_s(boosting, 10_000) < 10.0
    assert estimated_refit_s(boosting, 500) == pytest.approx(1.0)  # never less than a fold's fit
    assert search_rows_cap(56.2, 9) == search_rows_cap(58.9, 9) == 22_000  # the same rows despite timing jitter


def test_boosting_relearns_its_rounds_when_the_search_saw_a_small_subsample(tmp_path, monkeypatch):
    """Large data is searched on a subsample: the final XGBoost fit early-stops again on held-out
    training rows (never test rows), and a plain fit of the recorded params rebuilds it exactly."""
    from dsagent.tools import evaluate as evaluate
    from dsagent.tools.cv import growth_plan

    ctx = _ctx(tmp_path, _frame(1500))
    _call(ctx, "define_task", target="y", metric="roc_auc")
    task = TaskSpec.read(ctx.artifacts_dir)
    task.cv = CVPlan(kind="kfold", folds=3, max_rows=300)  # as on data 4x larger than the search rows
    task.write(ctx.artifacts_dir)
    _call(ctx, "train_models", models=["xgboost"])
    seen = {}
    original = evaluate.fit_grown

    def spy(spec, plan, task, X_fit, y_fit, X_es, y_es, *rest):
        seen.update(fit=set(X_fit.index), es=set(X_es.index))
        return original(spec, plan, task, X_fit, y_fit, X_es, y_es, *rest)

    monkeypatch.setattr(evaluate, "fit_grown", spy)
    _call(ctx, "evaluate_model", max_fit_s=30)
    ev = json.loads((ctx.artifacts_dir / "evaluation.json").read_text())
    grown = ev["grown"]
    assert ev["fit_rows"] == grown["rows"] - grown["es_rows"] == len(seen["fit"]) and len(seen["es"]) == grown["es_rows"]
    assert not seen["fit"] & seen["es"] and (seen["fit"] | seen["es"]) <= set(task.train_rows)
    assert ev["params"]["n_estimators"] == grown["rounds"] and ev["params"]["learning_rate"] >= 0.05
    nb = _call(ctx, "write_notebook", timeout_s=120)
    assert nb.summary["executed"] and nb.summary["matches"] is True, nb.summary

    row = Leaderboard.read(ctx.artifacts_dir)[0]
    by_time = task.model_copy(update={"split": SplitSpec(kind="time")})
    assert growth_plan(row, by_time, 1200, 30) is None  # no random holdout in time
    assert growth_plan(row, task, int(2.5 * row.fold_rows), 30) is None  # the search saw enough rows
    roomy, tight = growth_plan(row, task, 100_000, 1e4), growth_plan(row, task, 100_000, 0.01)
    assert roomy["rows"] == 100_000 and roomy["learning_rate"] == pytest.approx(0.05)
    assert tight["learning_rate"] == pytest.approx(0.15) and tight["rows"] < 100_000  # 3x the step, then fewer rows


def test_final_fit_rows_follow_what_the_time_affords():
    """evaluate_model(max_fit_s=...) fits every row when they (nearly) fit the time, else fewer,
    never fewer than the search's own rows; the autopilot only passes the seconds."""
    from dsagent.tools.evaluate import final_fit_rows

    task = _task(task="binary", split={"kind": "stratified"})
    row = _row(family="random_forest", fold_fit_s=1.0, fold_rows=6_000)  # ~1.7 s on 10k rows

    def rows(n, seconds):
        y = np.arange(n) % 2
        keep, held, grow = final_fit_rows(row, task, y, None, seconds, seed=0)
        assert held is None and grow is None
        return len(keep)

    assert rows(10_000, 60) == 10_000
    assert rows(10_000, 1.45) == 10_000  # 1.67 s wanted, 1.45 s allowed: all rows anyway
    assert rows(10_000, 1.0) < 10_000  # 40% short: fewer rows
    assert 110_000 < rows(200_000, 20) < 130_000  # ~33 s wanted, 20 s allowed: about 60% of the rows
    assert rows(200_000, 0.5) == 6_000  # never below the rows the search used


def test_search_does_not_start_a_candidate_the_time_left_cannot_cover(tmp_path, monkeypatch):
    """A candidate is started only when the time left covers what a typical finished one took."""
    import time

    from dsagent.tools import train as train

    ctx = _ctx(tmp_path, _frame(200))
    _call(ctx, "define_task", target="y", metric="roc_auc")
    cost = {"baseline": 0.0, "linear": 0.2, "xgboost": 1.0, "extra_trees": 0.1}
    started = []

    def fake_cv(spec, X, y, task, ctx, splits, on_fold=None, deadline=None, keep_partial=False):
        name = next(n for n, c in cost.items() if n == spec["family"])
        started.append(name)
        time.sleep(cost[name])
        return _flat_cv(X, splits, fit_s=cost[name], fold_fit_s=cost[name] / len(splits))

    monkeypatch.setattr(train, "cross_validate", fake_cv)
    out = _call(ctx, "train_models", models=["linear", "xgboost", "extra_trees"], time_budget_s=1.8)
    assert started == ["baseline", "linear", "xgboost"]  # <0.6 s left after xgboost, the median took 0.6 s
    assert "extra_trees (out of time)" in out.summary["skipped"]


def test_tuning_does_not_start_a_trial_the_time_left_cannot_cover(tmp_path, monkeypatch):
    """Optuna's timeout is checked before a trial only; tune_model also stops when the time left is
    shorter than a typical complete trial, so tuning ends within its budget. Each fake trial moves
    tune_model's clock by 6 s (no sleeping: the test does not depend on the machine's speed).
    Optuna's own timeout runs on the real clock: the budget is ten times what two fake trials take
    there on a loaded machine, so only tune_model's stop can end the study after two."""
    import types

    from dsagent.tools import tune as tune
    from dsagent.tools import tuning as tuning  # the trial objective lives there

    ctx = _ctx(tmp_path, _frame(200))
    _call(ctx, "define_task", target="y", metric="roc_auc")
    _call(ctx, "train_models", models=["linear"])
    clock = {"now": 1_000.0}
    for module in (tune, tuning):
        monkeypatch.setattr(module, "time", types.SimpleNamespace(time=lambda: clock["now"]))

    def slow_cv(spec, X, y, task, ctx, splits, on_fold=None, deadline=None):
        clock["now"] += 6.0
        return _flat_cv(X, splits, fit_s=6.0, fold_fit_s=2.0, refit_params=dict(spec["params"]))

    for module in (tune, tuning):
        monkeypatch.setattr(module, "cross_validate", slow_cv)
    out = _call(ctx, "tune_model", family="linear", time_budget_s=15)
    assert out.summary["trials"] == {"complete": 2}  # the third would have started with 3 s left
    assert out.summary["seconds"] == pytest.approx(12.0)


def test_a_resumed_study_keeps_the_earlier_best_without_paying_its_folds_again(tmp_path, monkeypatch):
    """The autopilot resumes a study with time the deliverables do not need (issue 18). When no new
    trial beats the best an earlier call found, its saved row and out-of-fold predictions stand: its
    folds are not fitted again past the budget."""
    from dsagent.tools import tune as tune
    from dsagent.tools import tuning as tuning

    ctx = _ctx(tmp_path, _frame(200))
    _call(ctx, "define_task", target="y", metric="roc_auc")
    _call(ctx, "train_models", models=["linear"])
    # Every trial scores the same, so the study's best stays its first trial (Optuna keeps the first of ties).
    monkeypatch.setattr(tuning, "cross_validate", lambda spec, X, y, task, ctx, splits, on_fold=None, deadline=None:
                        _flat_cv(X, splits, fit_s=0.1, fold_fit_s=0.02, refit_params=dict(spec["params"])))
    refits = []
    monkeypatch.setattr(tune, "cross_validate", lambda *a, **k: refits.append(1))
    first = _call(ctx, "tune_model", family="linear", n_trials=2)
    again = _call(ctx, "tune_model", family="linear", n_trials=2)
    assert refits == [] and again.summary["best_params"] == first.summary["best_params"]
    row = next(r for r in Leaderboard.read(ctx.artifacts_dir) if r.name == "linear_tuned")
    assert row.trials == 4


# -- quality floors (issue 15): where the right answer is known, a drop in model quality fails CI --


def test_penguins_quality_floor_on_the_test_rows(offline_run):
    """Palmer penguins separate almost perfectly by bill and flipper measurements: published
    models reach ~0.98-1.0 accuracy. The shared offline run's test rows must stay near that."""
    ev = json.loads((Path(offline_run.session_dir) / "artifacts" / "evaluation.json").read_text())
    assert ev["n_test"] >= 60
    assert ev["test_metrics"]["accuracy"] >= 0.95, ev["test_metrics"]
    assert ev["test_metrics"]["log_loss"] <= 0.15, ev["test_metrics"]


def _search_and_evaluate(ctx: ToolContext, **task_args) -> dict:
    """The autopilot's modelling steps with a tiny budget: candidates, blend, final fit, test score."""
    _call(ctx, "define_task", **task_args)
    _call(ctx, "train_models", time_budget_s=10)
    _call(ctx, "build_ensemble")
    _call(ctx, "evaluate_model")
    task = json.loads((ctx.artifacts_dir / "task.json").read_text())
    return {"ev": json.loads((ctx.artifacts_dir / "evaluation.json").read_text()), "test_rows": task["test_rows"]}


def test_binary_auc_is_within_0_03_of_the_bayes_auc(tmp_path):
    """P(y=1|x) is known, so the best AUC any model can reach on the test rows is the AUC of that
    probability on them (the Bayes ranking): a Monte Carlo estimate with the true function, paired
    with dsagent's score on the same rows so their sampling noise cancels."""
    from sklearn.metrics import roc_auc_score

    rng = np.random.default_rng(11)
    n = 1000
    x1, x2, x3, x4 = (rng.normal(size=n) for _ in range(4))
    color = rng.choice(["red", "green", "blue"], size=n)
    logit = 1.4 * x1 - 1.0 * x2 + 0.8 * x3 * (x4 > 0) + 0.9 * (color == "red") - 0.2
    p = 1 / (1 + np.exp(-logit))
    y = rng.random(n) < p
    df = pd.DataFrame({"x1": x1, "x2": x2, "x3": x3, "x4": x4, "color": color, "y": np.where(y, "yes", "no")})
    out = _search_and_evaluate(_ctx(tmp_path, df), target="y", metric="roc_auc")
    rows = np.asarray(out["test_rows"])
    bayes = roc_auc_score(y[rows], p[rows])
    assert out["ev"]["metric"] == "roc_auc"
    assert out["ev"]["test_score"] >= bayes - 0.03, (out["ev"]["test_score"], bayes, out["ev"]["model"])


def test_regression_r2_is_within_0_05_of_the_best_possible(tmp_path):
    """y = f(x) + N(0, 1) with f known: the best R² on the test rows is that of f itself there."""
    from sklearn.metrics import r2_score

    rng = np.random.default_rng(12)
    n = 1000
    x1, x2, x3 = (rng.uniform(-2, 2, size=n) for _ in range(3))
    kind = rng.choice(["a", "b", "c"], size=n)
    f = 2.0 * x1 + 1.5 * np.sin(1.5 * x2) + 0.8 * x3 * (x1 > 0) + np.select([kind == "a", kind == "b"], [1.0, -1.0], 0.0)
    y = f + rng.normal(0.0, 1.0, size=n)
    df = pd.DataFrame({"x1": x1, "x2": x2, "x3": x3, "kind": kind, "y": y})
    out = _search_and_evaluate(_ctx(tmp_path, df), target="y", metric="r2")
    rows = np.asarray(out["test_rows"])
    best = r2_score(y[rows], f[rows])
    assert out["ev"]["test_metrics"]["r2"] >= best - 0.05, (out["ev"]["test_metrics"]["r2"], best, out["ev"]["model"])
