"""Issue 18: the shipped model refitted on every labelled row once the test split is scored
(tools/refit_all.py). The score stays the one of the model fitted on the training rows; that model
is kept for the explanation; the refit is what the notebook rebuilds; the time plan and the
autopilot ask for it only when it fits."""

from __future__ import annotations

import json
import types

import numpy as np
import pytest

from test_autopilot import PLAN_BOARD, SEARCHED, _next_call, _plan_state
from test_bagging import _call, _ctx

from dsagent.backends.autopilot import AutopilotBackend


@pytest.fixture
def no_plots(monkeypatch):
    from dsagent.tools import plots

    for name in ("roc_pr", "calibration", "confusion", "importance"):  # seconds of matplotlib these tests do not read
        monkeypatch.setattr(plots, name, lambda *a, **k: None)


def test_the_refit_ships_the_scored_model_is_kept_and_explained_and_the_notebook_rebuilds_it(tmp_path, no_plots,
                                                                                               monkeypatch):
    from dsagent.tools.metrics import get_metric, score
    from dsagent.tools.model_io import load_model
    from dsagent.tools.notebook import _refit_cells
    from dsagent.tools.task_data import training_data

    ctx, df = _ctx(tmp_path)
    _call(ctx, "define_task", target="y", metric="roc_auc")
    _call(ctx, "train_models", models=["linear"], time_budget_s=20)
    out = _call(ctx, "evaluate_model", model="linear", refit_all_rows=True)
    ev = json.loads((ctx.artifacts_dir / "evaluation.json").read_text())
    task = json.loads((ctx.artifacts_dir / "task.json").read_text())
    labelled = task["n_train"] + task["n_test"]
    assert ev["refit_all_rows"]["rows"] == labelled == out.summary["refit_all_rows"]["rows"]
    shipped, manifest = load_model(ctx.artifacts_dir / "model" / "model.skops")
    scored, scored_manifest = load_model(ctx.artifacts_dir / "scored_model" / "model.skops")
    assert manifest["fit_rows"] == labelled and manifest["includes_test_split"] is True
    assert scored_manifest["fit_rows"] == task["n_train"] and scored_manifest["includes_test_split"] is False
    # The reported score is the scored model's on the test rows, which the shipped refit has seen.
    test = df.iloc[task["test_rows"]]
    y_test = (test["y"] == task["positive_class"]).astype(int).to_numpy()
    X_test = test.drop(columns=["y"])
    metric = get_metric("roc_auc", "binary")
    assert score(metric, y_test, None, scored.predict_proba(X_test)) == pytest.approx(ev["test_score"])
    assert not np.allclose(shipped.predict_proba(X_test), scored.predict_proba(X_test))  # more rows, another fit
    # The notebook's refit cell, run as written, rebuilds the shipped model from the training and test rows.
    X_train, y_train, spec = training_data(ctx)
    cells = _refit_cells(ev, spec.to_json(), str(ctx.artifacts_dir / "model" / "model.skops"))
    assert "refitted on every labelled row" in cells[0].source
    code = cells[1].source.split("\n\nfrom dsagent.tools.model_io")[0]  # the fit; the comparison reads the saved file
    from dsagent.tools.features import build_pipeline

    scope = {"SPEC": {"family": ev["family"], "params": ev["params"]}, "FEATURES": spec.features, "X_train": X_train,
             "y_train": y_train, "X_test": X_test, "y_test": y_test, "TASK": spec.task, "SEED": ctx.seed,
             "pd": __import__("pandas"), "np": np, "build_pipeline": build_pipeline}
    exec(code, scope)
    np.testing.assert_allclose(scope["model"].predict_proba(X_test), shipped.predict_proba(X_test))
    # The explanation reads the scored model: importance on test rows of a model that never saw them.
    from dsagent.tools import explain

    seen = []
    real = explain.load_model
    monkeypatch.setattr(explain, "load_model", lambda path: (seen.append(str(path)), real(path))[1])
    _call(ctx, "explain_model")
    assert seen == [str(ctx.artifacts_dir / "scored_model" / "model.skops")]
    # The report and model card say which model ships and which was scored.
    _call(ctx, "write_report")
    for name in ("report.md", "model_card.md"):
        assert f"refitted on all {labelled} labelled rows" in (ctx.artifacts_dir / name).read_text()
    # Evaluated again without the refit: the scored model ships, and no stale scored model is left behind.
    _call(ctx, "evaluate_model", model="linear")
    assert not (ctx.artifacts_dir / "scored_model").exists()
    assert load_model(ctx.artifacts_dir / "model" / "model.skops")[1]["includes_test_split"] is False


