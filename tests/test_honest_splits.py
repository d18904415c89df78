"""Time and group validation, and the test split's labels kept out of every model decision (issue 15).

- a file shuffled in time gets folds that validate on the future, and the same leaderboard as the
  same file sorted by time; the large-data search holdout follows time and groups too;
- leakage invariance: two real offline CLI runs, the second with the test rows' labels and
  features replaced by noise, make the same decisions (dropped columns, leaderboard, out-of-fold
  predictions, tuning trials, ensemble weights, threshold);
- the test-split loader refuses every caller but evaluation.
"""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd

from dsagent.tools.schemas import CVPlan
import pytest

from dsagent.tools.registry import ToolContext, ToolError, all_tools

ROOT = Path(__file__).resolve().parent.parent


def _timed_frame(n: int = 240, seed: int = 0) -> pd.DataFrame:
    """Binary target with a drift over time, one row per day (unique times: 'later' is strict)."""
    rng = np.random.default_rng(seed)
    x1, x2 = rng.normal(size=n), rng.normal(size=n)
    color = rng.choice(["red", "green", "blue"], size=n)
    trend = np.linspace(-1, 1, n)
    logit = 1.5 * x1 - x2 + (color == "red") + trend
    y = np.where(rng.random(n) < 1 / (1 + np.exp(-logit)), "yes", "no")
    dates = pd.date_range("2020-01-01", periods=n, freq="D").strftime("%Y-%m-%d")
    return pd.DataFrame({"date": dates, "x1": x1, "x2": x2, "color": color, "y": y})


def _ctx(tmp_path: Path, df: pd.DataFrame, name: str) -> ToolContext:
    session = tmp_path / name
    (session / "artifacts").mkdir(parents=True)
    data = session / "data.csv"
    df.to_csv(data, index=False)
    return ToolContext(session_dir=session, artifacts_dir=session / "artifacts", data_path=data, seed=0,
                       answers={}, roots=[str(session)])


def _call(ctx: ToolContext, name: str, **args):
    return all_tools()[name].invoke(ctx, args)


def _board(ctx: ToolContext) -> list[tuple]:
    board = json.loads((ctx.artifacts_dir / "leaderboard.json").read_text())
    return sorted((r["name"], round(r["cv_mean"], 9), tuple(r["folds"])) for r in board)


def test_time_split_folds_validate_on_later_rows_whatever_the_file_order(tmp_path):
    from dsagent.tools.task_data import search_data
    from dsagent.tools.cv import cv_splits

    sorted_df = _timed_frame()
    shuffled = sorted_df.sample(frac=1.0, random_state=1).reset_index(drop=True)
    boards = []
    for name, df in (("sorted", sorted_df), ("shuffled", shuffled)):
        ctx = _ctx(tmp_path, df, name)
        _call(ctx, "define_task", target="y", time_column="date", metric="roc_auc")
        _call(ctx, "train_models", models=["linear"], time_budget_s=60)
        boards.append(_board(ctx))
        X, y, task = search_data(ctx)
        times = pd.to_datetime(df.loc[X.index, "date"]).to_numpy()
        splits = cv_splits(task, X, y, ctx)
        assert len(splits) == task["cv"]["folds"]
        for tr, va in splits:
            assert times[va].min() > times[tr].max(), f"{name}: a fold validates on rows older than its training rows"
        # The large-data plan: one holdout, which must be the latest training rows.
        holdout = CVPlan(kind="holdout", folds=1, fraction=0.2)
        (tr, va), = cv_splits(task.model_copy(update={"cv": holdout}), X, y, ctx)
        assert times[va].min() > times[tr].max(), f"{name}: the search holdout is not the latest rows"
    assert boards[0] == boards[1]


def test_group_split_holdout_keeps_groups_whole(tmp_path):
    from dsagent.tools.task_data import search_data
    from dsagent.tools.cv import cv_splits

    rng = np.random.default_rng(3)
    df = _timed_frame(300).drop(columns="date")
    df["customer"] = [f"c{i}" for i in rng.integers(0, 40, size=len(df))]
    ctx = _ctx(tmp_path, df, "grouped")
    _call(ctx, "define_task", target="y", group_column="customer", metric="roc_auc")
    X, y, task = search_data(ctx)
    groups = df.loc[X.index, "customer"].to_numpy()
    for plan in (task.cv, CVPlan(kind="holdout", folds=1, fraction=0.2)):
        for tr, va in cv_splits(task.model_copy(update={"cv": plan}), X, y, ctx):
            assert not set(groups[tr]) & set(groups[va]), f"{plan.kind}: a group on both sides"


def test_test_split_loader_refuses_everything_but_evaluation(tmp_path):
    from dsagent.tools.task_data import test_data

    ctx = _ctx(tmp_path, _timed_frame(), "guard")
    _call(ctx, "define_task", target="y", time_column="date")
    with pytest.raises(ToolError, match="read only by evaluate_model"):
        test_data(ctx)


# -- leakage invariance through the real CLI ---------------------------------------------------

