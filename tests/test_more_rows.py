"""The second look on more rows (tools/more_rows.py): when the search ran on a subsample, the
leading families are fitted on more training rows and scored on held-out training rows, and that
score orders them on the leaderboard."""

from __future__ import annotations

import json

import pandas as pd

from dsagent.tools import more_rows
from dsagent.tools.schemas import CVPlan, Leaderboard, TaskSpec
from tests.test_model_quality import _call, _ctx, _frame, _row


def test_rows_scored_on_more_rows_swap_places_among_themselves_only(tmp_path):
    rows = [_row(name="linear", family="linear", cv_mean=0.93, more_rows_score=0.90),
            _row(name="tuned_xgb", family="xgboost", cv_mean=0.925),  # tuned later on the subsample: keeps its CV place
            _row(name="hgb", family="hist_gb", cv_mean=0.92, more_rows_score=0.95),
            _row(name="baseline", family="baseline", cv_mean=0.5)]
    ranked = Leaderboard.write(tmp_path, rows, greater_is_better=True)
    assert [r.name for r in ranked] == ["hgb", "tuned_xgb", "linear", "baseline"]
    assert [r["name"] for r in json.loads((tmp_path / "leaderboard.json").read_text())] == [r.name for r in ranked]
    # lower is better (log-loss, RMSE): the lower second-look score leads
    low = [r.model_copy(update={"cv_mean": -r.cv_mean if r.cv_mean else 0}) for r in rows]
    assert Leaderboard.write(tmp_path, low, greater_is_better=False)[0].name == "linear"


def test_contenders_are_the_best_row_of_each_leading_family():
    board = [_row(name="xgboost_tuned", family="xgboost", cv_mean=0.9), _row(name="blend", family="ensemble", cv_mean=0.95),
             _row(name="xgboost", family="xgboost", cv_mean=0.89), _row(name="linear", family="linear", cv_mean=0.88),
             _row(name="baseline", family="baseline", cv_mean=0.5), _row(name="mlp", family="mlp", cv_mean=0.8),
             _row(name="hist_gb", family="hist_gb", cv_mean=0.7)]
    assert [r.name for r in more_rows.contenders(board)] == ["xgboost_tuned", "linear", "mlp"]


def test_the_rows_planned_are_the_largest_multiple_the_time_covers():
    rows = [_row(name="a", family="linear", cv_mean=0.9, fold_fit_s=1.0, fold_rows=1000)]
    assert more_rows.plan_rows(rows, 1000, 100_000, 100.0) == 8000
    assert more_rows.plan_rows(rows, 1000, 100_000, 5.0) == 4000
    assert more_rows.plan_rows(rows, 1000, 100_000, 1.0) is None  # not even twice the rows
    assert more_rows.plan_rows(rows, 1000, 1500, 100.0) is None  # the pool holds under twice the rows


def test_train_models_on_a_subsample_looks_again_on_held_out_training_rows(tmp_path, monkeypatch):
    ctx = _ctx(tmp_path, _frame(1600))
    _call(ctx, "define_task", target="y", metric="roc_auc")
    task = TaskSpec.read(ctx.artifacts_dir)
    task.cv = CVPlan(kind="kfold", folds=3, max_rows=300)  # as on data 4x larger than the search rows
    task.write(ctx.artifacts_dir)
    seen: list[tuple[set, set]] = []
    original = more_rows.predict_any

    def spy(model, X, task_):
        seen.append(set(X.index))
        return original(model, X, task_)

    monkeypatch.setattr(more_rows, "predict_any", spy)
    out = _call(ctx, "train_models", models=["linear", "hist_gb_default", "xgboost_default"], time_budget_s=60)
    look = out.summary["more_rows"]
    assert look["fit_rows"] >= 600 and look["val_rows"] == 320 and len(look["scores"]) == 3, look
    ranked = Leaderboard.read(ctx.artifacts_dir)
    looked = [r for r in ranked if r.more_rows_score is not None]
    assert [r.name for r in looked] == look["order"]  # ordered by the second look, best first
    assert out.summary["best"] == look["order"][0]
    assert all(rows <= set(task.train_rows) for rows in seen)  # never a test row
    assert len(seen) == 3 and len(seen[0]) == 320

    # The report says why the order differs from the CV column
    _call(ctx, "evaluate_model", max_fit_s=30)
    _call(ctx, "write_report")
    assert "fitted on several times those rows" in (ctx.artifacts_dir / "report.md").read_text()


