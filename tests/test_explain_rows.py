"""Per-row explanations (issue 22): `dsagent explain` and the method behind it, per model family.

Each method must add up: base_value + the contributions = what it says it explains, row by row.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from dsagent.tools.contributions import explain_rows
from dsagent.tools.features import build_pipeline
from dsagent.tools.model_io import input_schema
from dsagent.tools.serving import check_schema

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT / "examples" / "penguins.csv"
KINDS = {"island": "categorical", "bill_length_mm": "numeric", "bill_depth_mm": "numeric",
         "flipper_length_mm": "numeric", "body_mass_g": "numeric", "sex": "categorical"}


def _fitted(family: str, task: str):
    data = pd.read_csv(DATA).dropna(subset=["sex"]).reset_index(drop=True)
    X = data[list(KINDS)]
    if task == "binary":
        classes = ["female", "male"]
        X = X.drop(columns=["sex"]).assign(species=data["species"])
        kinds = {**{k: v for k, v in KINDS.items() if k != "sex"}, "species": "categorical"}
        y = (data["sex"] == "male").astype(int).to_numpy()
    else:
        classes = ["Adelie", "Chinstrap", "Gentoo"]
        kinds, y = KINDS, data["species"].map({c: i for i, c in enumerate(classes)}).to_numpy()
    params = {"n_estimators": 20, "max_depth": 3} if family == "xgboost" else {"max_iter": 30} if family == "hist_gb" else {}
    model = build_pipeline({"family": family, "params": params}, kinds, X, task, 0, len(classes)).fit(X, y)
    manifest = {"task": task, "classes": classes, "input_schema": input_schema(X)}
    rows = check_schema(manifest, X.sample(25, random_state=1), lambda _w: None)
    return model, manifest, rows, X


def _sum(frame: pd.DataFrame) -> np.ndarray:
    return frame["base_value"].to_numpy() + frame.filter(like="contrib_").sum(axis=1).to_numpy()


def test_linear_contributions_add_up_to_the_log_odds():
    model, manifest, rows, _ = _fitted("linear", "multiclass")
    frame, info = explain_rows(model, manifest, rows)
    assert "linear" in info["method"] and "exact" in info["method"]
    decision = model.decision_function(rows)
    cls = [manifest["classes"].index(c) for c in frame["explained_class"]]
    np.testing.assert_allclose(_sum(frame), decision[np.arange(len(rows)), cls], rtol=1e-6, atol=1e-8)
    assert frame["explained_class"].tolist() == [manifest["classes"][i] for i in model.predict_proba(rows).argmax(1)]


def test_xgboost_contributions_are_exact_treeshap_of_the_margin():
    model, manifest, rows, _ = _fitted("xgboost", "binary")
    frame, info = explain_rows(model, manifest, rows)
    assert "TreeSHAP" in info["method"] and set(frame["explained_class"]) == {"male"}  # binary: the positive class
    p = model.predict_proba(rows)[:, 1]
    np.testing.assert_allclose(_sum(frame), np.log(p / (1 - p)), rtol=1e-4, atol=1e-4)


def test_other_models_get_sampled_shapley_values_that_add_up_to_the_probability():
    model, manifest, rows, X = _fitted("hist_gb", "multiclass")
    background = X.sample(50, random_state=0)
    frame, info = explain_rows(model, manifest, rows, background)
    assert "sampled Shapley" in info["method"] and info["space"] == "raw columns"
    assert [c[len("contrib_"):] for c in frame.filter(like="contrib_").columns] == list(rows.columns)
    proba = model.predict_proba(rows)
    cls = [manifest["classes"].index(c) for c in frame["explained_class"]]
    np.testing.assert_allclose(_sum(frame), proba[np.arange(len(rows)), cls], atol=1e-9)


def test_explain_cli_writes_one_row_per_input_row(offline_run, tmp_path, capsys):
    from dsagent.cli import main
    from dsagent.tools.serving import predict_frame
    from dsagent.tools.model_io import load_model

    rows = pd.read_csv(DATA).sample(12, random_state=3)
    rows.to_csv(tmp_path / "rows.csv", index=False)
    cmd = [sys.executable, "-m", "dsagent.cli", "explain", offline_run.session_dir, str(tmp_path / "rows.csv"),
           "-o", str(tmp_path / "out.csv"), "--json"]
    proc = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert proc.returncode == 0, proc.stderr
    info = json.loads(proc.stdout)
    out = pd.read_csv(tmp_path / "out.csv")
    assert len(out) == 12 and info["rows"] == 12 and info["method"]
    assert {"prediction", "explained_class", "base_value"} <= set(out.columns)
    assert len(out.filter(like="contrib_").columns) == len(info["features"])
    model, manifest = load_model(offline_run.session_dir)
    expected = predict_frame(model, manifest, rows, lambda _w: None)  # same rows, same order as predict
    assert out["prediction"].tolist() == expected["prediction"].tolist()

    assert main(["explain", offline_run.session_dir, str(tmp_path / "nope.csv")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and err.count("\n") == 1


def test_partial_dependence_of_a_many_level_category_uses_its_most_frequent_levels(tmp_path):
    """A name-like column with hundreds of levels: its panel's grid is the 20 most frequent levels,
    not every level (which made one panel predict rows x levels: 19 s on the scorecard benchmark)."""
    from sklearn.compose import make_column_transformer
    from sklearn.linear_model import Ridge
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import OneHotEncoder

    from dsagent.tools.pdp import GRID, partial_dependence_plots

    rng = np.random.default_rng(0)
    names = np.array([f"college {i}" for i in range(400)])
    X = pd.DataFrame({"name": names[rng.zipf(1.5, 600) % 400], "x": rng.normal(size=600)})
    y = X["x"] + (X["name"] == "college 1")
    model = make_pipeline(make_column_transformer((OneHotEncoder(handle_unknown="ignore"), ["name"]), remainder="passthrough"),
                          Ridge()).fit(X, y)
    record = partial_dependence_plots(model, X, ["name", "x"], {"name": "categorical", "x": "numeric"}, None,
                                      "regression", tmp_path / "pdp.png")
    panel = next(p for p in record["panels"] if p["feature"] == "name")
    assert len(panel["grid"]) == GRID and panel["grid"][0] == X["name"].value_counts().index[0]


def test_a_partial_dependence_plot_of_one_panel_is_still_legible(tmp_path):
    """When the time limit leaves one panel, the PNG stays at least 500 px wide (at 110 dpi): 4.2 in
    per panel alone made it 462 px and cut its title (seen as a flaky deliverables test under load)."""
    from PIL import Image
    from sklearn.linear_model import Ridge

    from dsagent.tools.pdp import partial_dependence_plots

    rng = np.random.default_rng(0)
    X = pd.DataFrame({"x": rng.normal(size=200)})
    model = Ridge().fit(X, 2 * X["x"])
    record = partial_dependence_plots(model, X, ["x"], {"x": "numeric"}, None, "regression", tmp_path / "pdp.png")
    assert record["features"] == ["x"]
    width, height = Image.open(tmp_path / "pdp.png").size
    assert width >= 500 and height >= 250, (width, height)


@pytest.mark.parametrize("task", ["binary", "multiclass", "regression"])
def test_batched_partial_dependence_equals_scikit_learns(task):
    """One stacked predict call gives scikit-learn's partial_dependence (one call per grid value),
    grid and averages, for a numeric column (percentile grid), a few-valued one and a category."""
    from sklearn.compose import make_column_transformer
    from sklearn.ensemble import RandomForestClassifier, RandomForestRegressor
    from sklearn.inspection import partial_dependence
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import OneHotEncoder

    from dsagent.tools.pdp import GRID, average_predictions, numeric_grid

    rng = np.random.default_rng(1)
    n = 240
    X = pd.DataFrame({"x": rng.normal(size=n), "k": rng.integers(0, 4, n).astype(float),
                      "c": rng.choice(["red", "green", "blue"], n)})
    signal = X["x"] + (X["c"] == "red") - 0.5 * X["k"]
    y = {"binary": (signal > 0).astype(int), "multiclass": pd.cut(signal, 3, labels=False),
         "regression": signal}[task]
    forest = RandomForestRegressor if task == "regression" else RandomForestClassifier
    model = make_pipeline(make_column_transformer((OneHotEncoder(handle_unknown="ignore"), ["c"]), remainder="passthrough"),
                          forest(n_estimators=20, random_state=0)).fit(X, y)
    classes = None if task == "regression" else sorted(set(y))
    for feature in ("x", "k", "c"):
        categorical = feature == "c"
        grid = np.asarray(X[feature].value_counts().index[:GRID], dtype=object) if categorical else numeric_grid(X[feature])
        ours = average_predictions(model, X, feature, grid, classes, task)
        theirs = partial_dependence(model, X, [feature], kind="average", grid_resolution=GRID,
                                    categorical_features=[feature] if categorical else None,
                                    custom_values={feature: grid} if categorical else None)
        if not categorical:
            np.testing.assert_allclose(np.asarray(theirs["grid_values"][0], dtype=float), grid)
        np.testing.assert_allclose(ours, theirs["average"], rtol=1e-10, atol=1e-12)
