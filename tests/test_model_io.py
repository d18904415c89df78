"""The model artifact: skops only, an explicit trusted-type list, integrity and crash-safe writes."""

from __future__ import annotations

import json
import os
import pickle
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from dsagent.tools.features import build_pipeline
from dsagent.tools.model_io import TRUSTED_TYPES, ModelFileError, load_model, save_model

ROOT = Path(__file__).resolve().parent.parent
KINDS = {"island": "categorical", "bill_length_mm": "numeric", "sex": "categorical", "when": "datetime",
         "note": "text", "hc": "categorical", "year": "numeric"}


@pytest.fixture(scope="module")
def frame() -> pd.DataFrame:
    df = pd.read_csv(ROOT / "examples" / "penguins.csv")
    df["when"] = pd.date_range("2020-01-01", periods=len(df), freq="D").astype(str)
    df["note"] = [f"quick brown fox {i % 7}" for i in range(len(df))]
    df["hc"] = [f"c{i % 40}" for i in range(len(df))]  # high cardinality -> TargetEncoder
    return df


DERIVED = {"features": ["bill_per_year = bill_length_mm / (`year` - 2000)", "n_island = count() by island",
                        "bill_island = mean(bill_length_mm) by island", "recent = mean(bill_length_mm) by sex over 30 days",
                        "long_note = length(note) * contains(note, \"fox\")"], "time_column": "when"}


def _fit(frame, family="linear", task="multiclass", n=5, derived=None):
    X = frame[list(KINDS)]
    y = {"multiclass": frame["species"].map({"Adelie": 0, "Chinstrap": 1, "Gentoo": 2}).to_numpy(),
         "binary": (frame["species"] == "Adelie").astype(int).to_numpy(),
         "regression": frame["body_mass_g"].fillna(4000).to_numpy(dtype=float)}[task]
    params = {"n_estimators": n} if family in ("random_forest", "extra_trees", "xgboost") else {}
    if family == "hist_gb":
        params = {"max_iter": n}
    if family == "mlp":
        params = {"max_iter": n, "hidden_layer_sizes": [8]}
    if family in ("lightgbm", "catboost"):
        params = {"n_estimators": n} if family == "lightgbm" else {"iterations": n}
    return build_pipeline({"family": family, "params": params}, KINDS, X, task, 0, 3, derived).fit(X, y), X


def _manifest(tag: str) -> dict:
    return {"task": "multiclass", "model": tag, "input_schema": {"columns": []}}


@pytest.mark.parametrize("task", ["multiclass", "regression"])
def test_every_family_round_trips_with_the_trusted_list(frame, tmp_path, task):
    """Keeps TRUSTED_TYPES honest: every family dsagent.tools.features builds saves and loads."""
    classification_only = {"mlp"}
    for family in ("baseline", "linear", "random_forest", "extra_trees", "hist_gb", "xgboost", "mlp", "lightgbm",
                   "catboost"):
        if task == "regression" and family in classification_only:
            continue
        model, X = _fit(frame, family, task)
        path = tmp_path / family / "model.skops"
        save_model(model, path, _manifest(family))
        loaded, manifest = load_model(path)
        np.testing.assert_allclose(loaded.predict(X.iloc[:20]), model.predict(X.iloc[:20]))
        assert manifest["model"] == family and len(manifest["sha256"]) == 64
        assert set(manifest["trusted_types"]) == set(TRUSTED_TYPES)
        if family == "random_forest":  # the schema is written compact (model_io._compact_schema): no indent
            import zipfile

            schema = zipfile.ZipFile(path).read("schema.json")
            assert b'\n  "' not in schema and json.loads(schema)["__class__"] == "Pipeline"


def test_derived_features_round_trip_with_their_fitted_aggregates(frame, tmp_path):
    """The DerivedFeatures step (group and windowed aggregates learned in fit) saves and loads."""
    model, X = _fit(frame, "xgboost", "multiclass", derived=DERIVED)
    path = tmp_path / "derived" / "model.skops"
    save_model(model, path, _manifest("derived"))
    loaded, _ = load_model(path)
    step = loaded.named_steps["preprocess"].named_steps["derive"]
    assert step.tables_ == model.named_steps["preprocess"].named_steps["derive"].tables_
    np.testing.assert_allclose(loaded.predict_proba(X.iloc[:30]), model.predict_proba(X.iloc[:30]))


def test_trusted_list_is_exact_names_not_prefixes():
    assert all(t.count(".") >= 1 and not t.endswith(".") for t in TRUSTED_TYPES)
    assert not any(t.startswith(("builtins.", "os.", "subprocess.", "posix.")) for t in TRUSTED_TYPES)


