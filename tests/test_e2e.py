"""The main job end to end: one offline `dsagent run --json` (shared fixture) and what it leaves."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pandas as pd

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = ROOT / "examples" / "penguins.csv"


def test_json_stdout_is_exactly_one_object(offline_run_output):
    lines = [l for l in offline_run_output.stdout.splitlines() if l.strip()]
    assert len(lines) == 1
    data = json.loads(lines[0])
    for key in ("status", "session_id", "session_dir", "questions", "task", "target", "metric", "test_score", "test_ci",
                "baseline_score", "best_model", "leaderboard", "artifacts", "assumptions", "recommendations", "usage",
                "elapsed_s", "error"):
        assert key in data
    assert "profile_data" in offline_run_output.stderr  # progress went to stderr


def test_answers_are_reported_with_their_source(offline_run):
    """--target, --time-budget and the answers file are given; what the autopilot assumed is marked so."""
    answers = offline_run.answers
    assert answers["target"].model_dump() == {"value": "species", "source": "given"}
    assert answers["time_budget"].model_dump() == {"value": 45.0, "source": "given"}
    assert answers["segment_columns"].source == "given" and answers["goal"].source == "given"
    assert answers["interpretability"].source == "assumed"


def test_run_leaves_every_deliverable(offline_run):
    assert offline_run.status == "completed"
    assert offline_run.task == "multiclass" and offline_run.metric == "log_loss"
    for name in ("model", "report", "model_card", "notebook", "monitoring", "profile", "transcript"):
        path = offline_run.artifacts[name]
        assert path and Path(path).is_file(), name
    session = Path(offline_run.session_dir)
    meta = json.loads((session / "session.json").read_text())
    assert meta["data_sha256"] and meta["seed"] == 0 and "scikit-learn" in meta["versions"]
    assert meta["status"] == "completed"
    nb = json.loads(Path(offline_run.artifacts["notebook"]).read_text())
    assert any(o for c in nb["cells"] if c["cell_type"] == "code" for o in c.get("outputs", []))  # executed


def test_model_beats_baseline_with_ci(offline_run):
    assert offline_run.test_score < offline_run.baseline_score  # log-loss: lower is better
    low, high = offline_run.test_ci
    assert low <= offline_run.test_score <= high
    assert offline_run.leaderboard and offline_run.best_model


def test_transcript_records_every_step(offline_run):
    events = [json.loads(l) for l in Path(offline_run.artifacts["transcript"]).read_text().splitlines()]
    called = [c["name"] for e in events if e["type"] == "assistant" for c in e["tool_calls"]]
    assert called[:3] == ["profile_data", "ask_user", "define_task"]
    for name in ("train_models", "evaluate_model", "write_report", "plan_monitoring", "write_notebook"):
        assert name in called
    results = [r for e in events if e["type"] == "tool_results" for r in e["results"]]
    assert all(r["ok"] for r in results), [r for r in results if not r["ok"]]


def test_predict_one_row_per_input_row(offline_run, tmp_path):
    out = tmp_path / "pred.csv"
    proc = subprocess.run([sys.executable, "-m", "dsagent.cli", "predict", offline_run.session_dir, str(EXAMPLE), "-o", str(out)],
                          capture_output=True, text=True, cwd=ROOT)
    assert proc.returncode == 0, proc.stderr
    pred = pd.read_csv(out)
    source = pd.read_csv(EXAMPLE)
    assert len(pred) == len(source)
    assert {"prediction", "proba_Adelie", "proba_Chinstrap", "proba_Gentoo"} <= set(pred.columns)
    agree = (pred["prediction"] == source["species"]).mean()
    assert agree > 0.9


def test_sessions_lists_the_run(offline_run):
    sessions_dir = str(Path(offline_run.session_dir).parent)
    proc = subprocess.run([sys.executable, "-m", "dsagent.cli", "sessions", "--sessions-dir", sessions_dir, "--json"],
                          capture_output=True, text=True, cwd=ROOT)
    assert proc.returncode == 0
    assert offline_run.session_id in [r["id"] for r in json.loads(proc.stdout)]
