"""Integer codes in numeric columns (tools/features.CodedLevels, opt-in DSAGENT_CODED_LEVELS=1): a
one-hot column per level for the families that read numbers as a line, learned on training rows."""

from __future__ import annotations

import numpy as np
import pandas as pd

from dsagent.tools.features import CodedLevels, build_pipeline

KINDS = {"store": "numeric", "amount": "numeric", "flag": "numeric", "many": "numeric", "grade": "categorical"}


def _frame(n: int = 200) -> pd.DataFrame:
    rng = np.random.default_rng(0)
    store = rng.choice([1, 2, 3, 7], n)
    store[:3] = 9  # a level seen on 3 rows: fewer than RARE, no column of its own
    return pd.DataFrame({"store": store, "amount": rng.normal(size=n), "flag": rng.choice([0, 1], n),
                         "many": rng.integers(0, 40, n), "grade": rng.choice(["a", "b"], n)})


def test_only_columns_of_a_few_integer_codes_get_levels_and_rare_levels_get_none():
    df = _frame()
    step = CodedLevels().fit(df[["store", "amount", "flag", "many"]])
    # amount: not integers; flag: two levels (already a line); many: 40 levels (an amount, not codes)
    assert step.columns_ == [0] and step.levels_ == [[1.0, 2.0, 3.0, 7.0]]
    assert list(step.get_feature_names_out()) == ["store=1", "store=2", "store=3", "store=7"]
    new = pd.DataFrame({"store": [2, 9, 5, np.nan], "amount": [0.0] * 4, "flag": [1] * 4, "many": [3] * 4})
    out = step.transform(new)
    # a known level -> its column; the rare, an unseen level and a missing value -> zeros
    np.testing.assert_array_equal(out, [[0, 1, 0, 0], [0, 0, 0, 0], [0, 0, 0, 0], [0, 0, 0, 0]])


def test_the_switch_adds_the_levels_to_linear_models_only(monkeypatch):
    df = _frame()
    y = (df["store"] == 3).astype(int).to_numpy()  # a code a line cannot express: 3 of 1, 2, 3, 7

    def names(family, on):
        monkeypatch.setenv("DSAGENT_CODED_LEVELS", "1" if on else "0")
        model = build_pipeline({"family": family, "params": {}}, KINDS, df, "binary", 0).fit(df, y)
        return list(model.named_steps["preprocess"].get_feature_names_out()), model

    off, _ = names("linear", False)
    on, model = names("linear", True)
    assert [c for c in on if c not in off] == ["store=1", "store=2", "store=3", "store=7"]
    assert model.predict_proba(df)[:, 1][y == 1].min() > 0.5  # the linear model now finds the code
    assert not any("=" in c for c in names("random_forest", True)[0])  # trees cut the number anywhere