PERSONA = """---
name: invariance
description: the data-scientist workflow up to the evaluated model, without report or notebook (faster)
tools: ask_user, profile_data, define_task, train_models, tune_model, build_ensemble, evaluate_model
---
You are a data scientist.
"""

TIMING = {"fit_s", "fold_fit_s", "predict_ms_per_1k", "refit_s_est", "seconds", "elapsed_s", "predict_s"}


def _leaky_frame(n: int = 300) -> pd.DataFrame:
    df = _timed_frame(n, seed=5)
    # A post-outcome field: a copy of the label under another name. The leak check must drop it.
    df["status"] = np.where(df["y"] == "yes", "closed", "open")
    df["amount"] = np.round(np.random.default_rng(6).gamma(2.0, 50.0, size=n), 2)
    return df


def _noised(df: pd.DataFrame, test_rows: list[int]) -> pd.DataFrame:
    """The test rows' labels and features replaced by noise (the time column kept: it defines the split)."""
    rng = np.random.default_rng(99)
    out = df.copy()
    k = len(test_rows)
    out.loc[test_rows, "x1"] = rng.normal(0, 10, size=k)
    out.loc[test_rows, "x2"] = rng.normal(5, 3, size=k)
    out.loc[test_rows, "amount"] = np.round(rng.uniform(0, 5000, size=k), 2)
    out.loc[test_rows, "color"] = rng.choice(["red", "green", "blue", "purple"], size=k)
    out.loc[test_rows, "status"] = rng.choice(["closed", "open", "pending"], size=k)
    out.loc[test_rows, "y"] = rng.choice(["yes", "no"], size=k, p=[0.9, 0.1])
    return out


def _start(tmp_path: Path, df: pd.DataFrame, name: str) -> subprocess.Popen:
    work = tmp_path / name
    work.mkdir()
    data = work / "data.csv"
    df.to_csv(data, index=False)
    (work / "answers.yaml").write_text("goal: flag accounts that will say yes\ntime_column: date\ncost_fp: 1\n"
                                       "cost_fn: 3\ninterpretability: medium\n")
    (work / "persona.md").write_text(PERSONA)
    # A generous budget: the decisions compared must not depend on timings (at 120 s nothing is
    # skipped or capped on 300 rows); a run takes what its work takes, not the budget.
    cmd = [sys.executable, "-m", "dsagent.cli", "run", str(data), "--target", "y", "--backend", "offline",
           "--time-budget", "120", "--max-trials", "2", "--persona", str(work / "persona.md"),
           "--answers", str(work / "answers.yaml"), "--sessions-dir", str(work / "sessions"), "--json"]
    env = {k: v for k, v in os.environ.items() if not k.startswith("ANTHROPIC_")}
    return subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=ROOT, env=env)


def _finish(proc: subprocess.Popen) -> Path:
    out, err = proc.communicate(timeout=300)
    assert proc.returncode == 0, err[-3000:]
    return Path(json.loads(out)["session_dir"]) / "artifacts"


def _strip(obj):
    if isinstance(obj, dict):
        return {k: _strip(v) for k, v in obj.items() if k not in TIMING}
    if isinstance(obj, list):
        return [_strip(v) for v in obj]
    return obj


def _decisions(art: Path) -> dict:
    task = json.loads((art / "task.json").read_text())
    board = json.loads((art / "leaderboard.json").read_text())
    oof = dict(np.load(art / "oof.npz"))
    with sqlite3.connect(art / "optuna.db") as db:
        trials = db.execute("SELECT s.study_name, t.number, t.state, v.value FROM trials t JOIN studies s USING (study_id) "
                            "LEFT JOIN trial_values v USING (trial_id) ORDER BY s.study_name, t.number").fetchall()
        params = db.execute("SELECT t.number, p.param_name, p.param_value FROM trials t JOIN trial_params p "
                            "USING (trial_id) ORDER BY t.number, p.param_name").fetchall()
    ev = json.loads((art / "evaluation.json").read_text())
    return {"task": task, "board": _strip(board), "oof": {k: np.nan_to_num(v, nan=-1.0).tolist() for k, v in oof.items()},
            "trials": trials, "params": params, "model": ev["model"], "params_final": _strip(ev["params"]),
            "threshold": {k: ev["threshold"][k] for k in ("threshold", "rule")}}


def test_test_rows_labels_and_features_do_not_shape_the_model(tmp_path):
    df = _leaky_frame()
    n_test = len(df) - int(round(len(df) * 0.8))  # the file is in time order: the test split is its tail
    test_rows = list(range(len(df) - n_test, len(df)))
    runs = [_start(tmp_path, df, "clean"), _start(tmp_path, _noised(df, test_rows), "noisy")]  # side by side
    clean, noisy = (_decisions(_finish(p)) for p in runs)
    assert clean["task"]["test_rows"] == noisy["task"]["test_rows"] == test_rows
    assert "status" in {d["column"] for d in clean["task"]["dropped"]}, "the leak was kept"
    assert clean["trials"] and clean["threshold"]["threshold"] is not None
    for key in clean:
        assert noisy[key] == clean[key], f"{key} changed when only the test rows changed"