def test_no_refit_when_the_final_fit_was_already_cut_to_the_time(tmp_path, no_plots):
    ctx, _ = _ctx(tmp_path, n=400)
    _call(ctx, "define_task", target="y", metric="roc_auc")
    _call(ctx, "train_models", models=["linear"], time_budget_s=20)
    out = _call(ctx, "evaluate_model", model="linear", max_fit_rows=150, refit_all_rows=True)
    assert out.record["refit_all_rows"]["rows"] == 0
    assert "only 150 of the" in out.record["refit_all_rows"]["not_refit_because"]
    assert not (ctx.artifacts_dir / "scored_model").exists()
    from dsagent.tools.report_sections import refit_lines

    assert refit_lines(out.record)[0].startswith("- The saved model is the scored one")


def test_why_not_refit_holds_a_stated_limit_on_the_final_fit():
    from dsagent.tools.refit_all import why_not_refit

    assert why_not_refit(800, 800, False, 1.0, 1.25, None) is None
    assert why_not_refit(800, 800, False, 1.0, 1.25, 2.0) is None
    assert "more than the 1.0s" in why_not_refit(800, 800, False, 1.0, 1.25, 1.0)
    assert "boosting rounds" in why_not_refit(800, 800, True, 1.0, 1.25, None)


def test_tuning_keeps_room_for_the_refit_within_a_third_of_its_time(monkeypatch):
    from dsagent.backends.time_plan import tuning_time

    monkeypatch.setenv("DSAGENT_BAGGED", "0")
    board = [{"name": "xgboost", "family": "xgboost", "refit_s_est": 1.0}, {"name": "linear", "family": "linear", "refit_s_est": 0.1}]
    assert tuning_time(board, 1000, 60.0, 1.25) == pytest.approx((60.0 - 2.3 * 1.1 * 2.25, 1.1 * 2.25))
    assert tuning_time(board, 1000, 60.0, 0.0) == pytest.approx((60.0 - 2.3 * 1.1, 1.1))
    assert tuning_time(board, 1000, 6.0, 1.25)[1] == pytest.approx(1.0)  # past the third: the slowest single fit still
    # A search on a subsample, switched on: the slowest single fit's room is capped at the third too.
    assert tuning_time(board, 1000, 6.0, 0.0, subsampled=True)[1] == pytest.approx(1.0)  # still off
    monkeypatch.setenv("DSAGENT_SUBSAMPLED_CAP", "1")
    assert tuning_time(board, 1000, 6.0, 0.0, subsampled=True) == pytest.approx((4.0, 6.0 / 3 / 2.3))
    assert tuning_time(board, 1000, 6.0, 0.0)[1] == pytest.approx(1.0)  # all training rows searched: as before


def _with_task(monkeypatch, n_train: int = 800, n_test: int = 200):
    task = types.SimpleNamespace(n_train=n_train, n_test=n_test, features={"x": "numeric"}, search_is_subsampled=False)
    monkeypatch.setattr(AutopilotBackend, "_task", staticmethod(lambda state: task))


