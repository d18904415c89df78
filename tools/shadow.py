"""Shadow scoring: a second version of the session's model scores every request the champion
answers; its predictions go to the traffic log beside the champion's and are never returned.

`dsagent serve SESSION --shadow v2` builds a `Shadow`; `dsagent monitor SESSION --compare` reads the
log back (`compare`): how often the two agree and, where the requests carried the label, which
scored better (the session's metric, with a paired bootstrap CI of the difference).

The shadow runs in one background thread after the champion has answered, so callers wait for
the champion only; the request's log row is written when the shadow is done, with both sets of
predictions. On a 2-core machine the shadow still takes CPU from the champion under load: shadow
for a while, compare, then switch or stop.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, Callable

import numpy as np
import pandas as pd

from dsagent.tools import versions
from dsagent.tools.model_io import load_model
from dsagent.tools.registry import ToolError
from dsagent.tools.serving import check_schema, score_rows
from dsagent.tools.traffic import PREFIX, SHADOW_ERROR, SHADOW_VERSION

CONTRACT = ("task", "target", "classes")  # what callers get back must mean the same in both versions


def same_contract(new: dict[str, Any], old: dict[str, Any], name: str, what: str) -> None:
    """Refuse a version whose answers would mean something else (task, target, classes)."""
    for key in CONTRACT:
        if new.get(key) != old.get(key):
            raise ToolError(f"version {name} has a different {key} ({new.get(key)!r}, serving {old.get(key)!r}); "
                            f"{what}")


class Shadow:
    def __init__(self, ref: str | Path, name: str, champion_manifest: dict[str, Any]):
        folder = versions.model_dir(ref)
        if folder is None:
            raise ToolError("--shadow needs a session (its model versions); this server was given a model file")
        self.name = name
        self.model, self.manifest = load_model(versions.version_file(folder, name))
        same_contract(self.manifest, champion_manifest, name, "it cannot shadow this model")
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="shadow")

    def score(self, data: pd.DataFrame) -> pd.DataFrame:
        """The shadow's columns for these request rows (one row each, positional index)."""
        try:
            X = check_schema(self.manifest, data, lambda _w: None)
            preds = score_rows(self.model, self.manifest, X).reset_index(drop=True).add_prefix(PREFIX)
            preds.insert(0, SHADOW_ERROR, None)
        except Exception as exc:  # the shadow failing must never touch the champion's answer
            preds = pd.DataFrame({SHADOW_ERROR: [f"{type(exc).__name__}: {exc}"[:200]] * len(data)})
        preds.insert(0, SHADOW_VERSION, self.name)
        return preds

    def submit(self, data: pd.DataFrame, write: Callable[[pd.DataFrame], None]) -> None:
        """Score `data` in the background, then hand the shadow's columns to `write` (the log)."""
        self._pool.submit(lambda: write(self.score(data)))

    def close(self) -> None:
        self._pool.shutdown(wait=True)  # every pending request reaches the log


def _classes_index(values: pd.Series, classes: list[Any]) -> np.ndarray:
    lookup = {str(c): i for i, c in enumerate(classes)}
    return values.astype(str).map(lookup).to_numpy()


def _scored(frame: pd.DataFrame, prefix: str, manifest: dict[str, Any]) -> tuple[np.ndarray, np.ndarray | None]:
    """(prediction, probabilities) of one side as the metrics read them (class indices for classifiers)."""
    classes = manifest.get("classes")
    if not classes:
        return frame[f"{prefix}prediction"].to_numpy(dtype=float), None
    proba_cols = [f"{prefix}proba_{c}" for c in classes]
    proba = frame[proba_cols].to_numpy(dtype=float) if all(c in frame for c in proba_cols) else None
    return _classes_index(frame[f"{prefix}prediction"], classes).astype(int), proba


def compare(model_ref: str | Path, since: str | None = None, seed: int = 0) -> dict[str, Any]:
    """Shadow vs champion on the logged traffic: agreement, and scores where labels were sent."""
    from dsagent.tools.metrics import get_metric, score
    from dsagent.tools.model_io import MANIFEST, resolve_model_path
    from dsagent.tools.retrain import paired_bootstrap
    from dsagent.tools.traffic import MODEL_VERSION, parse_since, read_traffic, traffic_dir
    import json

    model_path = resolve_model_path(model_ref)
    manifest = json.loads(model_path.with_name(MANIFEST).read_text(encoding="utf-8"))
    log = read_traffic(traffic_dir(model_path), parse_since(since))
    if SHADOW_VERSION not in log.columns or log[SHADOW_VERSION].isna().all():
        raise ToolError("the traffic log holds no shadow predictions; serve with `dsagent serve SESSION --shadow VERSION` "
                        "first")
    log = log[log[SHADOW_VERSION].notna()].reset_index(drop=True)
    failed = log[SHADOW_ERROR].notna() if SHADOW_ERROR in log else pd.Series(False, index=log.index)
    ok = log[~failed].reset_index(drop=True)
    pairs = sorted({(str(a), str(b)) for a, b in zip(log[MODEL_VERSION], log[SHADOW_VERSION])})
    out: dict[str, Any] = {"rows": int(len(log)), "shadow_errors": int(failed.sum()),
                           "versions": [{"champion": a, "shadow": b} for a, b in pairs]}
    if ok.empty:
        out["note"] = "the shadow could not score any logged row: see the _shadow_error column of the log"
        return out
    columns = [c[len(PREFIX):] for c in ok.columns if c.startswith(PREFIX) and c[len(PREFIX):] in ok.columns]
    agreement: dict[str, Any] = {}
    for col in columns:
        a, b = ok[col], ok[PREFIX + col]
        if pd.api.types.is_float_dtype(a) and not col.startswith("proba_"):
            diff = (a.astype(float) - b.astype(float)).abs()
            agreement[col] = {"mean_abs_difference": round(float(diff.mean()), 6),
                              "correlation": round(float(np.corrcoef(a, b)[0, 1]), 4) if len(ok) > 2 else None}
        elif not col.startswith("proba_"):
            agreement[col] = {"share_equal": round(float((a.astype(str) == b.astype(str)).mean()), 4)}
    out["agreement"] = agreement
    target = manifest.get("target")
    if target and target in ok.columns and ok[target].notna().any() and manifest.get("metric"):
        lab = ok[ok[target].notna()].reset_index(drop=True)
        classes = manifest.get("classes")
        y = _classes_index(lab[target], classes) if classes else lab[target].to_numpy(dtype=float)
        known = ~pd.isna(y)
        lab, y = lab[known].reset_index(drop=True), y[known].astype(int if classes else float)
        metric = get_metric(manifest["metric"], manifest["task"])
        champion, shadow = _scored(lab, "", manifest), _scored(lab, PREFIX, manifest)
        diff = paired_bootstrap(metric, y, champion, shadow, seed=seed)
        ci = diff["ci"]
        winner = ("shadow" if ci and ci[0] > 0 else "champion" if ci and ci[1] < 0 else "neither (the CI spans 0)")
        out["labelled"] = {"rows": int(len(lab)), "metric": metric.name, "greater_is_better": metric.greater_is_better,
                           "champion": score(metric, y, *champion), "shadow": score(metric, y, *shadow),
                           "difference_ci": ci, "better": winner}
    else:
        out["labelled"] = None
        out["note"] = (f"no request carried the label column {target!r}: send it (or join labels by an id column) to "
                       "learn which version scores better") if target else "an unsupervised model: agreement only"
    return out
