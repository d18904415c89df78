"""Typed artifacts: every record a tool hands another tool reads back through its one model, and
the JSON on disk keeps the keys reports, notebooks and older sessions rely on."""

import json
from pathlib import Path

import pytest

from dsagent.tools.schemas import Evaluation, Explanation, Leaderboard, MonitoringPlan, TaskSpec


def test_artifacts_of_a_run_read_through_their_models(offline_run):
    art = Path(offline_run.session_dir) / "artifacts"
    task = TaskSpec.read(art)
    assert task.task == "multiclass" and task.split.kind in ("stratified", "random") and task.cv.folds >= 2
    assert len(task.train_rows) == task.n_train and task.n_classes == 3
    board = Leaderboard.read(art)
    assert board[0].cv_mean <= board[-1].cv_mean  # log-loss: best (lowest) first
    raw = json.loads((art / "leaderboard.json").read_text())
    # One builder for every row: a blended or tuned row carries the keys a plain candidate does.
    keys = set(next(r for r in raw if r["family"] == "baseline"))
    assert all(keys <= set(r) for r in raw)
    ev = Evaluation.read(art)
    assert ev.model == offline_run.best_model and ev.metric == task.metric
    assert Explanation.read(art).permutation_importance
    assert MonitoringPlan.read(art).features
    # Written back, a record keeps exactly its keys (nothing added, nothing lost).
    on_disk = json.loads((art / "evaluation.json").read_text())
    assert set(ev.to_json()) == set(on_disk)


def test_a_broken_task_file_fails_at_its_reader(tmp_path):
    (tmp_path / "task.json").write_text(json.dumps({"target": "y", "task": "binary"}))
    with pytest.raises(ValueError, match="metric"):
        TaskSpec.read(tmp_path)
    assert TaskSpec.read(tmp_path / "missing") is None
