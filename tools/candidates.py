"""Automatic candidate features: a small, bounded set of generic derived features proposed from
the task's columns, written in the language of tools/derived.py so they travel with the model
exactly like declared ones (Pipeline step, `dsagent predict`, the notebook).

Only the training rows are looked at (the caller passes them); nothing here reads the target's
values except to order numeric columns by how strongly they relate to it, which decides only
which few pairs are tried, never whether one is kept: engineer_features keeps a candidate only
when cross-validation on the training folds improves beyond its standard error.

What is proposed, in the order it is measured (the most promising kinds first, so a time budget
that runs out drops the least promising):
  - ratios and differences of related numeric columns: names sharing a word (total_charges,
    monthly_charges) or values on the same scale (medians within 10x), the divisor strictly
    positive on every training row;
  - counts of a high-cardinality category (frequency encoding: `count() by c`) and the mean of
    the strongest numeric column within it (`mean(x) by c`), both target-free;
  - days between two date columns (one date column is already split into parts by the
    preprocessing, so its parts are not proposed again);
  - log of a strongly right-skewed positive column (helps linear models; trees rarely care).

With a time-ordered split, calendar features of the time column (`calendar`) are measured first:
the time column orders the split and is not a feature itself, so its seasonality reaches the
models only through them.
"""

from __future__ import annotations

import keyword
import re
from typing import Any

import numpy as np
import pandas as pd

from dsagent.tools.derived import AGGREGATES, ROW_FUNCTIONS, DerivedError, parse_feature
from dsagent.tools.timestamps import parse_times

RESERVED = set(ROW_FUNCTIONS) | AGGREGATES | {"by", "over"}
MAX_CANDIDATES = 8
MAX_NUMERIC = 6  # numeric columns considered for pairs (the ones most related to the target)
HIGH_CARDINALITY = 10  # distinct values above which a category's count is informative
SKEW = 2.0


def propose(frame: pd.DataFrame, kinds: dict[str, str], y: np.ndarray | None = None,
            existing: list[str] | None = None, limit: int = MAX_CANDIDATES) -> list[str]:
    """Candidate `name = expression` strings for the training rows `frame` (raw columns) whose
    feature kinds are `kinds`; names never clash with a column or an `existing` feature."""
    kinds = {c: k for c, k in kinds.items() if "`" not in str(c)}  # a backquote cannot be quoted in the language
    taken = {str(c) for c in frame.columns} | {e.split("=", 1)[0].strip() for e in existing or []}
    seen_expr = {e.split("=", 1)[1].strip() for e in existing or [] if "=" in e}
    numeric = _ranked_numeric(frame, [c for c, k in kinds.items() if k == "numeric" and c in frame], y)
    categories = [c for c, k in kinds.items() if k == "categorical" and c in frame
                  and frame[c].nunique(dropna=True) > HIGH_CARDINALITY]
    dates = [c for c, k in kinds.items() if k == "datetime" and c in frame]
    out: list[str] = []

    def add(name: str, expr: str) -> None:
        name = _name(name, taken)
        if expr in seen_expr or len(out) >= limit:
            return
        try:  # a column name the language cannot spell is skipped, never an error for the whole step
            parse_feature(f"{name} = {expr}")
        except DerivedError:
            return
        out.append(f"{name} = {expr}")
        taken.add(name)
        seen_expr.add(expr)

    for a, b in _related_pairs(frame, numeric):
        if (frame[b].dropna() > 0).all() and frame[b].notna().any():
            add(f"{a}_per_{b}", f"{_q(a)} / {_q(b)}")
        add(f"{a}_minus_{b}", f"{_q(a)} - {_q(b)}")
    for c in categories[:2]:
        add(f"count_by_{c}", f"count() by {_q(c)}")
        if numeric:
            add(f"mean_{numeric[0]}_by_{c}", f"mean({_q(numeric[0])}) by {_q(c)}")
    if len(dates) >= 2:
        add(f"days_{dates[0]}_to_{dates[1]}", f"days_between({_q(dates[0])}, {_q(dates[1])})")
    for c in numeric:
        v = frame[c].dropna().astype(float)
        if len(v) > 2 and (v > 0).all() and float(v.skew()) > SKEW:
            add(f"log_{c}", f"log({_q(c)})")
            break
    return out


def calendar(times: pd.Series, time_column: str, existing: list[str] | None = None) -> list[str]:
    """Calendar features of the time column that orders a tabular task (time-ordered split), each a
    derived feature of the row's own timestamp (known whenever the row is scored, so leak-free): year,
    quarter and month when the training rows span them; day of the week and month end when the
    timestamps are days or finer; the hour when they carry times of day. `times` are the training rows'."""
    ts = parse_times(times).dropna()
    if ts.empty:
        return []
    taken = {e.split("=", 1)[0].strip() for e in existing or []}
    seen_expr = {e.split("=", 1)[1].strip() for e in existing or [] if "=" in e}
    daily = ts.dt.day.nunique() > 1  # monthly or quarterly stamps all fall on one day of the month
    parts = [("year", ts.dt.year.nunique() > 1), ("quarter", ts.dt.quarter.nunique() > 1),
             ("month", ts.dt.month.nunique() > 1 and (daily or ts.dt.month.nunique() > 4)),
             ("dayofweek", daily), ("is_month_end", daily and bool(ts.dt.is_month_end.any())),
             ("hour", ts.dt.hour.nunique() > 1)]
    out = []
    for fn, useful in parts:
        expr = f"{fn}({_q(time_column)})"
        if useful and expr not in seen_expr:
            name = _name(f"{time_column}_{fn}", taken)
            taken.add(name)
            out.append(f"{name} = {expr}")
    return out