def test_a_time_split_keeps_the_subsample_cv_order(tmp_path):
    df = _frame(1600)
    df["when"] = pd.date_range("2020-01-01", periods=len(df), freq="h").astype(str)
    ctx = _ctx(tmp_path, df)
    _call(ctx, "define_task", target="y", metric="roc_auc", time_column="when")
    task = TaskSpec.read(ctx.artifacts_dir)
    assert task.split.kind == "time"
    task.cv = CVPlan(kind="kfold", folds=3, max_rows=300)
    task.write(ctx.artifacts_dir)
    out = _call(ctx, "train_models", models=["linear", "hist_gb_default"], time_budget_s=60)
    assert "time split" in out.summary["more_rows"]["skipped"]
    assert all(r.more_rows_score is None for r in Leaderboard.read(ctx.artifacts_dir))


def test_a_contender_that_fails_on_more_rows_keeps_its_cv_place_and_is_named(tmp_path, monkeypatch):
    ctx = _ctx(tmp_path, _frame(1600))
    _call(ctx, "define_task", target="y", metric="roc_auc")
    task = TaskSpec.read(ctx.artifacts_dir)
    task.cv = CVPlan(kind="kfold", folds=3, max_rows=300)
    task.write(ctx.artifacts_dir)
    original = more_rows.build_pipeline

    def broken_for_linear(spec, *args, **kwargs):
        if spec["family"] == "linear":
            raise MemoryError("as on a table too large for the linear model's one-hot columns")
        return original(spec, *args, **kwargs)

    monkeypatch.setattr(more_rows, "build_pipeline", broken_for_linear)
    out = _call(ctx, "train_models", models=["linear", "hist_gb_default", "xgboost_default"], time_budget_s=60)
    look = out.summary["more_rows"]
    assert look["failed"] and look["failed"][0].startswith("linear (MemoryError") and set(look["scores"]) == {
        "hist_gb_default", "xgboost_default"}
    linear = next(r for r in Leaderboard.read(ctx.artifacts_dir) if r.name == "linear")
    assert linear.more_rows_score is None


def test_no_second_look_when_the_search_already_saw_most_rows(tmp_path):
    ctx = _ctx(tmp_path, _frame(1600))
    _call(ctx, "define_task", target="y", metric="roc_auc")
    task = TaskSpec.read(ctx.artifacts_dir)
    task.cv = CVPlan(kind="kfold", folds=3, max_rows=700)  # 1,280 training rows: no room for twice 700
    task.write(ctx.artifacts_dir)
    out = _call(ctx, "train_models", models=["linear", "hist_gb_default"], time_budget_s=60)
    assert "too many for a fit on twice as many" in out.summary["more_rows"]["skipped"]


def test_the_report_compares_linear_on_the_larger_sample_when_it_led_the_cv():
    from dsagent.tools.report_sections import _section_tradeoffs

    board = [{"name": "hist_gb_default", "family": "hist_gb", "cv_mean": 0.9297, "cv_std": 0.0048, "more_rows_score": 0.9467},
             {"name": "linear", "family": "linear", "cv_mean": 0.9329, "cv_std": 0.0044, "more_rows_score": 0.9414}]
    text = "\n".join(_section_tradeoffs(board, {"model": "hist_gb_default", "family": "hist_gb"}))
    assert "led the subsample's CV (0.9329 vs 0.9297) but scored 0.9414 vs 0.9467" in text
    assert "prefer it when explanations matter" not in text


def test_families_the_subsample_over_rates_are_left_out_of_the_blend():
    board = [_row(name="hist_gb_default", family="hist_gb", cv_mean=0.9297, more_rows_score=0.9467),
             _row(name="hist_gb_tuned", family="hist_gb", cv_mean=0.931),
             _row(name="xgboost_default", family="xgboost", cv_mean=0.9214, more_rows_score=0.9445),
             _row(name="linear", family="linear", cv_mean=0.9329, more_rows_score=0.9414)]
    assert more_rows.subsample_overrated(board, greater_is_better=True) == {"linear"}
    assert more_rows.subsample_overrated(board[:2], greater_is_better=True) == set()  # no second look
    low = [r.model_copy(update={"cv_mean": -r.cv_mean, "more_rows_score": None if r.more_rows_score is None
                                else -r.more_rows_score}) for r in board]
    assert more_rows.subsample_overrated(low, greater_is_better=False) == {"linear"}
