"""Automatic candidate features (tools/candidates.py, engineer_features(auto=True)): proposed from
the training rows, each kept only when CV on the training folds improves beyond its standard
error, reported kept and dropped, re-created by the notebook; off by `auto_features: false`."""

from __future__ import annotations

import numpy as np
import pandas as pd

from dsagent.backends.autopilot import candidate_share
from dsagent.tools.candidates import propose
from dsagent.tools.derived import check_features


def test_candidates_are_bounded_related_and_valid_in_the_language():
    rng = np.random.default_rng(0)
    n = 300
    df = pd.DataFrame({"monthly_charges": rng.uniform(20, 100, n), "total_charges": rng.uniform(100, 5000, n),
                       "tenure": rng.integers(0, 70, n).astype(float), "signed": rng.normal(size=n),
                       "city name": rng.choice([f"c{i}" for i in range(40)], n), "plan": rng.choice(["a", "b"], n),
                       "income": rng.lognormal(0, 1.5, n)})
    kinds = {"monthly_charges": "numeric", "total_charges": "numeric", "tenure": "numeric", "signed": "numeric",
             "city name": "categorical", "plan": "categorical", "income": "numeric"}
    y = df["total_charges"] / df["monthly_charges"]
    feats = propose(df, kinds, y.to_numpy(), existing=["tenure_x = tenure * 2"])
    assert 0 < len(feats) <= 8
    check_features(feats, list(df.columns) + ["y"], target="y")  # every candidate parses and reads real columns
    exprs = {f.split("=", 1)[1].strip() for f in feats}
    assert "total_charges / monthly_charges" in exprs  # names sharing a word: same unit
    assert "count() by `city name`" in exprs and not any("plan" in e for e in exprs)  # only high-cardinality
    assert not any(e.endswith("/ signed") for e in exprs)  # never divide by a column that is not positive
    assert "log(income)" in exprs  # skewed positive


def test_candidates_are_measured_most_promising_first():
    """The order of measurement (what a time share that runs out drops) follows what each candidate
    could add beyond the columns it reads: the ratio that is the target comes first, a difference
    of a noise column last; a group count of a label that says nothing is not ahead of the ratio."""
    from dsagent.tools.candidates import rank_by_value

    rng = np.random.default_rng(0)
    n = 400
    df = pd.DataFrame({"a": rng.uniform(1, 10, n), "b": rng.uniform(1, 10, n), "noise": rng.normal(size=n),
                       "shop": rng.choice([f"s{i}" for i in range(30)], n)})
    y = (df["a"] / df["b"]).to_numpy()
    ranked = rank_by_value(["noise_minus_b = noise - b", "count_by_shop = count() by shop", "a_per_b = a / b"], df, y,
                           regression=True)
    assert [t.split(" =")[0] for t, _ in ranked][0] == "a_per_b" and ranked[0][1] > 0.3
    assert ranked[-1][1] < 0.1 and all(np.isfinite(v) for _, v in ranked)
    labels = (y > np.median(y)).astype(int)
    assert rank_by_value(["noise_minus_b = noise - b", "a_per_b = a / b"], df, labels, regression=False)[0][0] == "a_per_b = a / b"


def test_candidate_time_share_follows_the_answers_and_the_budget():
    assert candidate_share(100.0, None) == 10.0  # a tenth of the search's time by default
    assert candidate_share(100.0, False) == 0.0  # auto_features: false turns them off
    assert candidate_share(20.0, None) == 0.0  # too little time for one candidate's CV
    assert candidate_share(20.0, True) >= 8.0  # asked for: tried even on a small budget
    assert candidate_share(5000.0, None) == 60.0
    # On a search that runs on a sample of the training rows the final fit is cut to the time left:
    # by default no share there (it would come out of the shipped model), unless asked for.
    assert candidate_share(100.0, None, subsampled=True) == 0.0
    assert candidate_share(100.0, True, subsampled=True) == 10.0
    assert candidate_share(100.0, None, subsampled=False) == 10.0

# The run through the real CLI: tests/test_derived_cli.py::test_automatic_candidates_are_kept_when_they_help_and_reported
# (it shares that module's concurrent runs on the same data).