def _ranked_numeric(frame: pd.DataFrame, columns: list[str], y: np.ndarray | None) -> list[str]:
    """Numeric columns (not binary flags) ordered by |Spearman correlation| with the target."""
    cols = [c for c in columns if frame[c].nunique(dropna=True) > 2 and not _calendar_year(frame[c])]
    if y is None or len(cols) <= MAX_NUMERIC:
        return cols[:MAX_NUMERIC] if y is None else _by_strength(frame, cols, y)
    return _by_strength(frame, cols, y)[:MAX_NUMERIC]


def _calendar_year(values: pd.Series) -> bool:
    """Whole numbers between 1800 and 2200: a year, whose ratio or difference with a measurement
    (penguins: body_mass_g / year) means nothing even when the scales match."""
    v = values.dropna().astype(float)
    return len(v) > 0 and bool(((v % 1 == 0) & (v >= 1800) & (v <= 2200)).all())


def _by_strength(frame: pd.DataFrame, cols: list[str], y: np.ndarray) -> list[str]:
    target = pd.Series(np.asarray(y, dtype=float), index=frame.index).rank()
    strength = {c: abs(float(frame[c].astype(float).rank().corr(target))) for c in cols}
    return sorted(cols, key=lambda c: -(strength[c] if np.isfinite(strength[c]) else 0.0))


def _related_pairs(frame: pd.DataFrame, numeric: list[str]) -> list[tuple[str, str]]:
    """Pairs (a, b) of numeric columns the profile suggests share a unit: a word in common in their
    names, or medians on the same scale. Stronger columns first; at most three pairs."""
    pairs: list[tuple[str, str]] = []
    medians = {c: float(frame[c].abs().median()) for c in numeric}
    for i, a in enumerate(numeric):
        for b in numeric[i + 1:]:
            words = _words(a) & _words(b)
            ma, mb = medians[a], medians[b]
            same_scale = ma > 0 and mb > 0 and 0.1 <= ma / mb <= 10
            if words or same_scale:
                pairs.append((a, b))
    return pairs[:3]


def _words(name: str) -> set[str]:
    parts = re.split(r"[^A-Za-z0-9]+|(?<=[a-z])(?=[A-Z])", str(name))
    return {p.lower() for p in parts if len(p) >= 3}


def _q(column: str) -> str:
    """A column as the expression language reads it: backquoted unless it is a plain name that is
    not also a function of the language or a Python keyword (a column named `year` or `class`)."""
    plain = (re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", column) and not column.startswith("__")
             and column not in RESERVED and not keyword.iskeyword(column))
    return column if plain else f"`{column}`"


def _name(raw: str, taken: set[str]) -> str:
    name = re.sub(r"[^A-Za-z0-9_]+", "_", raw).strip("_")[:48] or "feature"
    if not re.match(r"[A-Za-z_]", name):
        name = f"f_{name}"
    name = name.lstrip("_") or "feature"
    base, i = name, 2
    while name in taken:
        name, i = f"{base}_{i}", i + 1
    return name


def candidate_summary(rows: list[dict[str, Any]]) -> dict[str, list[str]]:
    """{"kept": [...], "dropped": [...]} names of the automatic candidates measured."""
    auto = [r for r in rows if r.get("source") in ("auto", "calendar")]
    return {"kept": [r["name"] for r in auto if r["kept"]], "dropped": [r["name"] for r in auto if not r["kept"]]}


VALUE_ROWS = 2000  # rows the expected-value ordering looks at (mutual information is cheap, but not free)


def rank_by_value(candidates: list[str], frame: pd.DataFrame, y: np.ndarray, regression: bool,
                  seed: int = 0) -> list[tuple[str, float]]:
    """The candidates with their expected value, most promising first: the mutual information of
    the feature with the target minus that of the best numeric column it reads (what it could add
    beyond its inputs). Only the order of measurement depends on it, so a time share that runs
    out drops the least promising; whether one is kept is still decided by CV on the training
    folds. Computed on the training rows (at most VALUE_ROWS); group statistics here are
    target-free (counts, means of a feature), so fitting them on these rows leaks nothing."""
    from sklearn.feature_selection import mutual_info_classif, mutual_info_regression

    from dsagent.tools.derived import parse_feature
    from dsagent.tools.derived_step import DerivedFeatures

    if not candidates:
        return []
    if len(frame) > VALUE_ROWS:
        pick = np.sort(np.random.default_rng(seed).choice(len(frame), VALUE_ROWS, replace=False))
        frame, y = frame.iloc[pick], np.asarray(y)[pick]
    mi = mutual_info_regression if regression else mutual_info_classif

    def information(values: pd.Series) -> float:
        v = pd.to_numeric(values, errors="coerce").astype(float).replace([np.inf, -np.inf], np.nan)
        if v.notna().sum() < 10 or v.nunique(dropna=True) < 2:
            return 0.0
        return float(mi(v.fillna(v.median()).to_frame(), y, random_state=seed)[0])

    scored = []
    for text in candidates:
        parsed = parse_feature(text)
        try:
            values = DerivedFeatures([text]).fit(frame).transform(frame)[parsed.name]
        except Exception:  # a candidate that cannot be computed here is measured last, not dropped
            scored.append((text, float("-inf")))
            continue
        inputs = [c for c in parsed.inputs if c in frame and pd.api.types.is_numeric_dtype(frame[c])]
        scored.append((text, information(values) - max((information(frame[c]) for c in inputs), default=0.0)))
    order = sorted(range(len(scored)), key=lambda i: (-scored[i][1], i))  # ties keep the proposal order
    return [scored[i] for i in order]
