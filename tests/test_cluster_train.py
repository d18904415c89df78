"""`dsagent run DIR --cluster local:2` on a tiny directory of Parquet parts (dsagent starts the
LocalCluster; the tools run in the real sandboxed worker): the Dask profile, train_on_cluster
(xgboost.dask on every training row, the other families on a sample, scores and predictions partition
by partition, the hash split's rows), the report, and the saved model predicting without a cluster."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

pytest.importorskip("distributed")
pytest.importorskip("dask.dataframe")

from dsagent.tools.hash_split import test_mask as hash_test_mask  # noqa: E402


def write_parts(folder, n=1200, parts=3):
    rng = np.random.default_rng(3)
    x1, x2 = rng.normal(size=n), rng.normal(size=n)
    df = pd.DataFrame({"row_id": np.arange(n), "x1": x1, "x2": x2, "noise": rng.normal(size=n),
                       "note": rng.choice(["a", "b"], n),
                       "y": np.where(x1 + 0.5 * x2 + 0.3 * rng.normal(size=n) > 0, "yes", "no")})
    folder.mkdir()
    for i, rows in enumerate(np.array_split(np.arange(n), parts)):
        df.iloc[rows].to_parquet(folder / f"part-{i}.parquet", index=False)
    return df


def cli(*args, timeout=240):
    import subprocess
    import sys

    env = {k: v for k, v in os.environ.items() if not k.startswith(("ANTHROPIC_", "DSAGENT_CLUSTER", "DSAGENT_DASK"))}
    return subprocess.run([sys.executable, "-m", "dsagent.cli", *map(str, args)], capture_output=True, text=True,
                          env=env, timeout=timeout)


def _no_cluster_env(monkeypatch):
    """In-process CLI calls see this process's environment: no cluster set from outside (as cli() does)."""
    for name in [k for k in os.environ if k.startswith(("DSAGENT_CLUSTER", "DSAGENT_DASK"))]:
        monkeypatch.delenv(name)


def test_dsagent_run_on_parquet_parts_trains_on_the_cluster_and_its_model_predicts_without_one(tmp_path, dsagent_main,
                                                                                                monkeypatch):
    """`dsagent run DIR --cluster local:2`: the autopilot profiles with Dask, trains with train_on_cluster
    (xgboost.dask on every training row, the other families on a sample), writes the report and model card;
    the saved model scores raw rows with no cluster, and `dsagent predict` on parts writes parts."""

    import distributed

    data = tmp_path / "big"
    df = write_parts(data)
    # One LocalCluster for the run and the cluster prediction (tcp://): a cluster start is ~10 s on 2 cores.
    lc = distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, host="127.0.0.1",
                                  dashboard_address=None)
    try:
        run_on_cluster(lc.scheduler_address, data, df, tmp_path, dsagent_main, monkeypatch)
    finally:
        lc.close()


