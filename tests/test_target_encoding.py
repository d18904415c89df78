"""dsagent.tools.features.TargetEncoding: scikit-learn's TargetEncoder with a hash-lookup transform.
Its output must equal TargetEncoder's for every target type, unseen levels and missing values,
and a fitted model holding it must save and load with skops' trusted list."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.model_selection import KFold
from sklearn.preprocessing import TargetEncoder

from dsagent.tools.features import TargetEncoding


def _frame(rng, n: int, levels: int) -> pd.DataFrame:
    return pd.DataFrame({"id": rng.integers(0, levels, n).astype(str),
                         "kind": rng.choice(np.array(["x", "y", "z", np.nan], dtype=object), n)}).astype(object)


@pytest.mark.parametrize("target_type", ["binary", "continuous", "multiclass"])
def test_transform_equals_scikit_learns_with_unseen_levels_and_missing_values(target_type):
    rng = np.random.default_rng(0)
    X = _frame(rng, 2000, 400)
    y = {"binary": rng.integers(0, 2, 2000), "continuous": rng.normal(size=2000),
         "multiclass": rng.choice(["p", "q", "r"], 2000)}[target_type]
    theirs = TargetEncoder(target_type=target_type, cv=KFold(5, shuffle=True, random_state=0))
    ours = TargetEncoding(target_type=target_type, cv=KFold(5, shuffle=True, random_state=0))
    np.testing.assert_allclose(ours.fit_transform(X, y), theirs.fit_transform(X, y))  # cross-fitting unchanged
    new = _frame(rng, 300, 600)  # ids 400-599 were never seen; "w" neither
    new.loc[:20, "kind"] = "w"
    np.testing.assert_allclose(ours.transform(new), theirs.transform(new))
    np.testing.assert_allclose(ours.transform(new.to_numpy()), theirs.transform(new))
    assert ours.categories_[0].dtype.kind == "U"  # all strings: one fixed-width array (one .npy in skops)
    assert ours.categories_[1].dtype == object  # NaN among the levels: kept as scikit-learn made it
    with pytest.raises(ValueError, match="expecting 2 features"):
        ours.transform(new[["id"]])


def test_a_pipeline_with_it_round_trips_through_skops(tmp_path):
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline

    from dsagent.tools.model_io import load_model, save_model

    rng = np.random.default_rng(1)
    X = _frame(rng, 500, 200).fillna("__missing__")
    y = rng.integers(0, 2, 500)
    model = make_pipeline(TargetEncoding(target_type="binary", cv=KFold(5, shuffle=True, random_state=0)), LogisticRegression()).fit(X, y)
    save_model(model, tmp_path / "model.skops", {"task": "binary"})
    loaded, _ = load_model(tmp_path / "model.skops")
    np.testing.assert_allclose(loaded.predict_proba(X), model.predict_proba(X))