def test_pickle_and_joblib_files_are_refused(frame, tmp_path):
    model, _ = _fit(frame)
    for name in ("model.pkl", "model.joblib", "model.pickle"):
        p = tmp_path / name
        p.write_bytes(pickle.dumps({"not": "loaded"}))
        with pytest.raises(ModelFileError, match="pickle/joblib"):
            load_model(p)
    disguised = tmp_path / "disguised" / "model.skops"  # a pickle renamed to .skops
    disguised.parent.mkdir()
    disguised.write_bytes(pickle.dumps(model))
    with pytest.raises(ModelFileError, match="pickle"):
        load_model(disguised)


def test_tampered_file_is_refused(frame, tmp_path):
    model, _ = _fit(frame)
    path = tmp_path / "model" / "model.skops"
    save_model(model, path, _manifest("a"))
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))
    with pytest.raises(ModelFileError, match="sha256"):
        load_model(path)


class Gadget:  # a type nobody put on the trusted list
    def __init__(self):
        self.payload = "would run on load if trusted blindly"


def test_untrusted_type_is_refused_even_with_a_matching_manifest(frame, tmp_path):
    import skops.io as sio

    from dsagent.tools.model_io import _sha256

    good, _ = _fit(frame)
    path = tmp_path / "model" / "model.skops"
    save_model(good, path, _manifest("good"))
    with pytest.raises(ModelFileError, match="trusted"):  # refused at save time, previous model untouched
        save_model({"m": Gadget()}, path, _manifest("evil"))
    assert load_model(path)[1]["model"] == "good"
    assert not [p for p in path.parent.iterdir() if p.name.startswith(".")]

    sio.dump({"m": Gadget()}, path)  # an attacker who rewrites the file and its manifest
    manifest = json.loads((path.parent / "manifest.json").read_text())
    (path.parent / "manifest.json").write_text(json.dumps(manifest | {"sha256": _sha256(path)}))
    with pytest.raises(ModelFileError, match="outside the trusted list"):
        load_model(path)


CRASH = textwrap.dedent("""
    import os, sys
    import numpy as np
    sys.path.insert(0, {root!r})
    from sklearn.linear_model import LogisticRegression
    from dsagent.tools import model_io
    rng = np.random.default_rng(1)
    model = LogisticRegression().fit(rng.normal(size=(50, 3)), rng.integers(0, 2, 50))
    calls = {{"n": 0}}
    real = os.replace
    def dying_replace(a, b):
        calls["n"] += 1
        if calls["n"] == {die_at}:
            os._exit(9)  # the process dies here: no cleanup, no finally
        return real(a, b)
    model_io.os.replace = dying_replace
    model_io.save_model(model, model_io.Path({path!r}), {{"task": "binary", "model": "new", "input_schema": {{"columns": []}}}})
""")


@pytest.mark.parametrize("die_at, expected", [(1, "old"), (2, "new")])
def test_process_killed_between_temp_write_and_rename(frame, tmp_path, die_at, expected):
    """Killed before the model's rename: the old pair stays. Killed between the model's and the
    manifest's rename: the new model is complete and its pending manifest rolls it forward. Never
    a half-written or unverifiable model."""
    model, _ = _fit(frame)
    path = tmp_path / "model" / "model.skops"
    save_model(model, path, _manifest("old"))
    script = CRASH.format(root=str(ROOT), die_at=die_at, path=str(path))
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 9, proc.stderr[-2000:]
    loaded, manifest = load_model(path)
    assert manifest["model"] == expected
    assert hasattr(loaded, "predict")
    save_model(model, path, _manifest("after"))  # the next save cleans up what the crash left
    assert load_model(path)[1]["model"] == "after"
    assert sorted(p.name for p in path.parent.iterdir()) == ["manifest.json", "model.skops"]


LOOP = textwrap.dedent("""
    import sys
    import numpy as np
    sys.path.insert(0, {root!r})
    from sklearn.ensemble import RandomForestClassifier
    from dsagent.tools import model_io
    rng = np.random.default_rng(0)
    X, y = rng.normal(size=(400, 6)), rng.integers(0, 2, 400)
    models = [RandomForestClassifier(n_estimators=30, random_state=s).fit(X, y) for s in (0, 1)]
    i = 0
    print("ready", flush=True)
    while True:
        model_io.save_model(models[i % 2], model_io.Path({path!r}), {{"task": "binary", "model": f"v{{i % 2}}",
                                                                      "input_schema": {{"columns": []}}}})
        i += 1
""")


