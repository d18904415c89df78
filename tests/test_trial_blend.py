"""The next-best trials of a tuning call as blend candidates (opt-in DSAGENT_TRIAL_BLEND=1,
tools/tune.py `_runner_ups`): they join the leaderboard with the out-of-fold predictions their
folds made, each is a whole model that rebuilds and predicts on raw rows, and they join the blend's
pool beside its top candidates, not in their places."""

from __future__ import annotations

import json

import numpy as np

from dsagent.tools.cv import is_runner_up, runner_up_name
from tests.test_model_quality import _call, _ctx, _frame


def _tuned_board(tmp_path, monkeypatch, on: bool, name: str = "s", models=("linear", "xgboost")):
    if on:
        monkeypatch.setenv("DSAGENT_TRIAL_BLEND", "1")
    else:
        monkeypatch.delenv("DSAGENT_TRIAL_BLEND", raising=False)
    ctx = _ctx(tmp_path, _frame(240, seed=5), name=name)
    _call(ctx, "define_task", target="y", metric="roc_auc")
    _call(ctx, "train_models", models=list(models))
    out = _call(ctx, "tune_model", family="xgboost", n_trials=6, time_budget_s=120)
    board = json.loads((ctx.artifacts_dir / "leaderboard.json").read_text())
    rows = board["rows"] if isinstance(board, dict) else board
    return ctx, out, rows


def test_runner_up_trials_join_the_board_with_their_oof_only_when_switched_on(tmp_path, monkeypatch):
    ctx, out, rows = _tuned_board(tmp_path, monkeypatch, on=True)
    runners = [r for r in rows if is_runner_up(r["name"], "xgboost")]
    assert len(runners) == 2 and sorted(out.summary["runner_ups"]) == sorted(r["name"] for r in runners)
    tuned = next(r for r in rows if r["name"] == "xgboost_tuned")
    stored = dict(np.load(ctx.artifacts_dir / "oof.npz"))
    for r in runners:
        assert r["family"] == "xgboost" and r["name"] in stored
        assert not np.isnan(stored[r["name"]]).any()
        assert r["cv_mean"] <= tuned["cv_mean"]  # the best trial is the tuned row; these come after it
        assert r["cv_mean"] != tuned["cv_mean"]  # a repeat of the best's score is skipped
    assert runners[0]["cv_mean"] != runners[1]["cv_mean"]

    _, off, plain = _tuned_board(tmp_path, monkeypatch, on=False, name="off")
    assert not any(is_runner_up(r["name"], "xgboost") for r in plain) and "runner_ups" not in off.summary


def test_a_runner_up_is_a_whole_model(tmp_path, monkeypatch):
    ctx, out, _ = _tuned_board(tmp_path, monkeypatch, on=True)
    runner = out.summary["runner_ups"][0]
    ev = _call(ctx, "evaluate_model", model=runner).record  # its params rebuild, fit and predict on raw rows
    assert ev["model"] == runner and 0.0 <= ev["test_score"] <= 1.0


def test_runner_ups_join_the_blend_beside_the_top_candidates_not_in_their_places(tmp_path, monkeypatch):
    """With room for one top candidate the pool still holds its family's runner-ups (counted among
    the top candidates they pushed other families out of abalone's and swiss_labor's blends)."""
    ctx, out, rows = _tuned_board(tmp_path, monkeypatch, on=True, models=("xgboost",))
    blend = _call(ctx, "build_ensemble", max_members=1).summary
    assert "best_single" in blend and blend["best_single"] in ("xgboost", "xgboost_tuned")
    assert not is_runner_up(blend["best_single"])


def test_runner_up_names():
    assert is_runner_up(runner_up_name("xgboost", 17), "xgboost")
    assert not is_runner_up("xgboost_tuned", "xgboost")
    assert not is_runner_up("xgboost_trial17", "hist_gb")
    assert not is_runner_up("xgboost_trialx", "xgboost")
    assert is_runner_up("hist_gb_trial3") and not is_runner_up("hist_gb_default")
