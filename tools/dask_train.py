"""train_on_cluster: a model trained on data that need not fit in one process (issue 23).

With a Dask cluster (--cluster), the data (a Parquet file, a directory of Parquet parts, or a CSV)
is read as a Dask DataFrame: each worker reads its own partitions, nothing is collected here.

- The test split is a hash of a row key (tools/hash_split.py), partition by partition, no shuffle;
  a second hash (another salt) takes the validation rows for early stopping out of the training side.
- XGBoost trains with `xgboost.dask` (distributed `hist`) on every training row, with early stopping
  on the distributed validation set and its rounds capped by the time budget (tools/dask_xgboost.py).
- A linear model and HistGradientBoosting train here on a sample of the training rows small enough
  for one process (`sample_rows`); the baseline is the sample's priors. The record says which model
  saw which rows.
- All are scored on the validation and test rows partition by partition: each partition returns its
  sums (rows, correct, the per-row loss and its square, absolute errors) and only those travel back.
  The shipped model is the best on the validation rows (tools/dask_model.py saves it as skops).
- The shipped model's test predictions are written as Parquet parts (artifacts/cluster_predictions/),
  one part per partition, fetched and written one at a time.

Feature columns are the numeric and boolean ones (text and category columns are left out and listed;
ID-like ones found by the Dask profile are the split's key).
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from dsagent.tools.cluster import connect
from dsagent.tools.cluster_report import RECORD
from dsagent.tools.dask_deliverables import model_predict
from dsagent.tools.hash_split import describe as describe_split
from dsagent.tools.hash_split import test_mask
from dsagent.tools.registry import ToolContext, ToolError, ToolOutput, tool

MODEL_FILE = "cluster_xgboost.json"
PREDICTIONS_DIR = "cluster_predictions"
MAX_CLASSES = 50  # more distinct target values than this: regression


def read_frame(path: Path) -> Any:
    """A Dask DataFrame over a Parquet file or directory of parts (or a CSV file)."""
    import dask.dataframe as dd

    if path.is_dir() or path.suffix.lower() in (".parquet", ".pq"):
        return dd.read_parquet(str(path))
    if path.suffix.lower() in (".csv", ".txt"):
        return dd.read_csv(str(path), blocksize="64MB")
    raise ToolError(f"{path.name}: train_on_cluster reads Parquet (a file or a directory of parts) or CSV; "
                    "convert the data to Parquet")


def profiled_ids(artifacts_dir: Path) -> list[str]:
    """The columns profile_data (on Dask) found ID-like, in order."""
    path = Path(artifacts_dir) / "profile.json"
    prof = json.loads(path.read_text()) if path.is_file() else {}
    return [c["name"] for c in prof.get("columns", []) if c.get("kind") == "id"] if prof.get("engine") == "dask" else []


def feature_columns(dtypes: pd.Series, target: str, key_columns: list[str]) -> tuple[list[str], list[str]]:
    """(features, left out): numeric and boolean columns other than the target and the key."""
    used, left = [], []
    for name, dtype in dtypes.items():
        if name == target or name in key_columns:
            continue
        (used if pd.api.types.is_numeric_dtype(dtype) or pd.api.types.is_bool_dtype(dtype) else left).append(name)
    return used, left


SUMS = {"rows": "int64", "correct": "float64", "loss": "float64", "loss_sq": "float64", "sae": "float64"}


def partition_sums(part: pd.DataFrame, model: Any, kind: str, features: list[str], label: str) -> pd.DataFrame:
    """One partition's contribution to the metrics (runs on a worker): rows, correct answers, the
    sum of the per-row loss (log loss, or squared error) and of its square (for a CI), absolute errors."""
    X, y = part[features], part[label].to_numpy()
    if len(part) == 0:
        return pd.DataFrame({k: [0] for k in SUMS}).astype(SUMS)
    pred = model_predict(model, X, kind)
    if kind == "regression":
        err = pred - y
        loss, correct, sae = err * err, 0.0, float(np.abs(err).sum())
    else:
        proba = np.clip(pred, 1e-15, 1.0)
        loss = -np.log(proba[np.arange(len(y)), y.astype(int)])
        correct, sae = float((proba.argmax(1) == y).sum()), 0.0
    return pd.DataFrame({"rows": [len(y)], "correct": [correct], "loss": [float(loss.sum())],
                         "loss_sq": [float(loss @ loss)], "sae": [sae]}).astype(SUMS)


class Constant:
    """The baseline: the training sample's class priors (or mean), whatever the row. Module-level so
    the workers can unpickle it."""

    def __init__(self, values: np.ndarray):
        self.values = np.asarray(values, dtype=float)

    def predict(self, X: pd.DataFrame) -> np.ndarray:
        return np.full(len(X), float(self.values[0]))

    def predict_proba(self, X: pd.DataFrame) -> np.ndarray:
        return np.tile(self.values, (len(X), 1))


def scores(sums: pd.DataFrame, kind: str) -> dict[str, Any]:
    """Metrics from the partitions' sums, with a normal-approximation 95% CI of the main one (the mean
    per-row loss has a known variance from the sums of the loss and its square)."""
    total = sums.sum()
    n = max(float(total["rows"]), 1.0)
    mean = total["loss"] / n
    half = 1.96 * math.sqrt(max(total["loss_sq"] / n - mean * mean, 0.0) / n)
    if kind == "regression":
        ci = [math.sqrt(max(mean - half, 0.0)), math.sqrt(mean + half)]
        return {"rmse": round(math.sqrt(mean), 6), "mae": round(total["sae"] / n, 6), "ci": [round(v, 6) for v in ci]}
    acc = total["correct"] / n
    return {"accuracy": round(acc, 6), "log_loss": round(mean, 6), "ci": [round(max(mean - half, 0.0), 6), round(mean + half, 6)]}


def prediction_part(part: pd.DataFrame, model: Any, kind: str, features: list[str], classes: list[Any]) -> pd.DataFrame:
    pred = model_predict(model, part[features], kind)
    if kind == "regression":
        return pd.DataFrame({"prediction": pred}, index=part.index)
    out = pd.DataFrame({f"proba_{c}": pred[:, i] for i, c in enumerate(classes)}, index=part.index)
    out.insert(0, "prediction", np.asarray(classes, dtype=object)[pred.argmax(1)])
    return out


@tool
def train_on_cluster(ctx: ToolContext, target: str, key_columns: list[str] | None = None, test_fraction: float = 0.2,
                     sample_rows: int = 50_000, n_estimators: int = 400, time_budget_s: float | None = None) -> ToolOutput:
    """Train on the Dask cluster (--cluster) for data larger than one machine: XGBoost with
    xgboost.dask on every training row, a linear model on a sample that fits one worker, both scored
    on a hash split of the rows, partition by partition. Use only when the session has a cluster.

    Args:
        target: the column to predict.
        key_columns: the columns that identify a row, hashed for the test split (default: the
            answers' id_columns, else every column).
        test_fraction: the share of rows held out for the test score.
        sample_rows: how many training rows the one-process linear model sees at most.
        n_estimators: XGBoost's most boosting rounds (early stopping picks fewer).
        time_budget_s: seconds this call may take; XGBoost's rounds are capped to what half of it
            affords (measured on a probe of a few rounds). None: no cap.
    """
    if not ctx.cluster:
        raise ToolError("train_on_cluster needs a Dask cluster: run with --cluster local[:N] or tcp://HOST:PORT")
    if ctx.data_path is None:
        raise ToolError("no data file is registered in this session")
    with connect(ctx.cluster) as client:
        return _train(ctx, client, Path(ctx.data_path), target, key_columns, test_fraction, sample_rows, n_estimators,
                      time_budget_s)


def _train(ctx: ToolContext, client: Any, path: Path, target: str, key_columns: list[str] | None,
           test_fraction: float, sample_rows: int, n_estimators: int, time_budget_s: float | None) -> ToolOutput:
    from dsagent.tools.dask_deliverables import TEST_SAMPLE, write_explanation, write_monitoring
    from dsagent.tools.dask_model import ship_model
    from dsagent.tools.dask_xgboost import train_xgboost

    ddf = read_frame(path)
    if target not in ddf.columns:
        raise ToolError(f"column {target!r} is not in {path.name}; columns: {', '.join(map(str, ddf.columns[:20]))}")
    missing = [c for c in (key_columns or []) if c not in ddf.columns]
    if missing:
        raise ToolError(f"key column(s) {', '.join(missing)} not in {path.name}")
    # ID-like columns the Dask profile found are row keys: hashed for the split (when no key is given), never features.
    id_like = [c for c in profiled_ids(ctx.artifacts_dir) if c in ddf.columns and c != target]
    keys = [c for c in (key_columns or ctx.answers.get("id_columns") or id_like) if c in ddf.columns]
    features, left_out = feature_columns(ddf.dtypes, target, list(dict.fromkeys(keys + id_like)))
    if not features:
        raise ToolError("no numeric or boolean feature columns: train_on_cluster's first slice uses only those")
    ddf = ddf.dropna(subset=[target])
    seed, hashed = ctx.seed, keys or list(ddf.columns)  # the row's own columns: the label added below is not hashed

    def split(frame: Any) -> tuple[Any, Any, Any]:
        """(fit, validation, test) rows by the hash of `hashed`: the same rows whatever columns are added."""
        is_test = frame.map_partitions(test_mask, hashed, test_fraction, seed, meta=("is_test", bool))
        train = frame[~is_test]
        is_valid = train.map_partitions(test_mask, hashed, 0.1, seed + 1, meta=("is_test", bool))
        return train[~is_valid], train[is_valid], frame[is_test]

    # One pass over the data: the target's distinct values (exact, small) and the three sides' sizes.
    distinct, *sizes = client.compute([ddf[target].drop_duplicates(split_out=1), *(part.shape[0] for part in split(ddf))], sync=True)
    n_fit, n_valid, n_test = (int(x) for x in sizes)
    numeric_target = pd.api.types.is_numeric_dtype(distinct.dtype)
    kind = "regression" if numeric_target and len(distinct) > MAX_CLASSES else ("binary" if len(distinct) == 2 else "multiclass")
    classes = sorted(distinct.tolist()) if kind != "regression" else []
    label = "__label__"
    if kind == "regression":
        ddf = ddf.assign(**{label: ddf[target].astype("float64")})
    else:
        codes = {c: i for i, c in enumerate(classes)}
        ddf = ddf.assign(**{label: ddf[target].map(codes, meta=(target, "int64"))})
    fit, valid, test = split(ddf)
    if min(n_fit, n_valid, n_test) == 0:
        raise ToolError(f"too few rows for a split ({n_fit} fit, {n_valid} validation, {n_test} test)")
    ctx.report(f"xgboost.dask on {n_fit:,} rows across {len(client.scheduler_info()['workers'])} workers", 0.1)

    # XGBoost on every training row, distributed hist, early stopping on the distributed validation rows,
    # its rounds capped by the time budget (tools/dask_xgboost.py).
    booster, xgb_facts = train_xgboost(client, kind, len(classes), fit, valid, features, label, seed, n_estimators,
                                       time_budget_s)

    # The other families on a sample of the training rows small enough for one process (this one).
    frac = min(1.0, sample_rows / max(n_fit, 1))
    sample = fit[features + [label]].sample(frac=frac, random_state=seed).compute() if frac < 1 else fit[features + [label]].compute()
    X_s, y_s = sample[features], sample[label].to_numpy()
    models: dict[str, Any] = {"xgboost_dask": booster}
    for name, model in sample_models(kind, seed).items():
        ctx.report(f"{name} on a sample of {len(sample):,} rows", 0.6)
        models[name] = model.fit(X_s, y_s)
    prior = [float(y_s.mean())] if kind == "regression" else np.bincount(y_s.astype(int), minlength=len(classes)) / len(y_s)
    models["baseline"] = Constant(prior)

    # Scores on the validation and the test rows, partition by partition: only each partition's sums
    # come back. The shipped model is chosen on the validation rows; the test rows only score it.
    cols = features + [label]
    jobs = [side[cols].map_partitions(partition_sums, m, kind, features, label, meta=SUMS)
            for side in (valid, test) for m in models.values()]
    # In the same pass: a sample of the test rows for the explanation and the monitoring plan (dask_deliverables).
    jobs.append(test[cols].sample(frac=min(1.0, TEST_SAMPLE / max(n_test, 1)), random_state=seed))
    *found, test_sample = client.compute(jobs, sync=True)
    on_valid = {n: scores(f, kind) for n, f in zip(models, found[:len(models)])}
    results = {n: scores(f, kind) for n, f in zip(models, found[len(models):])}
    metric = "rmse" if kind == "regression" else "log_loss"
    best = min((n for n in models if n != "baseline"), key=lambda n: on_valid[n][metric])

    # Test predictions of the shipped model as Parquet parts, one partition fetched at a time.
    out_dir = ctx.artifacts_dir / PREDICTIONS_DIR
    out_dir.mkdir(exist_ok=True)
    preds = test[features].map_partitions(prediction_part, models[best], kind, features, classes)
    for i in range(preds.npartitions):
        preds.get_partition(i).compute().to_parquet(out_dir / f"part-{i:05d}.parquet")
    booster.save_model(str(ctx.artifacts_dir / MODEL_FILE))

    seen = {
        "xgboost_dask": {"rows": n_fit, "validation_rows": n_valid,
                         "saw": "every training row, read by the workers partition by partition (xgboost.dask)",
                         **xgb_facts},
        **{name: {"rows": len(sample), "saw": f"a random sample of {frac:.1%} of the training rows, fitted in one process"
                  + (" (its class priors)" if name == "baseline" and kind != "regression" else " (its mean)" if name == "baseline" else "")}
           for name in models if name != "xgboost_dask"},
        "test": {"rows": n_test, "split": describe_split(keys or None, test_fraction, seed)},
    }
    record = {"task": kind, "target": target, "classes": [str(c) for c in classes], "features": features,
              "left_out": left_out, "key_columns": keys, "test_fraction": test_fraction, "partitions": ddf.npartitions, "scores": results, "validation_scores": on_valid,
              "metric": metric, "best": best, "chosen_on": "validation rows (the test rows only score it)",
              "rows_seen": seen, "model_file": MODEL_FILE, "predictions": PREDICTIONS_DIR}
    record["shipped"] = ship_model(ctx, target, best, models[best], kind, classes, sample[features], results, metric, seen)
    ctx.report("explanation and monitoring plan from the samples", 0.9)
    record["explanation"] = write_explanation(ctx, best, models, kind, metric, test_sample, features, label)
    record["monitoring"] = write_monitoring(ctx, target, kind, classes, best, models[best], sample, test_sample, features, label)
    record["test_sample_rows"] = len(test_sample)
    (ctx.artifacts_dir / RECORD).write_text(json.dumps(record, indent=2, default=str))
    summary = {"task": kind, "scores": results, "best": best, "chosen_on": record["chosen_on"],
               "rows_seen": {k: v["rows"] for k, v in seen.items()},
               "features": len(features), "left_out": left_out[:10], "partitions": ddf.npartitions,
               "model": record["shipped"]["model"]}
    return ToolOutput(summary=summary, record=record,
                      files={"record": RECORD, "model": MODEL_FILE, "predictions": PREDICTIONS_DIR})


def sample_models(kind: str, seed: int) -> dict[str, Any]:
    """The families trained on the one-process sample: a linear model and histogram gradient boosting."""
    from sklearn.ensemble import HistGradientBoostingClassifier, HistGradientBoostingRegressor
    from sklearn.impute import SimpleImputer
    from sklearn.linear_model import LogisticRegression, Ridge
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    regression = kind == "regression"
    return {"linear_sample": make_pipeline(SimpleImputer(), StandardScaler(), Ridge() if regression else LogisticRegression(max_iter=500)),
            "hgb_sample": (HistGradientBoostingRegressor if regression else HistGradientBoostingClassifier)(random_state=seed)}
