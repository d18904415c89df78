"""`dsagent retrain SESSION NEW_DATA`: the session's decisions replayed on new data, and a
champion/challenger comparison that decides whether the new model ships.

Replayed, not searched again: the task (target, classes, metric), the feature columns and their
kinds, the derived features, and the shipped model's family with its tuned parameters (an
ensemble keeps its members and weights). A new search is a new `dsagent run`.

The comparison: the newest rows of the new data (the last 30% by the time column when the
session split by time, else a stratified random 30%) are held out; the challenger is fitted on
the rest; champion (the active version) and challenger are scored on the same held-out rows, and
a paired bootstrap (both scored on each resample of those rows) gives a 95% CI of the difference.
The challenger is promoted only when the whole CI favours it. Either way it is saved as the next
version, so `dsagent models SESSION --activate` can still pick it (or roll back).
"""

from __future__ import annotations

import json
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from dsagent.tools import paths, versions
from dsagent.tools.data import DataError, load_table
from dsagent.tools.features import build_pipeline
from dsagent.tools.metrics import Metric, get_metric, score
from dsagent.tools.model_io import _sha256 as file_sha256, input_schema, load_model, save_model
from dsagent.tools.registry import ToolError
from dsagent.tools.retrain_plan import parent_plan, rebased_plan, write_plan
from dsagent.tools.serving import check_schema
from dsagent.tools.schemas import TaskSpec
from dsagent.tools.task_data import encode_target
from dsagent.tools.cv import predict_any
from dsagent.tools.timestamps import parse_times

HOLDOUT = 0.3
MIN_HOLDOUT = 20
PROMOTED, KEPT = "promoted", "kept"


def _read_json(path: Path, what: str) -> dict[str, Any]:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        raise ToolError(f"{path} is missing or unreadable, so the session's {what} cannot be replayed; "
                        "retrain a session that `dsagent run` finished") from None


def _holdout(frame: pd.DataFrame, y: np.ndarray, task: dict[str, Any], seed: int) -> tuple[np.ndarray, np.ndarray]:
    """(fit positions, holdout positions): the newest rows when the session split by time."""
    n = len(frame)
    n_hold = max(MIN_HOLDOUT, int(round(n * HOLDOUT)))
    if n - n_hold < MIN_HOLDOUT:
        raise DataError(f"the new data has {n} labelled rows; retraining needs at least {2 * MIN_HOLDOUT} "
                        f"({MIN_HOLDOUT} to fit on and {MIN_HOLDOUT} to compare the two models on)")
    time_col = (task.get("split") or {}).get("time_column")
    if time_col and time_col in frame.columns:
        order = np.argsort(parse_times(frame[time_col]).to_numpy(), kind="stable")
        return np.sort(order[:-n_hold]), np.sort(order[-n_hold:])
    from sklearn.model_selection import train_test_split

    strat = y if task["task"] != "regression" and np.bincount(y).min() >= 2 else None
    fit, hold = train_test_split(np.arange(n), test_size=n_hold, random_state=seed, stratify=strat)
    return np.sort(fit), np.sort(hold)


def _decisions(pred: np.ndarray, proba: np.ndarray | None, threshold: float | None) -> np.ndarray:
    if proba is not None and threshold is not None and proba.shape[1] == 2:
        return (proba[:, 1] >= threshold).astype(int)  # the decision that ships, as evaluate_model scores it
    return pred


def paired_bootstrap(metric: Metric, y: np.ndarray, champion: tuple, challenger: tuple, *, seed: int,
                     n: int = 1000, time_limit: float = 10.0) -> dict[str, Any]:
    """95% CI of (challenger - champion) in the metric's better direction (positive = challenger
    better), both scored on the same resampled rows each time."""
    from dsagent.tools.metrics import _rowwise  # per-row values of row-mean metrics (log loss, RMSE, accuracy...)

    sign = 1.0 if metric.greater_is_better else -1.0
    rng = np.random.default_rng(seed)
    m, diffs, start = len(y), [], time.monotonic()
    a_rows, b_rows = _rowwise(metric, y, *champion), _rowwise(metric, y, *challenger)
    if a_rows is not None and b_rows is not None:  # all resamples at once (a loop of sklearn calls took ~10 s)
        idx = rng.integers(0, m, (n, m))
        finish = a_rows[1]
        diffs = sign * (finish(b_rows[0][idx].mean(axis=1)) - finish(a_rows[0][idx].mean(axis=1)))
        n = 0
    for _ in range(n):
        idx = rng.integers(0, m, m)
        try:
            a = score(metric, y[idx], champion[0][idx], None if champion[1] is None else champion[1][idx])
            b = score(metric, y[idx], challenger[0][idx], None if challenger[1] is None else challenger[1][idx])
        except ValueError:  # a resample with one class: undefined for this metric
            continue
        diffs.append(sign * (b - a))
        if time.monotonic() - start > time_limit and len(diffs) >= 200:
            break
    if len(diffs) < 50:
        return {"resamples": len(diffs), "ci": None, "mean": None}
    diffs = np.asarray(diffs, dtype=float)
    lo, hi = np.quantile(diffs, [0.025, 0.975])
    return {"resamples": len(diffs), "ci": [float(lo), float(hi)], "mean": float(np.mean(diffs))}


