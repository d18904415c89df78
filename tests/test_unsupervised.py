"""Work without a target (issue 21): segmentation and anomaly detection, through the real CLI."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn.datasets import make_blobs

from dsagent.tools.unsupervised.anomaly import AnomalyTask
from dsagent.tools.unsupervised.goal import task_from_goal
from dsagent.tools.unsupervised.segment import ClusteringTask


def _cli(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "dsagent.cli", *args], cwd=cwd, capture_output=True, text=True, timeout=240)


def _customers(n: int = 240) -> pd.DataFrame:
    X, _ = make_blobs(n_samples=n, centers=3, n_features=3, cluster_std=0.8, random_state=3)
    df = pd.DataFrame(X * [100, 5, 2] + [500, 20, 10], columns=["annual_spend", "visits", "tenure_years"]).round(3)
    df.insert(0, "customer_id", np.arange(1000, 1000 + n))  # an identifier: must be left out of the distances
    return df


def _transactions(n: int = 300) -> pd.DataFrame:
    rng = np.random.default_rng(0)
    t = pd.DataFrame({"amount": rng.lognormal(3, 0.4, n).round(2), "items": rng.poisson(3, n), "hour": rng.integers(8, 22, n)})
    t["is_fraud"] = 0
    t.loc[:9, "amount"] *= 12
    t.loc[:9, "hour"] = 3
    t.loc[:9, "is_fraud"] = 1
    return t


def test_goal_words_choose_the_task():
    assert task_from_goal("Segment these customers.") == "clustering"
    assert task_from_goal("group our shops by behaviour") == "clustering"
    assert task_from_goal("flag unusual transactions") == "anomaly"
    assert task_from_goal("find Outliers and fraudulent payments") == "anomaly"
    assert task_from_goal("predict churn") is None


def test_k_is_chosen_right_on_blobs_with_a_known_number_of_clusters():
    X, _ = make_blobs(n_samples=300, centers=4, n_features=3, cluster_std=1.0, random_state=1)
    fitted = ClusteringTask({}).fit(pd.DataFrame(X, columns=["a", "b", "c"]))
    assert fitted.record["k"] == 4
    assert sorted(np.bincount(fitted.labels).tolist()) == [75, 75, 75, 75]
    # The user's range is respected even when the data would say otherwise.
    assert ClusteringTask({"n_segments": [2, 3]}).fit(pd.DataFrame(X, columns=["a", "b", "c"])).record["k"] in (2, 3)


def _grouped_blobs(centers: list[list[float]], n: int = 300) -> pd.DataFrame:
    """Round blobs (sd 1) at the given centres: some lie close together, the way real segments nest."""
    c = np.asarray(centers, dtype=float)
    X = c[np.arange(n) % len(c)] + np.random.default_rng(0).normal(0, 1.0, (n, c.shape[1]))
    return pd.DataFrame(X, columns=["x", "y"])


@pytest.mark.parametrize("centers", [
    [[0, 0], [5, 0], [20, 3]],  # 3: two of them close, so silhouette and stability alone say 2
    [[0, 0], [6, 0], [30, 30], [36, 30]],  # 4: two pairs, the shape that made iris and digits come out at 2
    [[0, 0], [6, 0], [3, 5], [30, 30], [36, 30], [33, 35]],  # 6: two groups of three
], ids=["3-two-close", "4-two-pairs", "6-two-triples"])
def test_k_is_right_when_segments_nest(centers):
    fitted = ClusteringTask({}).fit(_grouped_blobs(centers))
    assert fitted.record["k"] == len(centers), [(c["method"], c["k"], c.get("rank_score")) for c in fitted.record["candidates"]]
    chosen = fitted.record["chosen"]  # what decided: the ranked k and the gap test's splits, or the best silhouette
    assert max(chosen["k_by_rank"] + chosen["splits_found"], chosen["k_by_silhouette"]) == len(centers)


def test_a_round_blob_is_never_split_and_one_segment_of_noise_stays_one():
    """The split test itself: one Gaussian blob (even elongated) has no hidden segment; two blobs do."""
    from dsagent.tools.unsupervised.segment import splits_found

    rng = np.random.default_rng(1)
    blob = rng.normal(0, 1, (200, 3)) * [4, 1, 1]
    assert splits_found(blob, seed=0, budget=5) == 0
    two = np.vstack([blob[:100] / [4, 1, 1], blob[100:] / [4, 1, 1] + [8, 0, 0]])
    assert splits_found(two, seed=0, budget=5) == 1


def test_anomaly_detector_defaults_to_isolation_forest_unless_clearly_better():
    from dsagent.tools.unsupervised.anomaly import choose_detector

    near = [{"detector": "isolation_forest", "agreement": 0.955}, {"detector": "local_outlier_factor", "agreement": 0.959}]
    assert choose_detector(near)["detector"] == "isolation_forest"  # a near-tie keeps the default
    clear = [{"detector": "isolation_forest", "agreement": 0.70}, {"detector": "robust_zscore", "agreement": 0.90}]
    assert choose_detector(clear)["detector"] == "robust_zscore"


def test_anomaly_labels_never_reach_the_fit():
    data = _transactions()
    runs = {}
    rng = np.random.default_rng(1)
    for name, label in {"true": data["is_fraud"], "permuted": rng.permutation(data["is_fraud"].to_numpy()),
                        "inverted": 1 - data["is_fraud"], "constant": np.zeros(len(data), int)}.items():
        fitted = AnomalyTask({"anomaly_label": "is_fraud"}).fit(data.assign(is_fraud=label))
        runs[name] = fitted
    ref = runs["true"]
    assert "is_fraud" not in ref.record["features"]["numeric"] + ref.record["features"]["categorical"]
    assert ref.record["evaluation"]["average_precision"] > 0.5  # the label does evaluate
    for name, other in runs.items():
        assert other.record["method"] == ref.record["method"], name
        assert other.record["threshold"] == ref.record["threshold"], name
        np.testing.assert_array_equal(other.scores, ref.scores, err_msg=name)
        np.testing.assert_array_equal(other.fit_rows, ref.fit_rows, err_msg=name)
        new = data.drop(columns="is_fraud").head(50)
        np.testing.assert_array_equal(AnomalyTask.predict(other.model, other.record, new).to_numpy(),
                                      AnomalyTask.predict(ref.model, ref.record, new).to_numpy(), err_msg=name)


def _start(tmp_path: Path, data: str, *extra: str) -> subprocess.Popen:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ANTHROPIC_")}  # a module fixture: before conftest's
    return subprocess.Popen([sys.executable, "-m", "dsagent.cli", "run", data, "--json", "--sessions-dir", "sess", "--time-budget",
                             "20", "--backend", "offline", *extra], cwd=tmp_path, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)


def _finish(proc: subprocess.Popen) -> dict:
    stdout, stderr = proc.communicate(timeout=240)
    assert proc.returncode == 0, stderr[-2000:]
    result = json.loads(stdout)
    assert result["status"] == "completed"
    for key in ("model", "report", "model_card", "notebook", "monitoring"):
        assert result["artifacts"][key] and Path(result["artifacts"][key]).is_file(), key
    art = Path(result["session_dir"]) / "artifacts"
    nb = json.loads((art / "records").joinpath(sorted(p.name for p in (art / "records").glob("*write_notebook*"))[-1]).read_text())
    assert nb["executed"] and nb["matches"], nb  # the notebook re-created the saved model
    return result


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> dict[str, tuple[Path, pd.DataFrame, subprocess.Popen]]:
    """The segmentation and the anomaly run, started together (a tiny run mostly waits: its worker's
    and the notebook kernel's start); each test below finishes and checks its own."""
    seg, anom = tmp_path_factory.mktemp("segment"), tmp_path_factory.mktemp("anomaly")
    customers, tx = _customers(), _transactions()
    customers.to_csv(seg / "customers.csv", index=False)
    tx.to_csv(anom / "tx.csv", index=False)
    (anom / "answers.yaml").write_text("anomaly_label: is_fraud\nexpected_anomaly_rate: 0.05\n")
    started = {"segment": (seg, customers, _start(seg, "customers.csv", "--goal", "segment these customers")),
               "anomaly": (anom, tx, _start(anom, "tx.csv", "--task", "anomaly", "--answers", "answers.yaml"))}
    yield started
    for _, _, proc in started.values():  # a test that failed before finishing its run leaves no process
        if proc.poll() is None:
            proc.kill()
            proc.communicate()


def _monitor(cli, tmp_path: Path, session: str, batch: pd.DataFrame, name: str) -> tuple[int, dict]:
    batch.to_csv(tmp_path / name, index=False)
    proc = cli("monitor", session, name, "--json", cwd=tmp_path)  # the CLI's main, in this process (conftest)
    assert proc.returncode in (0, 3, 4), proc.stderr[-1500:]
    return proc.returncode, json.loads(proc.stdout)


def test_segment_run_offline_predict_and_monitor(runs, dsagent_main):
    tmp_path, data, proc = runs["segment"]
    result = _finish(proc)
    assert result["task"] == "clustering" and result["target"] is None
    art = Path(result["session_dir"]) / "artifacts"
    rec = json.loads((art / "unsupervised.json").read_text())
    assert rec["k"] == 3 and "customer_id" in rec["features"]["dropped"]
    report = (art / "report.md").read_text()
    assert "plots/segment_map.png" in report and (art / "plots" / "segment_profiles.png").is_file()
    assert all(s["name"] for s in rec["segments"])
    assert "Not to" in (art / "model_card.md").read_text()

    proc = dsagent_main("predict", result["session_id"], "customers.csv", "-o", "pred.csv", "--sessions-dir", "sess", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    pred = pd.read_csv(tmp_path / "pred.csv")
    assert list(pred.columns) == ["segment", "segment_distance"] and len(pred) == len(data)
    assert set(pred["segment"]) == {0, 1, 2} and (pred["segment_distance"] >= 0).all()

    session = result["session_dir"]
    code, same = _monitor(dsagent_main, tmp_path, session, data, "same.csv")
    assert code == 0, same["reasons"]
    one_segment = pd.concat([data[pred["segment"] == 0]] * 2)  # a batch from one segment only: the mix moved
    code, moved = _monitor(dsagent_main, tmp_path, session, one_segment, "moved.csv")
    assert moved["segments"]["status"] == "alert" and code in (3, 4)


def test_anomaly_run_offline_predict_and_monitor(runs, dsagent_main):
    tmp_path, data, proc = runs["anomaly"]
    result = _finish(proc)
    assert result["task"] == "anomaly" and result["metric"] == "average_precision" and result["test_score"] > 0.5
    art = Path(result["session_dir"]) / "artifacts"
    report = (art / "report.md").read_text()
    assert "only to evaluate" in report and "## Top anomalies" in report and "robust z" in report

    proc = dsagent_main("predict", result["session_dir"], "tx.csv", "-o", "pred.csv", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    pred = pd.read_csv(tmp_path / "pred.csv")
    assert list(pred.columns) == ["anomaly_score", "is_anomaly"] and len(pred) == len(data)
    assert pred.loc[:9, "is_anomaly"].all()  # the planted anomalies are flagged
    assert pred.loc[:9, "anomaly_score"].min() > pred.loc[10:, "anomaly_score"].median()

    session = result["session_dir"]
    code, same = _monitor(dsagent_main, tmp_path, session, data.drop(columns="is_fraud"), "same.csv")
    assert code == 0, same["reasons"]
    burst = pd.concat([data.head(10)] * 3 + [data.iloc[10:50]])  # 30 of 70 rows unusual vs 5% expected
    code, moved = _monitor(dsagent_main, tmp_path, session, burst, "burst.csv")
    assert moved["anomaly_rate"]["status"] == "alert" and code in (3, 4)


def test_no_target_and_no_task_is_bad_input(tmp_path):
    _customers(60).to_csv(tmp_path / "c.csv", index=False)
    proc = _cli("run", "c.csv", "--goal", "make a model", "--sessions-dir", "sess", cwd=tmp_path)
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "--task clustering" in lines[0] and "Traceback" not in proc.stderr
    assert not (tmp_path / "sess").exists()
