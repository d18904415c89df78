"""Derived features through the real CLI: a declared ratio beats the run without it beyond the CI,
`dsagent predict` computes it from raw rows, and a hostile or wrong expression stops the run
with exit 2 before anything runs."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from quick import QUICK_FAMILIES, scored_model

ROOT = Path(__file__).resolve().parent.parent


def _env() -> dict:
    return {k: v for k, v in os.environ.items() if not k.startswith("ANTHROPIC_")}


def _cli(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "dsagent.cli", *args], capture_output=True, text=True, cwd=cwd,
                          env=_env(), timeout=240)


@pytest.fixture(scope="module")
def ratio_data(tmp_path_factory) -> Path:
    """y is a / b plus a little noise: trees approximate a ratio of two inputs poorly, a ratio column directly."""
    d = tmp_path_factory.mktemp("ratio")
    rng = np.random.default_rng(0)
    n = 400
    a, b = rng.uniform(1, 10, n), rng.uniform(1, 10, n)
    pd.DataFrame({"a": a.round(3), "b": b.round(3), "c": rng.normal(size=n).round(3),
                  "y": (a / b + rng.normal(0, 0.05, n)).round(4)}).to_csv(d / "ratio.csv", index=False)
    # Wide data (44 columns, 240 training rows) for the selection run: near_x1 is x1 up to noise.
    X = pd.DataFrame(rng.normal(size=(300, 42)), columns=[f"x{i}" for i in range(42)]).round(4)
    X["near_x1"] = (2 * X["x1"] + rng.normal(0, 0.01, 300)).round(4)
    X["y"] = (X.x0 + X.x1 - X.x2 + rng.normal(0, 0.3, 300)).round(4)
    X.to_csv(d / "wide.csv", index=False)
    return d


def _start(d: Path, name: str, answers: str | None, data: str = "ratio.csv") -> subprocess.Popen:
    (d / f"{name}.yaml").write_text(QUICK_FAMILIES + (answers or ""))
    extra = ["--answers", f"{name}.yaml"]
    cmd = [sys.executable, "-m", "dsagent.cli", "run", data, "--target", "y", "--backend", "offline",
           "--time-budget", "10", "--max-trials", "2", "--sessions-dir", name, "--json", *extra]
    return subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=d, env=_env())


def _result(proc: subprocess.Popen) -> dict:
    out, err = proc.communicate(timeout=240)
    assert proc.returncode == 0, err[-2000:]
    return {**json.loads(out), "_stderr": err}


@pytest.fixture(scope="module")
def runs(ratio_data) -> dict[str, dict]:
    """The module's runs, all at once: most of a tiny run's time is waiting (its budget, the
    notebook's kernel start)."""
    started = {"with": _start(ratio_data, "with", "derived_features:\n  - ratio = a / b\n"),
               "without": _start(ratio_data, "without", None),
               "auto": _start(ratio_data, "auto", "auto_features: true\n"),
               "wide": _start(ratio_data, "wide", None, "wide.csv")}
    return {name: _result(p) for name, p in started.items()}


@pytest.mark.slow
def test_declared_ratio_beats_the_run_without_it_and_predict_computes_it_from_raw_rows(ratio_data, runs):
    with_ratio, without = runs["with"], runs["without"]
    assert with_ratio["metric"] == without["metric"] == "rmse"
    # Beyond the CI: the whole 95% interval of the run with the ratio lies below the other run's score.
    assert with_ratio["test_ci"][1] < without["test_score"], (with_ratio["test_ci"], without["test_score"])

    art = Path(with_ratio["session_dir"]) / "artifacts"
    task = json.loads((art / "task.json").read_text())
    assert task["derived"]["features"] == ["ratio = a / b"]
    assert "ratio" not in pd.read_csv(ratio_data / "ratio.csv").columns
    measured = json.loads((art / "derived_features.json").read_text())["features"]
    assert measured[0]["name"] == "ratio" and measured[0]["cv_change"] < 0  # rmse: lower is better
    assert "`ratio` | `a / b`" in (art / "report.md").read_text()
    assert "`ratio` | `a / b`" in (art / "model_card.md").read_text()
    notebook = (art / "notebook.ipynb").read_text()
    assert "ratio = a / b" in notebook and "derived=DERIVED" in notebook
    # Its importance: shuffling the computed ratio on the test split hurts (rmse up), and the report,
    # the model card and the explanation say so.
    importance = json.loads((art / "explanation.json").read_text())["derived_importance"]
    assert importance[0]["feature"] == "ratio" and importance[0]["expression"] == "a / b" and importance[0]["importance"] > 0
    row = next(line for line in (art / "model_card.md").read_text().splitlines() if line.startswith("| `ratio` | `a / b`"))
    assert f"{importance[0]['importance']:+.4g}" in row, row

    # `dsagent predict` on the raw test rows (no ratio column) gives the session's test predictions.
    raw = pd.read_csv(ratio_data / "ratio.csv").iloc[task["test_rows"]].drop(columns=["y"])
    raw.to_csv(ratio_data / "test_raw.csv", index=False)
    # The model the test split scored (the shipped one was refitted on the test rows too: tools/refit_all.py).
    proc = _cli("predict", scored_model(art, with_ratio["session_dir"]), "test_raw.csv", "-o", "pred.csv", cwd=ratio_data)
    assert proc.returncode == 0, proc.stderr[-2000:]
    session_pred = np.load(art / "test_predictions.npz")["pred"]
    np.testing.assert_allclose(pd.read_csv(ratio_data / "pred.csv")["prediction"], session_pred, rtol=1e-9, atol=1e-12)


@pytest.mark.slow
def test_automatic_candidates_are_kept_when_they_help_and_reported(runs):
    """auto_features: true on y = a / b: the ratio candidate is kept (CV beyond its s.e., training
    folds only), the others are dropped, the report lists both with their CV change, the notebook
    re-creates the kept one."""
    art = Path(runs["auto"]["session_dir"]) / "artifacts"
    record = json.loads((art / "derived_features.json").read_text())
    rows = {r["name"]: r for r in record["features"]}
    assert rows["a_per_b"]["source"] == "auto" and rows["a_per_b"]["kept"]
    assert rows["a_per_b"]["cv_change"] < -rows["a_per_b"]["se"]  # rmse: kept because it fell beyond its s.e.
    confirmation = rows["a_per_b"]["confirmation"]  # ... on the screening folds and again on another sample
    assert confirmation["helps"] and confirmation["cv_change"] < -confirmation["se"]
    dropped = [r for r in record["features"] if not r["kept"]]
    assert dropped and all(not r["helps"] or not isinstance(r.get("confirmation"), dict)
                           or not r["confirmation"]["helps"] for r in dropped)
    task = json.loads((art / "task.json").read_text())
    assert "a_per_b = a / b" in task["derived"]["features"]
    assert record["rows"] <= task["n_train"]  # measured on training rows only
    # On a time share the candidates are screened cheaply (three folds), the most promising first.
    assert record["screening"]["folds"] == 3 and record["screening"]["rows"] <= record["rows"]
    auto = [r for r in record["features"] if r["source"] == "auto"]
    assert auto[0]["name"] == "a_per_b" and auto[0]["expected_value"] == max(r["expected_value"] for r in auto)
    report = (art / "report.md").read_text()
    assert "| `a_per_b` | `a / b` |" in report and "| kept (again " in report  # with the confirmation's change
    assert f"| `{dropped[0]['name']}` | `{dropped[0]['expression']}` |" in report and "| dropped |" in report
    assert "a_per_b = a / b" in (art / "notebook.ipynb").read_text()
    assert not any(r.get("source") == "auto" for r in json.loads(
        (Path(runs["with"]["session_dir"]) / "artifacts" / "derived_features.json").read_text())["features"])  # default: off at this budget


@pytest.mark.slow
def test_wide_data_selection_runs_inside_the_pipeline_says_what_it_dropped_and_predicts_from_raw_rows(ratio_data, runs, dsagent_main):
    art = Path(runs["wide"]["session_dir"]) / "artifacts"
    task = json.loads((art / "task.json").read_text())
    assert task["derived"]["select"]["columns"][:2] == ["x0", "x1"] and not task["derived"]["features"]
    assert json.loads((art / "derived_features.json").read_text())["selection"]["dropped"] == {"near_x1": "correlated with x1"}
    report = (art / "report.md").read_text()
    assert "Wide data (43 numeric columns)" in report and "- `near_x1`: correlated with x1" in report
    assert "FAILED" not in runs["wide"]["_stderr"], runs["wide"]["_stderr"][-2000:]  # explain and the rest read the step
    assert "'select'" in (art / "notebook.ipynb").read_text()
    raw = pd.read_csv(ratio_data / "wide.csv").iloc[task["test_rows"]].drop(columns=["y"])
    raw.to_csv(ratio_data / "wide_raw.csv", index=False)
    # the CLI's main in this process (the ratio test above predicts in a fresh one)
    proc = dsagent_main("predict", scored_model(art, runs["wide"]["session_dir"]), "wide_raw.csv", "-o", "wide_pred.csv",
                        cwd=ratio_data)
    assert proc.returncode == 0, proc.stderr[-2000:]
    np.testing.assert_allclose(pd.read_csv(ratio_data / "wide_pred.csv")["prediction"],
                               np.load(art / "test_predictions.npz")["pred"], rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize("feature,reason", [
    ("x = a.__class__.__bases__", "attribute access"),
    ("x = __import__('os').system('touch pwned')", "attribute access"),
    ("x = a / incme", "'incme', which is not a column"),
    ("x = __builtins__", "double underscores"),
    ("x = open('/etc/passwd')", "'open' is not allowed"),
    ("x = " + "(" * 10_000 + "a" + ")" * 10_000, "characters long"),
], ids=["attribute", "import", "unknown-column", "dunder", "call", "nesting"])
def test_hostile_or_wrong_expression_exits_2_in_one_line_before_anything_runs(ratio_data, feature, reason):
    d = ratio_data
    (d / "bad.yaml").write_text(json.dumps({"derived_features": [feature]}))
    proc = _cli("run", "ratio.csv", "--target", "y", "--backend", "offline", "--sessions-dir", "bad", "--answers",
                "bad.yaml", cwd=d)
    assert proc.returncode == 2, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and reason in lines[0] and "Traceback" not in proc.stderr, proc.stderr
    assert not (d / "bad").exists() or not any((d / "bad").iterdir())  # no session: nothing ran
    assert not (d / "pwned").exists()


@pytest.mark.slow
def test_monitoring_tracks_derived_features_computed_from_the_batch_raw_rows(ratio_data, runs):
    """The plan keeps a reference for `ratio` (computed by the model's step, not read from the file);
    a batch where the ratio moves while no raw column leaves its training range alerts on it."""
    from dsagent.tools.monitor import apply_plan

    art = Path(runs["with"]["session_dir"]) / "artifacts"
    plan = json.loads((art / "monitoring.json").read_text())
    assert plan["features"]["ratio"]["derived"] == "a / b" and plan["features"]["ratio"]["type"] == "numeric"
    assert "`ratio`" in (art / "monitoring.md").read_text() and "derived: `a / b`" in (art / "monitoring.md").read_text()
    raw = pd.read_csv(ratio_data / "ratio.csv").drop(columns=["y"])
    same = apply_plan(runs["with"]["session_dir"], raw.iloc[:200])
    assert same["features"]["ratio"]["status"] != "alert", same["features"]["ratio"]
    moved = raw.iloc[:200].copy()
    moved["a"], moved["b"] = moved[["a", "b"]].max(axis=1), moved[["a", "b"]].min(axis=1)  # each column's range unchanged
    report = apply_plan(runs["with"]["session_dir"], moved)
    assert report["features"]["ratio"]["status"] == "alert" and "ratio" in report["drifted"], report["features"]["ratio"]
