"""Work without a target asks what a senior data scientist would (issue 21), offline, through
ask_user and the real Python API: the number of segments, the expected anomaly rate, whether a
column holds known anomalies (evaluation only), and which columns describe the rows. Each only
when its answer changes the work on this data."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.datasets import make_blobs

from dsagent.api import Assistant
from dsagent.questions_unsupervised import plan_questions
from dsagent.tools.unsupervised.segment import ClusteringTask


def _customers(n: int = 240) -> pd.DataFrame:
    X, _ = make_blobs(n_samples=n, centers=3, n_features=3, cluster_std=0.8, random_state=3)
    return pd.DataFrame(X * [100, 5, 2] + [500, 20, 10], columns=["annual_spend", "visits", "tenure_years"]).round(3)


def _transactions(n: int = 200) -> pd.DataFrame:
    rng = np.random.default_rng(0)
    t = pd.DataFrame({"amount": rng.lognormal(3, 0.4, n).round(2), "items": rng.poisson(3, n)})
    t["is_fraud"] = (np.arange(n) < 8).astype(int)
    return t


def _asked(tmp_path: Path, data: pd.DataFrame, goal: str, **answers) -> tuple[Assistant, object, dict]:
    assistant = Assistant(backend="offline", sessions_dir=tmp_path / "sess", time_budget=20, max_trials=2)
    result = assistant.run(goal, data, answers=answers or None)
    assert result.status == "needs_input", result.error
    return assistant, result, {q.key: q for q in result.questions}


def _profile(result) -> dict:
    records = Path(result.session_dir) / "artifacts" / "records"
    return json.loads(next(records.glob("*profile_data*")).read_text())


def test_segmentation_asks_how_many_segments_and_the_answer_sets_k(tmp_path):
    assistant, first, asked = _asked(tmp_path, _customers(), "segment these customers")
    assert set(asked) == {"n_segments"} and asked["n_segments"].default == [2, 8]
    # Too few rows for more than two segments of ~10 rows: there is nothing to choose, so no question.
    assert plan_questions("clustering", {**_profile(first), "n_rows": 25}, {}) == []
    # The blobs hold 3 segments; a business that works with 4 gets 4.
    done = assistant.resume(first.session_id, {"n_segments": [4]})
    assert done.status == "completed", done.error
    rec = json.loads((Path(done.session_dir) / "artifacts" / "unsupervised.json").read_text())
    assert rec["k"] == 4 and rec["range"] == [4, 4]


def test_anomaly_asks_the_expected_rate_and_about_a_flag_like_column(tmp_path):
    _, _, asked = _asked(tmp_path, _transactions(), "flag unusual transactions")
    assert set(asked) == {"anomaly_label", "expected_anomaly_rate"}
    assert "is_fraud" in asked["anomaly_label"].options and "only to evaluate" in asked["anomaly_label"].question
    # No column that could hold known anomalies: only the rate is asked; given the rate, nothing is.
    _, _, asked = _asked(tmp_path, _transactions().drop(columns="is_fraud"), "flag unusual transactions")
    assert set(asked) == {"expected_anomaly_rate"}
    assert plan_questions("anomaly", {"columns": [{"name": "amount", "kind": "numeric"}], "n_rows": 200},
                          {"expected_anomaly_rate": 0.02}) == []


def test_an_outcome_column_prompts_which_columns_describe_the_rows(tmp_path):
    data = _customers().assign(churned=(np.arange(240) % 2))
    _, _, asked = _asked(tmp_path, data, "segment these customers", n_segments=[2, 6])
    assert set(asked) == {"features_at_prediction_time"} and "churned" in asked["features_at_prediction_time"].question
    # The answer leaves the outcome out of the distances.
    fitted = ClusteringTask({"features_at_prediction_time": ["annual_spend", "visits", "tenure_years"]}).fit(data)
    used = fitted.record["features"]["numeric"] + fitted.record["features"]["categorical"]
    assert used == ["annual_spend", "visits", "tenure_years"]


def test_typed_answers_to_these_questions_parse():
    """What a person types in chat (or picks from the offered options) becomes the answers key."""
    from dsagent.answers import parse_answers

    assert parse_answers({"n_segments": "[2, 8] (let the data choose)"}).n_segments == [2, 8]
    assert parse_answers({"n_segments": "4"}).n_segments == [4]
    assert parse_answers({"n_segments": "3-6"}).n_segments == [3, 6]
    assert parse_answers({"anomaly_label": "none"}).anomaly_label is None