def test_the_autopilot_asks_for_the_refit_by_default_when_it_fits_unless_switched_off(tmp_path, monkeypatch):
    _with_task(monkeypatch)
    monkeypatch.delenv("DSAGENT_REFIT_ALL", raising=False)  # on by default
    auto = AutopilotBackend()
    call = _next_call(auto, _plan_state(tmp_path, 30.0, PLAN_BOARD), SEARCHED)
    assert call.name == "evaluate_model" and call.arguments.get("refit_all_rows") is True
    # A blend whose fit takes most of what the final fit may: no room for a second, larger one.
    slower = [{**PLAN_BOARD[0], "refit_s_est": 6.0}, *PLAN_BOARD[1:]]
    call = _next_call(AutopilotBackend(), _plan_state(tmp_path / "slow", 30.0, slower), SEARCHED)
    assert call.name == "evaluate_model" and "refit_all_rows" not in call.arguments
    # The answers decide over the switch, both ways.
    state = _plan_state(tmp_path / "no", 30.0, PLAN_BOARD)
    state.answers["refit_all_rows"] = False
    assert "refit_all_rows" not in _next_call(AutopilotBackend(), state, SEARCHED).arguments
    monkeypatch.setenv("DSAGENT_REFIT_ALL", "0")
    assert "refit_all_rows" not in _next_call(AutopilotBackend(), _plan_state(tmp_path / "off", 30.0, PLAN_BOARD),
                                              SEARCHED).arguments
    state = _plan_state(tmp_path / "yes", 30.0, PLAN_BOARD)
    state.answers["refit_all_rows"] = True
    assert _next_call(AutopilotBackend(), state, SEARCHED).arguments.get("refit_all_rows") is True


def test_the_tuning_plan_keeps_no_refit_room_when_the_search_ran_on_a_subsample(tmp_path, monkeypatch):
    """On a subsampled search the refit on every labelled row was mostly skipped and its room kept
    unused (`s16room`): the plan keeps none there unless DSAGENT_SUBSAMPLED_REFIT_ROOM=1, while
    evaluate_model is still asked for the refit when the final fit leaves room for it."""
    monkeypatch.delenv("DSAGENT_REFIT_ALL", raising=False)
    monkeypatch.delenv("DSAGENT_SUBSAMPLED_REFIT_ROOM", raising=False)
    state = _plan_state(tmp_path, 30.0, PLAN_BOARD)
    whole = types.SimpleNamespace(n_train=800, n_test=200, search_is_subsampled=False)
    part = types.SimpleNamespace(n_train=800, n_test=200, search_is_subsampled=True, features={"x": "numeric"})
    assert AutopilotBackend._planned_ratio(state, whole) == pytest.approx(1.25)
    assert AutopilotBackend._planned_ratio(state, part) == 0.0
    monkeypatch.setattr(AutopilotBackend, "_task", staticmethod(lambda state: part))
    call = _next_call(AutopilotBackend(), _plan_state(tmp_path / "sub", 30.0, PLAN_BOARD), SEARCHED)
    assert call.name == "evaluate_model" and call.arguments.get("refit_all_rows") is True
    monkeypatch.setenv("DSAGENT_SUBSAMPLED_REFIT_ROOM", "1")
    assert AutopilotBackend._planned_ratio(state, part) == pytest.approx(1.25)


def test_blend_room_caps_the_blend_so_the_refit_still_fits(tmp_path, monkeypatch):
    """DSAGENT_BLEND_ROOM=1 (opt-in): the blend's refit limit is what the final fit may take shared
    with the refit on every labelled row (800 training + 200 test rows: / 2.25)."""
    _with_task(monkeypatch)
    board = [{**r, "name": r["name"].replace("linear_tuned", "linear")} for r in PLAN_BOARD]  # no second tuning
    tuned = ["profile_data", "define_task", "train_models", "tune_model"]

    def blend_limit(path) -> float:
        call = _next_call(AutopilotBackend(max_trials=5), _plan_state(path, 20.0, board), tuned)
        assert call.name == "build_ensemble"
        return call.arguments["max_refit_s"]

    monkeypatch.delenv("DSAGENT_BLEND_ROOM", raising=False)
    plain = blend_limit(tmp_path / "plain")
    assert plain > 2.25  # large enough for the cap to show past the best single refit (1 s)
    monkeypatch.setenv("DSAGENT_BLEND_ROOM", "1")
    assert blend_limit(tmp_path / "room") == pytest.approx(max(plain / 2.25, 1.0), abs=0.06)
