"""The learned portfolio (tools/portfolio.py): the shipped table is the benchmark's record, every
pick lies in its family's search space (so Optuna runs it as it stands), and with DSAGENT_PORTFOLIO=1
a family's candidate is its first pick and a new study tries the next; without it, the builder's
defaults and the family's own warm start."""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import numpy as np
import optuna
import pandas as pd
import pytest

from dsagent.tools.families import model_families
from dsagent.tools.portfolio import PICKS
from dsagent.tools.registry import ToolContext, all_tools

ROOT = Path(__file__).resolve().parent.parent


def test_the_shipped_table_is_the_benchmarks_record():
    record = json.loads((ROOT / "benchmarks" / "results" / "portfolio.json").read_text())
    assert {f: [p["params"] for p in picks] for f, picks in record["families"].items()} == \
        {f: list(picks) for f, picks in PICKS.items()}
    split = json.loads((ROOT / "benchmarks" / "suite_split.json").read_text())
    assert record["datasets"] == split["development"]["datasets"]  # learned on the development half only


@pytest.mark.parametrize("family", sorted(PICKS))
def test_every_pick_is_a_point_of_its_familys_search_space(family):
    fam = model_families()[family]
    task = "binary"
    for params in PICKS[family]:
        trial = optuna.trial.FixedTrial(params)  # raises on a key the space does not define
        with warnings.catch_warnings():
            warnings.simplefilter("error")  # a value outside its range warns
            assert fam.search_space(trial, task) == params


def _ctx(tmp_path) -> ToolContext:
    rng = np.random.default_rng(1)
    n = 120
    x1, x2 = rng.normal(size=n), rng.normal(size=n)
    y = np.where(x1 + 0.5 * x2 + rng.normal(scale=0.5, size=n) > 0, "yes", "no")
    session = tmp_path / "s"
    (session / "artifacts").mkdir(parents=True)
    data = session / "data.csv"
    pd.DataFrame({"x1": x1, "x2": x2, "y": y}).to_csv(data, index=False)
    ctx = ToolContext(session_dir=session, artifacts_dir=session / "artifacts", data_path=data, seed=0, answers={},
                      roots=[str(session)])
    all_tools()["define_task"].invoke(ctx, {"target": "y", "metric": "roc_auc"})
    all_tools()["train_models"].invoke(ctx, {"models": ["hist_gb"]})
    return ctx


@pytest.mark.parametrize("portfolio", ["1", "0"])
def test_candidates_and_a_new_study_start_from_the_portfolio_only_when_it_is_on(tmp_path, monkeypatch, portfolio):
    """On: hist_gb's candidate is its first pick and tuning's first trial its second. Off: the
    builder's defaults and the family's own warm start."""
    monkeypatch.setenv("DSAGENT_PORTFOLIO", portfolio)
    ctx = _ctx(tmp_path)
    board = json.loads((ctx.artifacts_dir / "leaderboard.json").read_text())
    candidate = next(r for r in board if r["name"] == "hist_gb")
    on = portfolio == "1"
    assert candidate["params"] == (PICKS["hist_gb"][0] if on else {})
    out = all_tools()["tune_model"].invoke(ctx, {"family": "hist_gb", "n_trials": 1})
    assert out.record["params"] == (PICKS["hist_gb"][1] if on else model_families()["hist_gb"].warm_starts[0])
