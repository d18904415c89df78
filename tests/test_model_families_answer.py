"""The answers key `model_families`: only the named families are candidates (their variants and
strong defaults too; the baseline always runs), for training and tuning alike, and a name that is
not an installed family is refused in one line before anything runs."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from pydantic import ValidationError

from dsagent.about_answers import Artifacts, why_model
from dsagent.answers import Answers
from dsagent.tools.registry import ToolContext, ToolError, all_tools


def _ctx(tmp_path, answers: dict, regression: bool = False) -> ToolContext:
    rng = np.random.default_rng(0)
    n = 150
    x1, x2 = rng.normal(size=n), rng.normal(size=n)
    y = x1 - x2 + rng.normal(size=n)
    y = y.round(3) if regression else np.where(y > 0, "yes", "no")
    session = tmp_path / "s"
    (session / "artifacts").mkdir(parents=True)
    data = session / "data.csv"
    pd.DataFrame({"x1": x1, "x2": x2, "y": y}).to_csv(data, index=False)
    ctx = ToolContext(session_dir=session, artifacts_dir=session / "artifacts", data_path=data, seed=0,
                      answers=answers, roots=[str(session)])
    all_tools()["define_task"].invoke(ctx, {"target": "y"})
    return ctx


def test_answers_take_a_list_a_comma_string_or_all():
    assert Answers.model_validate({"model_families": "linear, xgboost"}).model_families == ["linear", "xgboost"]
    assert Answers.model_validate({"model_families": ["hist_gb"]}).model_families == ["hist_gb"]
    assert Answers.model_validate({"model_families": "all"}).model_families is None


def test_an_unknown_family_is_refused_naming_the_installed_ones():
    with pytest.raises(ValidationError) as err:
        Answers.model_validate({"model_families": ["linear", "xgbost"]})
    message = str(err.value)
    assert "unknown model family 'xgbost'" in message and "xgboost" in message and "hist_gb" in message


def test_training_and_tuning_keep_to_the_allowed_families(tmp_path):
    ctx = _ctx(tmp_path, {"model_families": ["linear", "hist_gb"]})
    out = all_tools()["train_models"].invoke(ctx, {"time_budget_s": 30})
    families = {row["family"] for row in out.record["leaderboard"]}
    assert families == {"baseline", "linear", "hist_gb"}  # hist_gb_default is a hist_gb candidate
    with pytest.raises(ToolError, match="model_families allow linear, hist_gb"):
        all_tools()["train_models"].invoke(ctx, {"models": ["xgboost"], "time_budget_s": 10})
    with pytest.raises(ToolError, match="not among the model families the answers allow"):
        all_tools()["tune_model"].invoke(ctx, {"family": "xgboost", "n_trials": 1})
    tuned = all_tools()["tune_model"].invoke(ctx, {"n_trials": 1})  # auto: the best allowed tunable family
    assert tuned.record["family"] in ("linear", "hist_gb")
    ev = all_tools()["evaluate_model"].invoke(ctx, {"model": "best"}).record
    assert "xgboost_default was not fitted (the answers' model_families leave xgboost out)" in ev["strong_defaults"]["why"]
    # "Why this model?" names the restriction (the chat, API and MCP answer from these files).
    (ctx.session_dir / "session.json").write_text(json.dumps({"answers": ctx.answers}))
    why = why_model(Artifacts(ctx.session_dir), "why this model?").text
    assert "limited by the answers' model_families to linear, hist_gb" in why


def test_a_restriction_no_family_of_the_task_meets_says_so(tmp_path):
    ctx = _ctx(tmp_path, {"model_families": ["mlp"]}, regression=True)  # mlp: classification only
    with pytest.raises(ToolError, match="none of the model families the answers allow .mlp. supports a regression task"):
        all_tools()["train_models"].invoke(ctx, {"time_budget_s": 10})
