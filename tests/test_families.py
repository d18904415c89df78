"""Model families come from the `dsagent.model_families` entry points, the built-ins included."""

from importlib.metadata import entry_points

from dsagent.tools.families import families_for, model_families, tunable_names


def test_builtin_families_register_through_entry_points():
    declared = {ep.name for ep in entry_points(group="dsagent.model_families")}
    builtins = {"baseline", "linear", "xgboost", "random_forest", "extra_trees", "hist_gb", "mlp"}
    assert builtins <= declared
    families = model_families()
    assert builtins <= set(families) and all(families[n].package == "dsagent" for n in builtins)
    assert "baseline" not in tunable_names() and {"xgboost", "mlp"} <= set(tunable_names())
    assert "mlp" not in {f.name for f in families_for("regression")}  # a family declares its tasks


def test_a_family_builds_its_estimator_and_search_space():
    import optuna

    xgb = model_families()["xgboost"]
    assert xgb.build({"max_depth": 3}, "binary", 0, 2).get_params()["max_depth"] == 3
    trial = optuna.trial.FixedTrial({"C": 2.0})
    assert model_families()["linear"].search_space(trial, "binary") == {"C": 2.0}


def test_a_converged_mlp_is_estimated_to_grow_slower_than_linear_in_rows(monkeypatch):
    """An MLP whose search folds stopped before max_iter needs fewer epochs on more rows (fertility:
    exponent 0.73 measured); one that ran all its epochs stays linear. DSAGENT_CONVERGED_EXPONENT=1."""
    import numpy as np
    import pytest
    from sklearn.linear_model import LogisticRegression
    from sklearn.neural_network import MLPClassifier

    from dsagent.tools.cv import _converged, estimated_refit_s

    row = {"family": "mlp", "fold_fit_s": 2.0, "fold_rows": 10_000, "fold_converged": True}
    monkeypatch.setenv("DSAGENT_CONVERGED_EXPONENT", "1")
    assert estimated_refit_s(row, 80_000) == pytest.approx(2.0 * 8 ** 0.7)
    assert estimated_refit_s({**row, "fold_converged": False}, 80_000) == pytest.approx(16.0)
    assert estimated_refit_s({**row, "family": "random_forest"}, 80_000) == pytest.approx(16.0)  # no such exponent
    monkeypatch.setenv("DSAGENT_CONVERGED_EXPONENT", "0")
    assert estimated_refit_s(row, 80_000) == pytest.approx(16.0)

    rng = np.random.default_rng(0)
    X = rng.normal(size=(120, 3))
    y = (X[:, 0] > 0).astype(int)
    assert _converged(MLPClassifier(max_iter=2, random_state=0).fit(X, y)) is False  # stopped by the cap
    assert _converged(MLPClassifier(max_iter=2000, random_state=0).fit(X, y)) is True
    assert _converged(LogisticRegression().fit(X, y)) is None  # n_iter_ is an array: no such cap here
