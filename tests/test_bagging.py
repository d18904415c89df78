"""Issue 18: a bagged final model (the chosen configuration fitted on each of k folds' training
rows, predictions averaged) is saved, loads from the trusted list, predicts on raw rows through
`dsagent predict`, and is what the notebook's `fit_bagged` call rebuilds."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd

from dsagent.tools.bagging import BaggedClassifier, bagging_plan
from dsagent.tools.notebook import _model_fit_code
from dsagent.tools.registry import ToolContext, all_tools


def _ctx(tmp_path: Path, n: int = 180) -> tuple[ToolContext, pd.DataFrame]:
    rng = np.random.default_rng(1)
    x1, x2 = rng.normal(size=n), rng.normal(size=n)
    color = rng.choice(["red", "green", "blue"], size=n)
    y = np.where(x1 + (color == "red") + rng.normal(scale=0.5, size=n) > 0.5, "yes", "no")
    df = pd.DataFrame({"x1": x1, "x2": x2, "color": color, "y": y})
    session = tmp_path / "s"
    (session / "artifacts").mkdir(parents=True)
    df.to_csv(session / "data.csv", index=False)
    ctx = ToolContext(session_dir=session, artifacts_dir=session / "artifacts", data_path=session / "data.csv", seed=0,
                      answers={}, roots=[str(session)])
    return ctx, df


def _call(ctx: ToolContext, name: str, **args):
    return all_tools()[name].invoke(ctx, args)


def test_a_bagged_model_saves_predicts_raw_rows_and_rebuilds(tmp_path, monkeypatch):
    from dsagent.cli import main
    from dsagent.tools import plots

    for name in ("roc_pr", "calibration", "confusion"):  # seconds of matplotlib this test does not read
        monkeypatch.setattr(plots, name, lambda *a, **k: None)
    from dsagent.tools.model_io import load_model
    from dsagent.tools.task_data import training_data

    ctx, df = _ctx(tmp_path)
    _call(ctx, "define_task", target="y", metric="roc_auc")
    _call(ctx, "train_models", models=["linear"], time_budget_s=20)
    out = _call(ctx, "evaluate_model", model="linear", bagged=True)
    ev = json.loads((ctx.artifacts_dir / "evaluation.json").read_text())
    assert ev["bagged"] == {"folds": 5}
    model, _ = load_model(ctx.session_dir)
    assert isinstance(model, BaggedClassifier) and len(model.models) == 5
    # The notebook's model cell, run as written, rebuilds the same bag from the training rows and the seed.
    X_train, y_train, task = training_data(ctx)
    cell = _model_fit_code(ev, task.to_json())
    assert "fit_bagged(" in cell
    scope = {"SPEC": {"family": ev["family"], "params": ev["params"]}, "FEATURES": task.features, "X_train": X_train,
             "y_train": y_train, "TASK": task.task, "SEED": ctx.seed}
    exec(cell, scope)
    raw = df.drop(columns=["y"]).iloc[::7]
    np.testing.assert_allclose(scope["model"].predict_proba(raw), model.predict_proba(raw))
    # ... and it is the average of its members, not one of them
    members = np.mean([m.predict_proba(raw) for m in model.models], axis=0)
    np.testing.assert_allclose(model.predict_proba(raw), members)
    src, dest = tmp_path / "new.csv", tmp_path / "preds.csv"
    raw.to_csv(src, index=False)
    assert main(["predict", str(ctx.session_dir), str(src), "-o", str(dest)]) == 0
    preds = pd.read_csv(dest)
    assert len(preds) == len(raw) and {"prediction", "proba_no", "proba_yes"} <= set(preds.columns)
    np.testing.assert_allclose(preds["proba_yes"], model.predict_proba(raw)[:, 1], rtol=1e-6)
    assert out.summary["model"] == "linear"


def test_no_bag_under_a_time_split_or_when_it_would_overrun():
    assert "time split" in bagging_plan("time", 1.0, None)
    assert "more than the 3.0s" in bagging_plan("stratified", 1.0, 3.0)
    assert bagging_plan("random", 0.5, 3.0) is None
