"""train_on_cluster on a tiny directory of Parquet parts with `cluster: local:2` (dsagent starts the
LocalCluster; the tool runs in the real sandboxed worker): xgboost.dask on every training row, a
linear model on a sample, scores and predictions partition by partition, the hash split's rows."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

pytest.importorskip("distributed")
pytest.importorskip("dask.dataframe")

from dsagent.answers import Answers  # noqa: E402
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


def test_xgboost_dask_trains_on_parquet_parts_and_the_record_says_who_saw_which_rows(tmp_path):
    from dsagent.tasks import DirectSession

    data = tmp_path / "big"
    df = write_parts(data)
    ds = DirectSession(tmp_path / "sessions", data, roots=[tmp_path], time_budget=120,
                       answers=Answers(target="y", cluster="local:2", id_columns=["row_id"]))
    try:
        result = ds.call("train_on_cluster", {"target": "y", "sample_rows": 300, "n_estimators": 30})
        reported = ds.call("write_report", {})
        art = ds.session.artifacts_dir
    finally:
        ds.close()
    assert result["ok"], result.get("error")
    record = json.loads((art / "cluster_training.json").read_text())
    seen = record["rows_seen"]
    # The test rows are the hash split's, by the row key, computed here on the whole table.
    held = df[hash_test_mask(df, ["row_id"], 0.2, 0).to_numpy()]
    assert seen["test"]["rows"] == len(held) and "row_id" in seen["test"]["split"]
    # XGBoost saw every training row (less its validation rows); the linear model a sample of them.
    assert seen["xgboost_dask"]["rows"] + seen["xgboost_dask"]["validation_rows"] + len(held) == len(df)
    assert 200 <= seen["linear_sample"]["rows"] <= 400 < seen["xgboost_dask"]["rows"]
    assert record["features"] == ["x1", "x2", "noise"] and record["left_out"] == ["note"]
    assert record["partitions"] == 3 and record["task"] == "binary"
    assert record["scores"]["xgboost_dask"]["accuracy"] > 0.8
    # Predictions came back one partition at a time, as Parquet parts covering the test rows.
    parts = sorted((art / "cluster_predictions").glob("part-*.parquet"))
    assert len(parts) == 3
    preds = pd.concat(pd.read_parquet(p) for p in parts)
    assert len(preds) == len(held) and set(preds["prediction"]) <= {"no", "yes"}
    assert list(preds.columns) == ["prediction", "proba_no", "proba_yes"]
    # The report says which model saw which rows.
    assert reported["ok"], reported.get("error")
    report = (art / "report.md").read_text()
    assert "## Which model saw which rows" in report
    assert f"| xgboost_dask | {seen['xgboost_dask']['rows']:,} (+{seen['xgboost_dask']['validation_rows']:,}" in report
    assert f"| linear_sample | {seen['linear_sample']['rows']:,} |" in report
    import xgboost

    booster = xgboost.Booster(model_file=str(art / "cluster_xgboost.json"))
    assert booster.num_features() == 3


def test_dsagent_run_on_a_directory_says_what_reads_one(tmp_path):
    """`dsagent run DIR` does not train on the cluster yet: one line saying what does, not 'not found'."""
    import os
    import subprocess
    import sys

    write_parts(tmp_path / "big", n=30)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ANTHROPIC_", "DSAGENT_CLUSTER"))}
    done = subprocess.run([sys.executable, "-m", "dsagent.cli", "run", str(tmp_path / "big"), "--target", "y",
                           "--backend", "offline", "--sessions-dir", str(tmp_path / "s")],
                          capture_output=True, text=True, env=env, timeout=120)
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert "is a directory" in done.stderr and "train_on_cluster" in done.stderr
