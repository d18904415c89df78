"""Derived features: the safe expression language and the Pipeline step (no run, no sandbox)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from dsagent.tools.derived import DerivedError, check_features, parse_feature
from dsagent.tools.derived_step import DerivedFeatures

COLUMNS = ["a", "b", "region", "when", "note", "monthly income", "customer_id"]

HOSTILE = {
    "x = a.__class__": "attribute access",
    "x = ().__class__.__bases__[0].__subclasses__()": "attribute access",
    "x = __import__('os').system('touch /tmp/pwned')": "attribute access",
    "x = __import__('os')": "'__import__' is not allowed",
    "x = __builtins__": "double underscores",
    "x = eval('1')": "'eval' is not allowed",
    "x = open('/etc/passwd')": "'open' is not allowed",
    "x = a[0]": "subscripts",
    "x = (lambda: 1)()": "only the listed functions",
    "x = lambda: a": "lambda",
    "x = [c for c in a]": "comprehensions",
    "x = (y := a)": "assignment",
    "x = f'{a}'": "f-strings",
    "x = a if b else 1": "where(c, a, b)",
    "x = log(a, b=1)": "no keyword arguments",
    "x = log(*a)": "star arguments",
    "x = a in b": "comparisons",
    "x = " + "(" * 10_000 + "a" + ")" * 10_000: "characters long",
    "x = " + "-" * 10_000 + "a": "characters long",
    "x = " + "-" * 300 + "a": "nested too deeply",
    "x = " + "log(" * 40 + "a" + ")" * 40: "nested too deeply",
    "x = `a": "backquote is not closed",
    "__class__ = a": "must be letters",
    "x = a\ny = b": "several lines",
    "x = mean(a)": "write `mean(x) by column`",
    "x = mean(a) by region over 3 parsecs": "positive number of hours, days or weeks",
    "x = sum(mean(a) by region) by region": "inside another aggregate",
    "x = contains(note, a)": "quoted string",
    "x = True": "only numbers",
    "a + b": "not `name = expression`",
}


@pytest.mark.parametrize("text,reason", list(HOSTILE.items()), ids=[f"h{i}" for i in range(len(HOSTILE))])
def test_hostile_or_malformed_expressions_are_refused_with_a_one_line_reason(text, reason):
    with pytest.raises(DerivedError) as err:
        check_features([text], COLUMNS)
    message = str(err.value)
    assert reason in message and "\n" not in message and len(message) < 400


def test_column_checks_name_the_problem():
    with pytest.raises(DerivedError, match="'incme', which is not a column.*did you mean"):
        check_features(["r = a / incme"], COLUMNS + ["income"])
    with pytest.raises(DerivedError, match="reads the target 'b'"):
        check_features(["r = a / b"], COLUMNS, target="b")
    with pytest.raises(DerivedError, match="needs a time column"):
        check_features(["r = count() by customer_id over 90 days"], COLUMNS)
    with pytest.raises(DerivedError, match="name of a data column"):
        check_features(["a = b * 2"], COLUMNS)
    with pytest.raises(DerivedError, match="defined twice"):
        check_features(["r = a", "r = b"], COLUMNS)


def test_language_computes_what_it_says():
    df = pd.DataFrame({"a": [1.0, 4.0, -1.0, 9.0], "b": [2, 0, 1, 3], "region": ["n", "s", "n", None],
                       "when": ["2024-01-01 10:00", "2024-01-07", "2024-02-29 23:00", None],
                       "note": ["hello", "x", None, "oh hello"], "monthly income": [1, 2, 3, 4]})
    feats = ["r = a / b", "l = log(a)", "s = sqrt(abs(a))", "c = clip(a, 0, 5)", "w = where(a > 2 and b > 0, 1, -1)",
             "y = year(when) * 100 + month(when)", "dow = dayofweek(when)", "h = hour(when)",
             "d = days_between(\"2024-01-01\", when)", "n = length(note)", "has = contains(note, \"hello\")",
             "eq = region == \"n\"", "inc = `monthly income` ** 2", "m = mean(a) by region", "k = count() by region"]
    check_features(feats, list(df.columns))
    out = DerivedFeatures(feats).fit(df).transform(df)
    expect = {
        "r": [0.5, np.nan, -1.0, 3.0], "l": [0.0, np.log(4), np.nan, np.log(9)], "s": [1, 2, 1, 3], "c": [1, 4, 0, 5],
        "w": [-1, -1, -1, 1], "y": [202401, 202401, 202402, np.nan], "dow": [0, 6, 3, np.nan], "h": [10, 0, 23, np.nan],
        "d": [10 / 24, 6, 59 + 23 / 24, np.nan], "n": [5, 1, np.nan, 8], "has": [1, 0, np.nan, 1], "eq": [1, 0, 1, 0],
        "inc": [1, 4, 9, 16], "m": [0, 4, 0, 9], "k": [2, 1, 2, 1],
    }
    for name, values in expect.items():
        np.testing.assert_allclose(out[name].to_numpy(dtype=float), values, err_msg=name)
    assert list(out.columns[:6]) == list(df.columns)  # raw columns kept: the preprocessing selects by name


def test_group_aggregates_are_learned_in_fit_and_unseen_groups_get_the_global_value():
    train = pd.DataFrame({"a": [1.0, 3.0, 10.0], "region": ["n", "n", "s"]})
    new = pd.DataFrame({"a": [100.0, 100.0], "region": ["s", "unseen"]})
    step = DerivedFeatures(["m = mean(a) by region", "k = count() by region"]).fit(train)
    out = step.transform(new)
    np.testing.assert_allclose(out["m"], [10.0, 14 / 3])  # the new rows' own values never enter
    np.testing.assert_allclose(out["k"], [1.0, 0.0])  # a group with no training row has a count of 0


def test_a_windowed_aggregate_never_reads_its_own_time_or_later():
    """Poisoning every row at or after a row's time leaves that row's feature unchanged."""
    rng = np.random.default_rng(0)
    n = 60
    df = pd.DataFrame({"customer_id": rng.choice(["c1", "c2", "c3"], n),
                       "when": pd.Timestamp("2024-01-01") + pd.to_timedelta(rng.integers(0, 200, n), unit="D"),
                       "amount": rng.normal(100, 20, n)})
    feats = ["spend = sum(amount) by customer_id over 30 days", "avg = mean(amount) by customer_id over 30 days",
             "orders = count() by customer_id over 30 days"]
    clean = DerivedFeatures(feats, time_column="when").fit(df).transform(df)
    assert clean["orders"].max() > 0 and clean["spend"].notna().any()  # the window does find history
    for i in range(n):
        poisoned = df.copy()
        later = poisoned["when"] >= df["when"].iloc[i]
        poisoned.loc[later, "amount"] = 1e9
        poisoned.loc[later & (poisoned.index != i), "customer_id"] = df["customer_id"].iloc[i]  # and move them into its group
        row = DerivedFeatures(feats, time_column="when").fit(poisoned).transform(poisoned.iloc[[i]])
        for name in ("spend", "avg", "orders"):
            a, b = clean[name].iloc[i], row[name].iloc[0]
            assert (np.isnan(a) and np.isnan(b)) or a == pytest.approx(b), (i, name)


def test_parse_never_reaches_python_eval(monkeypatch):
    import ast
    import builtins

    real_compile = builtins.compile

    def refuse(*args, **kwargs):
        raise AssertionError("eval/exec called")

    def ast_only(source, filename, mode, flags=0, *args, **kwargs):  # ast.parse compiles to a tree, never to code
        assert flags & ast.PyCF_ONLY_AST, "compiled to code"
        return real_compile(source, filename, mode, flags, *args, **kwargs)

    monkeypatch.setattr(builtins, "eval", refuse)
    monkeypatch.setattr(builtins, "exec", refuse)
    monkeypatch.setattr(builtins, "compile", ast_only)
    df = pd.DataFrame({"a": [1.0, 2.0], "b": [1.0, 4.0], "region": ["n", "s"]})
    out = DerivedFeatures(["r = log(a / b) + mean(a) by region"]).fit(df).transform(df)
    assert out["r"].notna().all()
    assert parse_feature("x = `monthly income` / 12").inputs == ["monthly income"]


def test_every_derive_step_of_an_ensemble_is_found_and_shuffled_only_inside_the_block():
    """Permutation importance of a derived feature shuffles it in each member's step; monitoring
    reads the values the (first) step computes from raw rows."""
    from sklearn.ensemble import VotingRegressor
    from sklearn.linear_model import LinearRegression
    from sklearn.pipeline import Pipeline

    from dsagent.tools.derived_step import derive_steps, derived_values, shuffled

    rng = np.random.default_rng(0)
    X = pd.DataFrame({"a": rng.uniform(1, 10, 80), "b": rng.uniform(1, 10, 80)})
    y = X.a / X.b

    def member():
        return Pipeline([("derive", DerivedFeatures(["r = a / b"])), ("pick", _Pick(["r"])), ("lr", LinearRegression())])

    model = VotingRegressor([("m1", member()), ("m2", member())]).fit(X, y)
    assert len(derive_steps(model)) == 2 and derive_steps(VotingRegressor([("m", member())])) == []  # unfitted: none
    np.testing.assert_allclose(derived_values(model, X)["r"], X.a / X.b)
    before = model.predict(X)
    with shuffled(model, "r", rng.permutation(len(X))):
        assert np.abs(model.predict(X) - before).mean() > 0.1
    np.testing.assert_allclose(model.predict(X), before)  # restored
    assert list(derived_values(Pipeline([("lr", LinearRegression())]), X).columns) == []


class _Pick:
    """Selects columns by name (a stand-in for the preprocessing, which selects by name too)."""

    def __init__(self, cols):
        self.cols = cols

    def fit(self, X, y=None):
        return self

    def transform(self, X):
        return X[self.cols].to_numpy()
