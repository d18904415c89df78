"""Partial dependence of the shipped model on its most important columns, for the report.

scikit-learn's `inspection.partial_dependence` (the computation behind PartialDependenceDisplay)
on the raw columns through the whole Pipeline: each grid value is written into every sampled
row and the predictions are averaged. Classifiers: the probability of each class (the positive
class for binary); regression: the predicted value. Drawn here rather than by the Display so that
a multiclass model gets every class on one panel. Averages hide interactions and extrapolate
where columns are correlated: the report says so.
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
    from sklearn.inspection import partial_dependence

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
        levels = {f: np.asarray(X[f].value_counts().index[:GRID], dtype=object)} if categorical else None
        try:
            res = partial_dependence(model, X, [f], kind="average", grid_resolution=GRID,
                                     categorical_features=[f] if categorical else None, custom_values=levels)
        except (ValueError, TypeError, AttributeError) as exc:  # e.g. an estimator sklearn cannot inspect
            skipped.append({"feature": f, "reason": str(exc).splitlines()[0][:160]})
            continue
        grid = [v.item() if hasattr(v, "item") else v for v in res["grid_values"][0]]
        avg = np.asarray(res["average"], dtype=float)
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


def pdp_markdown(record: dict[str, Any], plot_rel: str) -> list[str]:
    """The report's lines for a partial-dependence record (nothing when no panel was drawn)."""
    if not record.get("panels"):
        return []
    names = ", ".join(str(f) for f in record["features"])
    return [f"Partial dependence of {record['of']} on {names} (the most important columns), averaged over "
            f"{record['rows']} test rows: how the prediction moves as one column varies with the others as they are. "
            "Averages hide interactions, and where columns are correlated they describe rows that may not occur.", "",
            f"![partial dependence]({plot_rel})", ""]
