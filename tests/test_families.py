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