def test_wide_selection_decides_on_the_rows_it_is_fitted_on():
    """Near-constant and correlated columns, and with importance on the noise columns, are
    neutralised (set constant, names kept); rows it was not fitted on never change the decision."""
    from dsagent.tools.select_step import WideSelection, is_wide

    rng = np.random.default_rng(0)
    n = 400
    X = pd.DataFrame(rng.normal(size=(n, 30)), columns=[f"x{i}" for i in range(30)])
    X["near"] = X["x0"] * 3 + rng.normal(0, 1e-3, n)
    X["flat"] = np.where(np.arange(n) == 0, 1.0, 0.0)
    X["city"] = "a"  # not numeric: never touched
    y = (X["x0"] + X["x1"] > 0).astype(int).to_numpy()
    cols = [c for c in X.columns if c != "city"]
    step = WideSelection(cols).fit(X.iloc[:300], y[:300])
    assert step.dropped_ == {"near": "correlated with x0", "flat": "near-constant"}
    out = step.transform(X.iloc[300:])
    assert list(out.columns) == list(X.columns) and (out["near"] == 0).all() and out["x5"].equals(X["x5"].iloc[300:])
    poisoned = X.copy()
    poisoned.iloc[300:, :30] = 1e6  # rows outside the fit
    assert WideSelection(cols).fit(poisoned.iloc[:300], y[:300]).dropped_ == step.dropped_
    pruned = WideSelection(cols, importance=True).fit(X.iloc[:300], y[:300]).dropped_
    assert "x0" not in pruned and "x1" not in pruned and sum(v == "low importance" for v in pruned.values()) >= 5
    assert is_wide(101, 100_000) and is_wide(40, 300) and not is_wide(20, 1000) and not is_wide(8, 50)


def test_columns_named_like_functions_or_keywords_are_backquoted():
    """A column named like a function (`min`) or a keyword (`class`) is backquoted: an unquoted
    `year` made the whole engineer_features step fail on penguins."""
    rng = np.random.default_rng(0)
    df = pd.DataFrame({"year": rng.integers(2007, 2010, 200).astype(float), "mass": rng.uniform(3000, 6000, 200),
                       "class": rng.uniform(2000, 2010, 200), "by": rng.uniform(1000, 3000, 200),
                       "min": rng.uniform(1000, 3000, 200)})
    feats = propose(df, {c: "numeric" for c in df.columns})
    assert feats and any("`class`" in f for f in feats) and any("`by`" in f for f in feats) and any("`min`" in f for f in feats)
    check_features(feats, list(df.columns))
    assert not any("year" in f for f in feats)  # a calendar year is not a measurement to divide by


def test_a_screened_candidate_stays_only_when_a_second_sample_confirms_it():
    """engineer_features' confirmation step with stand-in CV: `good` helps on both samples, `lucky`
    helped on the screening folds only (dropped), `late` is not confirmed in time (dropped)."""
    from dsagent.tools.cv import OutOfTime
    from dsagent.tools.engineer import _confirm

    texts = {n: f"{n} = a / b" for n in ("good", "lucky", "late")}
    rows = [{"name": n, "kept": True, "source": "auto"} for n in texts] + [{"name": "mine", "kept": True, "source": "declared"}]

    def folds(features, on):  # rmse per fold (lower is better): each confirmed feature lowers it clearly
        names = {f.split("=")[0].strip() for f in features}
        if "late" in names:
            raise OutOfTime("no time", 1.0)
        return np.array([1.0, 1.1, 0.9]) - 0.3 * ("good" in names) + np.array([0.01, -0.01, 0.0]) * ("lucky" in names)

    def measured(name, text, before, after, source, keep_all):
        gain = -(after - before)
        se = float(np.std(gain, ddof=1) / np.sqrt(len(gain)))
        return {"cv_change": float((after - before).mean()), "se": se, "helps": bool(gain.mean() > se)}

    kept = _confirm(["mine = a * 2"] + list(texts.values()), rows, folds, None, measured)
    assert kept == ["mine = a * 2", texts["good"]]
    by = {r["name"]: r for r in rows}
    assert by["good"]["kept"] and by["good"]["confirmation"]["helps"]
    assert not by["lucky"]["kept"] and not by["lucky"]["confirmation"]["helps"]
    assert not by["late"]["kept"] and by["late"]["confirmation"] == "not reached in time"
    assert by["mine"]["kept"] and "confirmation" not in by["mine"]  # declared features are not screened
