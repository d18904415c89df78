"""Partial dependence of the shipped model on its most important columns, for the report.

The brute-force average of scikit-learn's `inspection.partial_dependence`, on the raw columns
through the whole Pipeline: each grid value is written into every sampled row and the predictions
are averaged. scikit-learn predicts once per grid value; here the copies of every grid value are
stacked and predicted in one call, with the same result (tests/test_explain_rows.py compares them):
a blend of forests pays a fixed cost per predict call (300 trees' dispatch), and 20 calls per
column took ~2 s of a penguins run's 3 s explanation. The numeric grid is scikit-learn's: the
distinct values when fewer than GRID, else GRID evenly spaced points between the 5th and 95th
percentiles. Classifiers: the probability of each class (the positive class for binary);
regression: the predicted value. Drawn here rather than by the Display so that a multiclass model
gets every class on one panel. Averages hide interactions and extrapolate where columns are
correlated: the report says so.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

ROWS = 300  # rows averaged over: plenty for a smooth average, ~20 grid points x 300 rows a feature
GRID = 20
KINDS = ("numeric", "categorical", "boolean")


def partial_dependence_plots(model, X: pd.DataFrame, features: list[str], kinds: dict[str, str],
                             classes: list[Any] | None, task: str, path: Path, seed: int = 0,
                             time_limit: float = 10.0) -> dict[str, Any]:
    """One panel per feature (at most 3) in one PNG at `path`; the averages in the returned record."""
    from dsagent.tools.plots import _plt, _save

    started = time.monotonic()
    if len(X) > ROWS:
        X = X.sample(ROWS, random_state=seed)
    chosen = [f for f in features if kinds.get(f) in KINDS and f in X.columns and X[f].notna().any()][:3]
    X = X.copy()
    for f in chosen:  # the grid needs values; the pipeline's imputer would fill these the same way
        if X[f].isna().any():
            X[f] = X[f].fillna(X[f].median() if kinds[f] == "numeric" else X[f].mode().iloc[0])
    panels, skipped = [], []
    for f in chosen:
        if time.monotonic() - started > time_limit:
            skipped.append({"feature": f, "reason": "time limit"})
            continue
        categorical = kinds[f] != "numeric"
        # A categorical's grid is every level it has: the GRID most frequent levels stand for it (the
        # scorecard benchmark's 2,000-name `inst_name` made one panel predict 300 rows x ~300 levels, 19 s).
        values = np.asarray(X[f].value_counts().index[:GRID], dtype=object) if categorical else numeric_grid(X[f])
        try:
            avg = average_predictions(model, X, f, values, classes, task)
        except (ValueError, TypeError, AttributeError) as exc:  # e.g. a grid value the model refuses
            skipped.append({"feature": f, "reason": str(exc).splitlines()[0][:160]})
            continue
        grid = [v.item() if hasattr(v, "item") else v for v in values]
        names = ([str(classes[1])] if task == "binary" else [str(c) for c in classes]) if classes else ["prediction"]
        panels.append({"feature": f, "categorical": categorical, "grid": grid,
                       "average": {n: [round(float(v), 6) for v in row] for n, row in zip(names, avg)}})
    record: dict[str, Any] = {"features": [p["feature"] for p in panels], "panels": panels, "skipped": skipped,
                              "rows": int(len(X)), "of": ("probability of " + ("class " + str(classes[1]) if task == "binary"
                                                          else "each class")) if classes else "the predicted value"}
    if not panels:
        return record
    plt = _plt()
    # At least 6 inches wide: one panel alone (the others skipped by the time limit) at 4.2 in left the
    # title cut and the PNG 462 px wide, under the report's legibility floor.
    fig, axes = plt.subplots(1, len(panels), figsize=(max(6.0, 4.2 * len(panels)), 3.4), squeeze=False)
    for ax, p in zip(axes[0], panels):
        for name, ys in p["average"].items():
            if p["categorical"]:
                ax.plot([str(g) for g in p["grid"]], ys, marker="o", label=name)
            else:
                ax.plot(p["grid"], ys, label=name)
        ax.set_xlabel(str(p["feature"])[:40])
        ax.tick_params(axis="x", labelrotation=30 if p["categorical"] else 0)
    axes[0][0].set_ylabel(record["of"])
    if len(panels[0]["average"]) > 1:
        axes[0][-1].legend(fontsize=8)
    fig.suptitle("Partial dependence (average prediction as one column varies)")
    _save(fig, path)
    record["plot"] = str(path)
    return record


def numeric_grid(column: pd.Series) -> np.ndarray:
    """scikit-learn's grid for a numeric column: its distinct values when fewer than GRID, else GRID
    points evenly spaced between its 5th and 95th percentiles (outliers stretch no axis)."""
    present = column.dropna().to_numpy(dtype=float)
    values = np.unique(present)
    if len(values) < GRID:
        return values
    from scipy.stats.mstats import mquantiles  # the percentiles scikit-learn takes (its default plotting positions)

    low, high = mquantiles(present, prob=(0.05, 0.95), axis=0)
    return np.linspace(low, high, num=GRID, endpoint=True)


def average_predictions(model, X: pd.DataFrame, feature: str, grid: np.ndarray, classes: list[Any] | None,
                        task: str) -> np.ndarray:
    """(outputs, len(grid)): the mean prediction over X's rows with `feature` set to each grid value;
    outputs are the positive class's probability (binary), each class's (multiclass) or the value."""
    k, n = len(grid), len(X)
    stacked = pd.concat([X] * k, ignore_index=True)
    repeated = np.repeat(np.asarray(grid, dtype=object), n)
    try:  # the column keeps its dtype (a category, a string, a number), as the model saw it in training
        stacked[feature] = pd.array(repeated, dtype=X[feature].dtype)
    except (TypeError, ValueError):
        stacked[feature] = repeated
    if classes:
        proba = np.asarray(model.predict_proba(stacked), dtype=float).reshape(k, n, -1).mean(axis=1)
        return proba[:, 1][None, :] if task == "binary" else proba.T
    return np.asarray(model.predict(stacked), dtype=float).reshape(k, n).mean(axis=1)[None, :]


def pdp_markdown(record: dict[str, Any], plot_rel: str) -> list[str]:
    """The report's lines for a partial-dependence record (nothing when no panel was drawn)."""
    if not record.get("panels"):
        return []
    names = ", ".join(str(f) for f in record["features"])
    return [f"Partial dependence of {record['of']} on {names} (the most important columns), averaged over "
            f"{record['rows']} test rows: how the prediction moves as one column varies with the others as they are. "
            "Averages hide interactions, and where columns are correlated they describe rows that may not occur.", "",
            f"![partial dependence]({plot_rel})", ""]
