"""Offline understanding of a goal in words (agent/goal.py), row by row of tests/goal_phrasings.py,
and the one-line echo; "use your judgement" on the target."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from dsagent.result import RunResult
from dsagent.goal import clear_target, understand
from tests.goal_phrasings import JUDGEMENT, PHRASINGS


def test_the_table_covers_every_kind():
    keys = {k for _g, _c, expected in PHRASINGS for k in expected}
    assert len(PHRASINGS) >= 60
    assert {"target", "task", "metric", "cost_fp", "cost_fn", "positive_class", "time_budget", "interpretability",
            "model_families", "time_column", "group_column"} <= keys


@pytest.mark.parametrize("goal,columns,expected", PHRASINGS, ids=[g[:50] for g, _c, _e in PHRASINGS])
def test_phrasing(goal, columns, expected):
    got = understand(goal, columns).values
    assert {k: got.get(k) for k in expected} == expected


@pytest.mark.parametrize("goal,judgement", JUDGEMENT)
def test_judgement_phrase(goal, judgement):
    assert understand(goal, []).judgement is judgement


def test_noted_task_kinds_are_echoed_not_dropped():
    u = understand("forecast sales by month", ["date", "sales"])
    assert "forecast noted" in u.line()
    assert "segment noted" in understand("segment our customers", []).line()
    assert "flag unusual noted" in understand("flag unusual transactions", []).line()
    assert "rank noted" in understand("rank the leads", []).line()


def test_one_line_echo():
    u = understand("Predict strength. Use your judgement on anything you need to ask, and keep it to 60 seconds.",
                   ["cement", "water", "age", "strength"])
    assert u.line() == "Understood from your goal: target strength, budget 60 s, the rest left to my judgement."


def test_judgement_on_the_target():
    assert clear_target("Predict strength.", ["cement", "strength"]) == ("strength", "your goal names strength")
    col, why = clear_target("build a model", ["f1", "f2", "label"])
    assert col == "label" and "named like a target" in why
    col, why = clear_target("compare age and tenure", ["age", "tenure", "balance"])
    assert col is None and "age, tenure" in why
    col, why = clear_target("", ["x1", "x2"])
    assert col is None and why.endswith("options: x1, x2")


# -- wired in: the CLI and the Run every surface goes through ------------------------------------

ROOT = Path(__file__).resolve().parent.parent
CONCRETE = "cement,water,age,strength\n" + "".join(f"{300 + 7 * i % 200},{150 + i % 60},{1 + i % 90},{20 + i % 37}\n"
                                                     for i in range(60))
CHURN = "customer_id,tenure,monthly_charges,churned\n" + "".join(f"C{i},{i % 70},{20 + i % 90},{'yes' if i % 3 else 'no'}\n"
                                                                 for i in range(60))


def _cli(*args: str) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ANTHROPIC_")}
    return subprocess.run([sys.executable, "-m", "dsagent.cli", *args], capture_output=True, text=True, cwd=ROOT, env=env,
                          timeout=180)


def test_cli_run_reports_what_it_understood_from_the_goal(tmp_path):
    """`dsagent run DATA --goal ... --json` with no --target: target and metric understood, the
    explicit --time-budget beats the goal's "5 minutes", the rest assumed; echoed in one line."""
    data = tmp_path / "concrete.csv"
    data.write_text(CONCRETE)
    proc = _cli("run", str(data), "--goal", "Predict strength. Optimise the mean absolute error; you have 5 minutes.",
                "--time-budget", "15", "--max-trials", "1", "--backend", "offline", "--sessions-dir", str(tmp_path / "s"),
                "--json")
    assert proc.returncode == 0, proc.stderr[-2000:]
    result = RunResult.model_validate_json(proc.stdout)
    assert result.status == "completed" and result.target == "strength" and result.metric == "mae"
    answers = {k: (a.value, a.source) for k, a in result.answers.items()}
    assert answers["target"] == ("strength", "understood")
    assert answers["metric"] == ("mae", "understood")
    assert answers["time_budget"] == (15.0, "given")
    assert answers["interpretability"] == ("medium", "assumed")
    assert "Understood from your goal: target strength, metric mae." in proc.stderr


def test_cli_run_without_a_target_anywhere_is_bad_input(tmp_path):
    data = tmp_path / "concrete.csv"
    data.write_text(CONCRETE)
    proc = _cli("run", str(data), "--goal", "build the best model you can", "--backend", "offline",
                "--sessions-dir", str(tmp_path / "s"))
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert "name the column in --goal" in proc.stderr


@pytest.mark.parametrize("goal,given,expected", [
    ("which customers will churn? a wasted call costs 5, a lost customer 120",
     {}, {"target": ("churned", "understood"), "cost_fp": (5.0, "understood"), "cost_fn": (120.0, "understood"),
          "time_budget": (120.0, "assumed")}),
    ("which customers will churn? a false alarm costs $5, a missed churner $120; keep it to a minute",
     {"cost_fp": 2}, {"cost_fp": (2.0, "given"), "cost_fn": (120.0, "understood"), "time_budget": (60.0, "understood")}),
    ("predict churned, optimise recall", {"metric": "pr_auc"}, {"metric": ("pr_auc", "given")}),
])
def test_answers_are_final_before_any_work(tmp_path, goal, given, expected):
    """Precedence answers > understood > default, settled when the Run is built (before any tool runs)."""
    from dsagent.answers import parse_answers
    from dsagent.runtime import Run, RunOptions, answers_used

    data = tmp_path / "churn.csv"
    data.write_text(CHURN)
    run = Run(RunOptions(data=data, goal=goal, answers=parse_answers(given), backend="offline", sessions_dir=tmp_path / "s"))
    try:
        answers = {k: (a.value, a.source) for k, a in answers_used(run.session.meta, run.state.assumptions).items()}
        assert {k: answers.get(k) for k in expected} == expected
        assert run.budget == expected.get("time_budget", (run.budget,))[0]
        assert "Understood from your goal" in run.conversation[0]["text"]  # the backend reads it too
    finally:
        run.close()
