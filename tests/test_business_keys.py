"""Every business key changes the work, and says how: the decision functions directly, then one
real CLI run that gives several keys at once and finds each change in the artifacts."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from quick import QUICK_FAMILIES

from dsagent.answers import BadInput, parse_answers
from dsagent.runtime import check_answer_columns
from dsagent.tools.business import against_current, serving_mode, unknown_at_prediction, verdict, within_latency

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = ROOT / "examples" / "penguins.csv"
ENV = {k: v for k, v in os.environ.items() if not k.startswith("ANTHROPIC_")}

BOARD = [{"name": "xgboost", "family": "xgboost", "predict_ms_per_1k": 40.0},
         {"name": "linear", "family": "linear", "predict_ms_per_1k": 2.0},
         {"name": "baseline", "family": "baseline", "predict_ms_per_1k": 90.0}]


def test_latency_leaves_slower_candidates_out():
    kept, out = within_latency(BOARD, 0.01)  # 10 microseconds per row: xgboost (0.04 ms) is too slow
    assert [r["name"] for r in kept] == ["linear", "baseline"] and out == [{"name": "xgboost", "per_row_ms": 0.04}]
    assert within_latency(BOARD, None) == (BOARD, [])
    kept, out = within_latency(BOARD, 0.0001)  # all too slow: the fastest stays, so there is a model to ship
    assert "linear" in [r["name"] for r in kept] and [r["name"] for r in out] == ["xgboost"]


def test_volume_decides_batch_or_online_with_a_throughput_check():
    lat = {"batch_ms": 10.0, "batch_rows": 1000}
    batch = serving_mode(500_000, None, lat)
    assert batch["mode"] == "batch" and batch["core_seconds_per_day"] == 5.0 and batch["throughput_ok"]
    assert serving_mode(500_000, 50, lat)["mode"] == "online"  # someone waits on each prediction
    assert serving_mode(2_000, None, lat)["mode"] == "online"
    assert serving_mode(None, 50, lat) is None


def test_min_useful_score_gives_go_no_go_against_the_ci():
    assert verdict(0.80, 0.90, (0.85, 0.94), True)["decision"] == "go"
    assert verdict(0.95, 0.90, (0.85, 0.94), True)["decision"] == "no-go"
    assert verdict(0.88, 0.90, (0.85, 0.94), True)["decision"] == "uncertain"
    assert verdict(500, 420, (400, 450), False)["decision"] == "go"  # an error metric: lower is better
    assert verdict(None, 0.9, None, True) is None


def test_current_baseline_is_compared_with_the_test_score():
    assert against_current(0.70, 0.90, (0.85, 0.94), True)["outcome"] == "better"
    assert against_current(0.95, 0.90, (0.85, 0.94), True)["outcome"] == "worse"
    assert against_current(0.90, 0.90, (0.85, 0.94), True)["outcome"] == "not distinguishable"


def test_columns_not_known_at_prediction_time_are_left_out():
    cols = ["a", "b", "c", "y", "when"]
    assert unknown_at_prediction(cols, ["a"], ["y", "when", None]) == ["b", "c"]
    assert unknown_at_prediction(cols, "all", ["y"]) == [] and unknown_at_prediction(cols, None, ["y"]) == []
    assert parse_answers({"features_at_prediction_time": "a, b"}).features_at_prediction_time == ["a", "b"]
    with pytest.raises(BadInput, match="features_at_prediction_time: 'islnd' is not a column"):
        check_answer_columns(parse_answers({"features_at_prediction_time": ["islnd"]}), EXAMPLE)
    with pytest.raises(BadInput, match="retrain_every_days"):
        parse_answers({"retrain_every_days": 0})


def test_one_run_where_every_key_acts(tmp_path):
    answers = tmp_path / "answers.yaml"
    answers.write_text(QUICK_FAMILIES + "latency_ms: 0.00001\nprediction_volume: 500000\nretrain_every_days: 14\nmin_useful_score: 0.5\n"
                       "current_baseline: body_mass_g > 4000\nfeatures_at_prediction_time: [bill_length_mm, bill_depth_mm, "
                       "flipper_length_mm, body_mass_g, species]\ncost_fp: 1\ncost_fn: 1\ninterpretability: low\n")
    proc = subprocess.run([sys.executable, "-m", "dsagent.cli", "run", str(EXAMPLE), "--target", "sex", "--backend", "offline",
                           "--answers", str(answers), "--time-budget", "15", "--max-trials", "1",
                           "--sessions-dir", str(tmp_path / "s"), "--json"],
                          capture_output=True, text=True, cwd=ROOT, env=ENV, timeout=240)
    assert proc.returncode == 0, proc.stderr[-2000:]
    result = json.loads(proc.stdout)
    art = Path(result["session_dir"]) / "artifacts"
    task = json.loads((art / "task.json").read_text())
    ev = json.loads((art / "evaluation.json").read_text())
    plan = json.loads((art / "monitoring.json").read_text())
    report = (art / "report.md").read_text()
    # features_at_prediction_time: island and year are not listed, so they are left out
    assert {"island", "year"} & {d["column"] for d in task["dropped"] if "not known at prediction time" in d["reason"]}
    assert "island" not in task["features"]
    # latency_ms: every candidate is slower than 10 ns per row; all but the fastest are left out
    assert ev["latency_excluded"] and ev["model"] not in {r["name"] for r in ev["latency_excluded"]}
    assert "Left out for latency" in report and "p99" in report
    # min_useful_score: a verdict with its CI, in the report and the RunResult
    assert result["verdict"]["decision"] in ("go", "no-go", "uncertain") and result["verdict"]["test_ci"]
    assert f"Go / no-go:** {result['verdict']['decision']}" in report
    # current_baseline, prediction_volume, retrain_every_days
    # today's system as a rule: scored on the same test rows, paired bootstrap of the difference
    current = ev["current_comparison"]
    assert current["paired"] and current["n_rows"] == ev["n_test"] and len(current["difference_ci"]) == 2
    assert "Against today's system:**" in report and "(body_mass_g > 4000)" in report and "paired bootstrap 95% CI" in report
    # 500k rows a day, but a stated latency means someone waits on each prediction: online, with a throughput check
    assert "online scoring recommended" in report and "core-seconds a day" in report
    assert any("Serve by online" in r for r in result["recommendations"])
    assert plan["schedule"]["retrain_every_days"] == 14 and "every 14 days" in " ".join(plan["retraining_triggers"])
    assert {k: result["answers"][k]["source"] for k in ("latency_ms", "min_useful_score")} == {
        "latency_ms": "given", "min_useful_score": "given"}


def test_readme_documents_every_answers_key():
    from dsagent.answers import ANSWER_KEYS

    rows = [line for line in (ROOT / "README.md").read_text().splitlines() if line.startswith("| `")]
    documented = {k.strip("` ") for line in rows for k in line.split("|")[1].split(",")}
    assert set(ANSWER_KEYS) <= documented, sorted(set(ANSWER_KEYS) - documented)


def test_current_baseline_as_predictions_is_compared_paired_on_the_test_rows():
    """A column of today's predictions or a rule is scored on the same rows as the model and the
    difference gets a paired bootstrap CI; a number is still compared with the model's CI."""
    import numpy as np
    import pandas as pd

    from dsagent.tools.current import compare_with_current, current_predictions
    from dsagent.tools.metrics import get_metric

    rng = np.random.default_rng(0)
    n = 300
    test = pd.DataFrame({"tenure": rng.integers(1, 72, n), "old": rng.choice(["No", "Yes"], n)})
    y = (test["tenure"] < 20).to_numpy().astype(int)
    good = np.where(rng.random(n) < 0.9, y, 1 - y)  # the model: right 90% of the time
    acc = get_metric("accuracy", "binary")
    kw = {"train": test, "test": test, "task_kind": "binary", "classes": ["No", "Yes"], "n_boot": 200}
    coin = compare_with_current("old", acc, y, good, None, None, **kw)  # today's system: a coin flip
    assert coin["paired"] and coin["outcome"] == "better" and coin["difference_ci"][0] > 0.2, coin
    assert "paired bootstrap 95% CI" in coin["reason"] and coin["n_rows"] == n
    same = compare_with_current("tenure < 20", acc, y, y, None, None, **kw)  # a rule as good as the model
    assert same["outcome"] == "not distinguishable" and same["difference_ci"] == [0.0, 0.0]
    pred, proba, ok = current_predictions("tenure < 20", test, test, "binary", ["No", "Yes"])
    assert ok.all() and (pred == y).all() and proba.shape == (n, 2)
    number = compare_with_current(0.5, acc, y, good, None, (0.85, 0.93), **kw)
    assert number["outcome"] == "better" and "paired" not in number
    assert parse_answers({"current_baseline": "0.6"}).current_baseline == 0.6
    assert parse_answers({"current_baseline": "old_score"}).current_baseline == "old_score"
    with pytest.raises(BadInput, match="current_baseline"):
        parse_answers({"current_baseline": "tenure <"})


def test_column_list_answers_take_the_options_as_offered():
    """A host (MCP answer_questions, an answers file) that picks the offered option "no" for "audit
    the model across sex?" was refused with "Input should be a valid list"."""
    assert parse_answers({"sensitive_columns": "no"}).sensitive_columns == []
    assert parse_answers({"sensitive_columns": False}).sensitive_columns == []  # YAML's bare no
    assert parse_answers({"segment_columns": "island"}).segment_columns == ["island"]
    assert parse_answers({"id_columns": "id, ref"}).id_columns == ["id", "ref"]
    assert parse_answers({"sensitive_columns": ["sex"]}).sensitive_columns == ["sex"]