def retrain(session_dir: str | Path, new_data: str | Path, *, time_budget: float | None = None,
            seed: int = 0) -> dict[str, Any]:
    """Fit a challenger on `new_data`, compare it with the active version, save it as the next
    version and promote it when it is better beyond the CI. Bad input raises ToolError."""
    started = time.monotonic()
    session_dir = Path(session_dir)
    folder = versions.model_dir(session_dir)
    art = session_dir / "artifacts"
    if folder is None or not (art / paths.TASK).is_file():
        raise ToolError(f"{session_dir} is not a finished session with a model; retrain a session directory or id "
                        "that `dsagent run` completed")
    task = TaskSpec.model_validate(_read_json(art / paths.TASK, "task"))
    evaluation = _read_json(art / paths.EVALUATION, "chosen model")
    champion_name = versions.active(folder)
    champion, manifest = load_model(versions.version_file(folder, champion_name))

    data, _ = load_table(new_data)
    target = task["target"]
    if target not in data.columns:
        raise DataError(f"the new data has no {target!r} column; retraining needs the labels of recent rows")
    data = data[data[target].notna()].reset_index(drop=True)
    if task["task"] != "regression":
        unseen = sorted(set(data[target].astype(str)) - set(map(str, task["classes"])))
        if unseen:
            raise DataError(f"the new data has label(s) the session never saw ({', '.join(map(repr, unseen[:5]))}); "
                            "a new class needs a new `dsagent run`, not a retrain")
    notes: list[str] = []
    X_all = check_schema(manifest, data, notes.append)
    y_all = encode_target(task, data[target])
    fit_pos, hold_pos = _holdout(data, y_all, task, seed)
    X_fit, y_fit = X_all.iloc[fit_pos], y_all[fit_pos]
    X_hold, y_hold = X_all.iloc[hold_pos], y_all[hold_pos]

    spec = {"family": evaluation.get("family") or manifest.get("family"),
            "params": evaluation.get("params") or manifest.get("params") or {}}
    n_classes = len(task["classes"]) if task.get("classes") else 0
    t0 = time.perf_counter()
    challenger = build_pipeline(spec, task["features"], X_fit, task["task"], seed, n_classes,
                                task.get("derived")).fit(X_fit, y_fit)
    fit_s = time.perf_counter() - t0

    metric = get_metric(manifest.get("metric") or task["metric"], task["task"])
    threshold = manifest.get("threshold")
    scored = {}
    for name, model in (("champion", champion), ("challenger", challenger)):
        pred, proba = predict_any(model, X_hold, task)
        scored[name] = (_decisions(pred, proba, threshold), proba)
    scores = {name: score(metric, y_hold, *pair) for name, pair in scored.items()}
    left = None if time_budget is None else time_budget - (time.monotonic() - started)
    comparison = paired_bootstrap(metric, y_hold, scored["champion"], scored["challenger"], seed=seed,
                                  time_limit=10.0 if left is None else max(1.0, min(10.0, left)))
    promote = comparison["ci"] is not None and comparison["ci"][0] > 0

    name = versions.next_name(folder)
    data_path = Path(new_data).resolve()
    record = {
        "version": name, "parent": champion_name, "promoted": promote, "metric": metric.name,
        "greater_is_better": metric.greater_is_better, "holdout_rows": len(hold_pos), "fit_rows": len(fit_pos),
        "holdout": "newest rows by the time column" if (task.get("split") or {}).get("time_column") in data.columns
                   else "stratified random" if task["task"] != "regression" else "random",
        "scores": {"challenger": scores["challenger"], "champion": scores["champion"]},
        "difference_ci": comparison["ci"], "difference_mean": comparison["mean"], "resamples": comparison["resamples"],
        "fit_s": round(fit_s, 3), "replayed": {"family": spec["family"], "params": spec["params"],
                                               "features": sorted(task["features"])},
    }
    new_manifest = {k: v for k, v in manifest.items()
                    if k not in ("sha256", "file", "format", "trusted_types", "versions", "scores")}
    new_manifest.update(input_schema=input_schema(X_fit), params=spec["params"], version=name, parent=champion_name,
                        data_path=str(data_path), data_sha256=file_sha256(data_path),
                        created_at=datetime.now(timezone.utc).isoformat(timespec="seconds"),
                        scores={"holdout": scores["challenger"], "champion_on_holdout": scores["champion"]},
                        promoted=promote, retrain=record)
    save_model(challenger, folder / name / versions.MODEL_FILE, new_manifest)
    # Its own monitoring plan before it can become active: `dsagent monitor` reads the plan beside
    # the version it checks, and the parent's references and floors describe the old model.
    parent = parent_plan(folder, champion_name)
    if parent is None:
        notes.append(f"{champion_name} has no monitoring plan, so {name} has none either; `dsagent monitor` needs one")
    else:
        plan = rebased_plan(parent, task, metric, X_fit, y_fit, y_hold, scored["challenger"], threshold,
                            version=name, parent_version=champion_name, seed=seed)
        record["monitoring_plan"] = str(write_plan(folder / name / versions.MODEL_FILE, plan))
    if promote:
        versions.set_active(folder, name)
    record.update(status=PROMOTED if promote else KEPT, active=versions.active(folder), warnings=notes,
                  model_path=str(folder / name / versions.MODEL_FILE), elapsed_s=round(time.monotonic() - started, 2))
    return record