def test_sigkill_during_repeated_saves_never_leaves_a_broken_model(tmp_path):
    path = tmp_path / "model" / "model.skops"
    proc = subprocess.Popen([sys.executable, "-c", LOOP.format(root=str(ROOT), path=str(path))],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert proc.stdout.readline().strip() == "ready"
        deadline = time.monotonic() + 60
        while not (path.parent / "manifest.json").exists() and time.monotonic() < deadline:
            time.sleep(0.05)
        time.sleep(0.8)  # several saves in, then kill it wherever it is
    finally:
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
    model, manifest = load_model(path)
    assert manifest["model"] in ("v0", "v1")
    assert model.predict(np.zeros((2, 6))).shape == (2,)


def test_loading_a_model_does_not_import_torch(frame, tmp_path):
    """skops lists scikit-learn's estimators by importing every subpackage, torch's array-API
    wrapper too: model_io.skops_io keeps torch out (~1.5 CPU-s per process that loads a model),
    scikit-learn's estimators are still trusted, and the model loads and predicts in a fresh process."""
    model, X = _fit(frame)
    path = tmp_path / "model" / "model.skops"
    save_model(model, path, _manifest("m"))
    script = textwrap.dedent(f"""
        import sys
        import pandas as pd
        from dsagent.tools.model_io import load_model
        model, _ = load_model({str(path)!r})
        from skops.io._trusted_types import SKLEARN_ESTIMATOR_TYPE_NAMES as names
        X = pd.read_json(sys.stdin, orient="split")
        print("torch" in sys.modules, "sklearn.linear_model._logistic.LogisticRegression" in names,
              "sklearn.ensemble._hist_gradient_boosting.gradient_boosting.HistGradientBoostingClassifier" in names,
              model.predict(X).tolist() == {model.predict(X).tolist()!r})
    """)
    proc = subprocess.run([sys.executable, "-c", script], input=X.to_json(orient="split"), capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout.split() == ["False", "True", "True", "True"]


def test_integer_codes_one_hot_for_linear_models_round_trip(frame, tmp_path, monkeypatch):
    """penguins' year (2007-2009) is three integer codes: with DSAGENT_CODED_LEVELS=1 the scaled-input
    families get a CodedLevels step, which must save and load with the trusted list."""
    monkeypatch.setenv("DSAGENT_CODED_LEVELS", "1")
    for family in ("linear", "mlp"):
        model, X = _fit(frame, family)
        assert "year=2008" in model.named_steps["preprocess"].get_feature_names_out()
        path = tmp_path / family / "model.skops"
        save_model(model, path, _manifest(family))
        loaded, _ = load_model(path)
        np.testing.assert_allclose(loaded.predict_proba(X.iloc[:20]), model.predict_proba(X.iloc[:20]))


def test_catboost_reads_categoricals_as_labels_and_round_trips(frame, tmp_path):
    """CatBoost's "native" mode hands it the categoricals as text labels through cat_features (its
    own target statistics) rather than ordinal codes; the labels step saves and loads with the
    trusted list, and a raw row with a missing or unseen level still predicts."""
    kinds = {k: v for k, v in KINDS.items() if k != "note"}  # a text column keeps every family on codes
    X = frame[list(kinds)]
    y = (frame["species"] == "Adelie").astype(int).to_numpy()
    spec = {"family": "catboost", "params": {"iterations": 5, "categorical": "native"}}
    model = build_pipeline(spec, kinds, X, "binary", 0).fit(X, y)
    assert model[-1].get_params()["cat_features"] == ("island", "sex")
    from sklearn.base import clone

    clone(model)  # a blend's VotingClassifier clones its members
    encoded = model.named_steps["preprocess"].transform(X.iloc[:3])
    assert encoded["island"].tolist() == X["island"].iloc[:3].tolist()
    path = tmp_path / "model.skops"
    save_model(model, path, _manifest("catboost"))
    loaded, _ = load_model(path)
    odd = X.iloc[:2].copy()
    odd["island"] = [None, "Atlantis"]
    np.testing.assert_allclose(loaded.predict_proba(odd), model.predict_proba(odd))
    assert np.isfinite(loaded.predict_proba(odd)).all()
    ordinal = build_pipeline({"family": "catboost", "params": {"iterations": 5, "categorical": "ordinal"}}, kinds, X,
                             "binary", 0)
    assert ordinal[-1].get_params().get("cat_features") is None