def run_on_cluster(address, data, df, tmp_path, dsagent_main, monkeypatch):
    from dsagent.tools.model_io import load_model
    from dsagent.tools.serving import predict_frame

    done = cli("run", data, "--target", "y", "--backend", "offline", "--sessions-dir", tmp_path / "s",
               "--cluster", address, "--json")
    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads(done.stdout)
    art = Path(result["session_dir"]) / "artifacts"
    assert result["status"] == "completed" and result["task"] == "binary" and result["metric"] == "log_loss"
    assert result["test_score"] < result["baseline_score"] and result["test_ci"][0] <= result["test_score"] <= result["test_ci"][1]
    assert all(result["artifacts"][k] for k in ("model", "report", "model_card", "profile", "notebook", "monitoring"))

    # The profile ran on Dask: exact counts, approximate quantiles and distinct counts, said so.
    prof = json.loads((art / "profile.json").read_text())
    assert prof["engine"] == "dask" and prof["n_rows"] == len(df) and prof["partitions"] == 3
    cols = {c["name"]: c for c in prof["columns"]}
    assert cols["row_id"]["kind"] == "id" and cols["note"]["n_unique"] == 2 and cols["x1"]["n_unique_approx"]
    assert abs(cols["x1"]["quantiles_approx"]["0.5"] - df["x1"].median()) < 0.1
    assert prof["target"]["class_counts"] == {k: int(v) for k, v in df["y"].value_counts().items()}
    assert "quantiles" in prof["approximate"] and "n_unique" in prof["approximate"]

    # Trained on the cluster: the ID-like row_id is the split's key (the hash split's rows, computed
    # here on the whole table) and no feature; XGBoost saw every training row, the others a sample.
    record = json.loads((art / "cluster_training.json").read_text())
    seen = record["rows_seen"]
    held = df[hash_test_mask(df, ["row_id"], 0.2, 0).to_numpy()]
    assert record["key_columns"] == ["row_id"] and seen["test"]["rows"] == len(held) and "row_id" in seen["test"]["split"]
    assert seen["xgboost_dask"]["rows"] + seen["xgboost_dask"]["validation_rows"] + len(held) == len(df)
    assert {"linear_sample", "hgb_sample", "baseline"} <= set(seen)
    # The run's budget reached the tool: a probe measured xgboost.dask's time per round for the cap.
    assert seen["xgboost_dask"]["seconds_per_round"] is not None and seen["xgboost_dask"]["rounds_allowed"] >= 16
    assert record["features"] == ["x1", "x2", "noise"] and record["left_out"] == ["note"] and record["task"] == "binary"
    assert record["scores"]["xgboost_dask"]["accuracy"] > 0.8
    # The shipped model is the best on the validation rows, not on the test rows.
    valid = record["validation_scores"]
    assert record["best"] == min((n for n in valid if n != "baseline"), key=lambda n: valid[n]["log_loss"])
    assert result["best_model"] == record["best"] and result["test_score"] == record["scores"][record["best"]]["log_loss"]
    import xgboost

    assert xgboost.Booster(model_file=str(art / "cluster_xgboost.json")).num_features() == 3

    # Test predictions of the shipped model as Parquet parts, one per partition, covering the test rows.
    parts = sorted((art / "cluster_predictions").glob("part-*.parquet"))
    preds = pd.concat(pd.read_parquet(p) for p in parts)
    assert len(parts) == 3 and len(preds) == len(held) and list(preds.columns) == ["prediction", "proba_no", "proba_yes"]

    report = (art / "report.md").read_text()
    assert "## Which model saw which rows" in report and "**Approximate**" in report
    assert f"| xgboost_dask | {seen['xgboost_dask']['rows']:,} (+{seen['xgboost_dask']['validation_rows']:,}" in report
    assert f"| linear_sample | {seen['linear_sample']['rows']:,} |" in report
    assert record["best"] in (art / "model_card.md").read_text()

    # Every deliverable: the explanation (permutation importance on a test sample, the booster's gain), the
    # monitoring plan (which `dsagent monitor` applies), the notebook re-created on a sample and executed.
    expl = json.loads((art / "explanation.json").read_text())
    assert [r["feature"] for r in expl["permutation_importance"]][0] == "x1" and set(expl["booster_gain"]) == {"x1", "x2", "noise"}
    assert expl["booster_gain"]["x1"] > expl["booster_gain"]["noise"] and "## What drives the predictions" in report
    plan = json.loads((art / "monitoring.json").read_text())
    assert set(plan["features"]) == {"x1", "x2", "noise"} and plan["predictions"]["of"] == "P(yes)"
    from dsagent.tools.monitor import apply_plan

    assert apply_plan(result["session_dir"], df.head(400))["verdict"] in ("ok", "investigate")
    shifted = df.head(400).assign(x1=df["x1"].head(400) + 3)
    assert apply_plan(result["session_dir"], shifted)["verdict"] != "ok"
    import nbformat

    nb = nbformat.read(str(art / "notebook.ipynb"), as_version=4)
    printed = "".join(o.get("text", "") for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", []))
    assert "sample test log_loss, re-created on" in printed and "re-created on a sample" in nb.cells[0].source

    # The saved model predicts on raw rows in this process, with no cluster.
    model, manifest = load_model(art / "model" / "model.skops")
    direct = predict_frame(model, manifest, df, warn=lambda _n: None)
    assert (direct["prediction"] == df["y"]).mean() > 0.8

    # `dsagent predict` on the parts writes parts, row for row and in order; the same on a cluster. Through
    # the CLI's main in this process (the run above is the real process): each `python -m dsagent.cli`
    # paid seconds of imports (pandas, scikit-learn, dask).
    _no_cluster_env(monkeypatch)
    out = dsagent_main("predict", result["session_dir"], data, "-o", tmp_path / "preds")
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stderr.count("ignoring 2 column(s)") == 1  # said once, not once per part
    got = [pd.read_parquet(p) for p in sorted((tmp_path / "preds").glob("part-*.parquet"))]
    assert [len(g) for g in got] == [400, 400, 400]
    pd.testing.assert_frame_equal(pd.concat(got, ignore_index=True), direct.reset_index(drop=True))
    out = dsagent_main("predict", result["session_dir"], data, "-o", tmp_path / "preds2", "--cluster", address)
    assert out.returncode == 0, out.stderr[-2000:]
    on_cluster = pd.concat([pd.read_parquet(p) for p in sorted((tmp_path / "preds2").glob("part-*.parquet"))], ignore_index=True)
    pd.testing.assert_frame_equal(on_cluster, direct.reset_index(drop=True))
    bad = dsagent_main("predict", result["session_dir"], data, "-o", tmp_path / "p.csv")
    assert bad.returncode == 2 and "give -o a directory" in bad.stderr and "Traceback" not in bad.stderr


def test_dsagent_run_on_a_directory_without_a_cluster_says_what_reads_one(tmp_path, dsagent_main, monkeypatch):
    write_parts(tmp_path / "big", n=30)
    _no_cluster_env(monkeypatch)
    done = dsagent_main("run", tmp_path / "big", "--target", "y", "--backend", "offline", "--sessions-dir", tmp_path / "s")
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert "is a directory" in done.stderr and "--cluster" in done.stderr


def test_which_data_goes_through_dask(tmp_path, monkeypatch):
    from dsagent.tools.scale import MIN_MB_ENV, dask_reason

    (tmp_path / "parts").mkdir()
    small = tmp_path / "t.csv"
    small.write_text("a,b\n1,2\n")
    assert dask_reason(tmp_path / "parts", None) is None and dask_reason(small, None) is None  # no cluster: never
    assert "directory of parts" in dask_reason(tmp_path / "parts", "tcp://127.0.0.1:8786")
    assert dask_reason(small, "tcp://127.0.0.1:8786") is None  # below the threshold: the in-memory workflow
    monkeypatch.setenv(MIN_MB_ENV, "0")
    assert "threshold" in dask_reason(small, "tcp://127.0.0.1:8786")


def test_cluster_deliverables_for_a_regression_from_samples(tmp_path):
    """The explanation and the monitoring plan of a cluster-trained regression, built in-process from the
    two samples train_on_cluster holds (no cluster needed): permutation importance of the shipped model,
    the booster's gain shares, a plan whose prediction reference is the predicted values."""
    import xgboost

    from dsagent.tools.dask_deliverables import booster_gain, loss, write_explanation, write_monitoring
    from dsagent.tools.registry import ToolContext
    from dsagent.tools.schemas import Evaluation

    rng = np.random.default_rng(0)
    frame = pd.DataFrame({"x1": rng.normal(size=600), "x2": rng.normal(size=600), "flag": rng.random(600) < 0.5})
    frame["__label__"] = 3 * frame["x1"] + 0.5 * frame["x2"] + 0.1 * rng.normal(size=600)
    features = ["x1", "x2", "flag"]
    train, test = frame.iloc[:400], frame.iloc[400:]
    booster = xgboost.train({"max_depth": 3, "learning_rate": 0.3, "nthread": 1}, xgboost.DMatrix(train[features], label=train["__label__"]), 40)
    rmse = float(np.sqrt(np.mean((booster.inplace_predict(test[features]) - test["__label__"]) ** 2)))
    assert loss(booster, test[features], test["__label__"].to_numpy(), "regression") == pytest.approx(rmse)
    gain = booster_gain(booster, features)
    assert sum(gain.values()) == pytest.approx(1.0, abs=1e-4) and max(gain, key=gain.get) == "x1"

    art = tmp_path / "artifacts"
    art.mkdir()
    ctx = ToolContext(session_dir=tmp_path, artifacts_dir=art, seed=0)
    Evaluation(model="xgboost_dask", family="xgboost", metric="rmse", greater_is_better=False, test_score=rmse,
               test_ci=[rmse * 0.9, rmse * 1.1], baseline_score=3.0, n_test=200, n_train=400).write(art)
    top = write_explanation(ctx, "xgboost_dask", {"xgboost_dask": booster}, "regression", "rmse", test, features, "__label__")
    assert top["top"][0] == "x1"
    write_monitoring(ctx, "y", "regression", [], "xgboost_dask", booster, train, test, features, "__label__")
    plan = json.loads((art / "monitoring.json").read_text())
    assert set(plan["features"]) == set(features) and plan["predictions"]["of"] == "predicted y"
    assert plan["important_features"][0] == "x1" and plan["performance"]["floor"] == pytest.approx(rmse * 1.1)
