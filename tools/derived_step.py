"""DerivedFeatures: the Pipeline step that computes derived features (tools/derived.py) from raw rows.

It sits in front of the preprocessing, so cross-validation fits it per fold, the final model fits
it on the training split, and `dsagent predict`, the notebook and the saved model compute the
features from raw columns. What it learns (group aggregates) is learned in `fit` from the rows it
is fitted on, and kept as plain dicts, lists, strings and floats: skops rebuilds it without
trusting anything but this class (tools/model_io.py). The expressions are kept as text and parsed
again when needed; no callable is ever stored.

- `mean(x) by g`: the per-group statistic over the fitted rows; a group not seen in fit gets the
  statistic over all fitted rows (0 for count and sum).
- `mean(x) by g over 90 days`: for a row at time t, the group's fitted rows with time in
  [t - 90 days, t), strictly before t: a row never reads itself, its own time, or the future. No
  such row: 0 for count and sum, missing otherwise (the imputer fills it).
"""

from __future__ import annotations

import ast
import warnings
from contextlib import contextmanager
from typing import Any

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, TransformerMixin

from dsagent.tools.derived import ZERO_WHEN_EMPTY, Parsed, parse_feature, window_seconds
from dsagent.tools.timestamps import parse_times

# The language's date functions -> pandas' datetime accessor (is_month_end is a flag: 1.0 / 0.0).
DATE_PARTS = {"year": "year", "quarter": "quarter", "month": "month", "day": "day", "dayofweek": "day_of_week",
              "hour": "hour", "is_month_end": "is_month_end"}
MISSING_KEY = "\x00missing"  # a missing group value is a group of its own


def group_keys(values: pd.Series) -> np.ndarray:
    keys = values.astype(str).to_numpy(dtype=object)
    keys[values.isna().to_numpy()] = MISSING_KEY
    return keys


def epoch_seconds(values: pd.Series) -> np.ndarray:
    """Times as float seconds since 1970 (NaN when missing or unreadable)."""
    ts = parse_times(values)
    out = (ts - pd.Timestamp("1970-01-01")).dt.total_seconds().to_numpy(dtype=float)
    return out


def _stat(fn: str, values: np.ndarray) -> float:
    values = values[~np.isnan(values)] if fn != "count" else values
    if fn == "count":
        return float(len(values))
    if len(values) == 0:
        return 0.0 if fn == "sum" else float("nan")
    if fn == "std":
        return float(np.std(values, ddof=1)) if len(values) > 1 else 0.0
    return float({"mean": np.mean, "median": np.median, "min": np.min, "max": np.max, "sum": np.sum}[fn](values))


def _positions(groups: np.ndarray, positions: np.ndarray | None = None) -> dict[str, np.ndarray]:
    """Group key -> the positions of its rows (in one pass: no scan of all rows per group)."""
    found = pd.Series(np.arange(len(groups))).groupby(groups, sort=False).indices
    return {g: (idx if positions is None else positions[idx]) for g, idx in found.items()}


class Evaluator:
    """Evaluates one parsed expression on a DataFrame, element-wise, as float arrays."""

    def __init__(self, frame: pd.DataFrame, tables: dict[str, Any] | None, prefix: str, time_column: str | None):
        self.frame, self.tables, self.prefix, self.time_column = frame, tables, prefix, time_column
        self.n = len(frame)

    def num(self, value: Any) -> np.ndarray:
        if isinstance(value, pd.Series):
            if pd.api.types.is_bool_dtype(value):
                return value.astype(float).to_numpy()
            return pd.to_numeric(value, errors="coerce").to_numpy(dtype=float)
        return np.asarray(value, dtype=float)

    def raw(self, node: ast.expr) -> Any:
        """A column as its pandas Series (for dates and strings); anything else as numbers."""
        if isinstance(node, ast.Name):
            return self.frame[node.column]  # type: ignore[attr-defined]
        if isinstance(node, ast.Constant) and isinstance(node.value, str):
            return node.value
        return self.value(node)

    def value(self, node: ast.expr) -> np.ndarray:
        with np.errstate(all="ignore"), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            out = self._value(node)
        out = np.broadcast_to(np.asarray(out, dtype=float), (self.n,)).copy()
        out[~np.isfinite(out)] = np.nan  # division by zero, overflow: missing, for the imputer
        return out

    def _value(self, node: ast.expr) -> Any:
        if isinstance(node, ast.Name):
            return self.num(self.frame[node.column])  # type: ignore[attr-defined]
        if isinstance(node, ast.Constant):
            if isinstance(node.value, str):
                raise ValueError(f"the text {node.value!r} is used as a number")
            return np.float64(node.value)  # floats, never Python ints: 10 ** 10 ** 10 overflows instead of hanging
        if isinstance(node, ast.BinOp):
            a, b = self.value(node.left), self.value(node.right)
            ops = {ast.Add: np.add, ast.Sub: np.subtract, ast.Mult: np.multiply, ast.Div: np.divide,
                   ast.FloorDiv: np.floor_divide, ast.Mod: np.mod, ast.Pow: np.power}
            return ops[type(node.op)](a, b)
        if isinstance(node, ast.UnaryOp):
            v = self.value(node.operand)
            if isinstance(node.op, ast.Not):
                return np.where(np.isnan(v), np.nan, (v == 0).astype(float))
            return -v if isinstance(node.op, ast.USub) else v
        if isinstance(node, ast.BoolOp):
            vals = [self.value(v) for v in node.values]
            truth = [np.nan_to_num(v) != 0 for v in vals]
            combined = np.logical_and.reduce(truth) if isinstance(node.op, ast.And) else np.logical_or.reduce(truth)
            return combined.astype(float)
        if isinstance(node, ast.Compare):
            return self.compare(node)
        if isinstance(node, ast.Call):
            return self.call(node)
        raise ValueError(f"unsupported node {type(node).__name__}")  # unreachable after the checker

    def compare(self, node: ast.Compare) -> np.ndarray:
        ops = {ast.Eq: np.equal, ast.NotEq: np.not_equal, ast.Lt: np.less, ast.LtE: np.less_equal,
               ast.Gt: np.greater, ast.GtE: np.greater_equal}
        result = np.ones(self.n, dtype=bool)
        left = node.left
        for op, right in zip(node.ops, node.comparators):
            texts = [isinstance(x, ast.Constant) and isinstance(x.value, str) for x in (left, right)]
            if any(texts):  # a column against a text: compare as text (missing is never equal)
                a, b = (self.raw(x) for x in (left, right))
                a = a.astype(str).where(a.notna(), None).to_numpy(dtype=object) if isinstance(a, pd.Series) else a
                b = b.astype(str).where(b.notna(), None).to_numpy(dtype=object) if isinstance(b, pd.Series) else b
                if not isinstance(node.ops[0], (ast.Eq, ast.NotEq)):
                    raise ValueError("text is compared with == or != only")
                result &= np.asarray(ops[type(op)](a, b), dtype=bool)
            else:
                result &= ops[type(op)](self.value(left), self.value(right))
            left = right
        return result.astype(float)

    def call(self, node: ast.Call) -> Any:
        fn = node.func.id  # type: ignore[attr-defined]
        if hasattr(node, "aggregate"):
            return self.aggregate(node)
        args = node.args
        if fn in ("log", "sqrt", "abs"):
            v = self.value(args[0])
            if fn == "abs":
                return np.abs(v)
            return np.where(v > 0, np.log(v), np.nan) if fn == "log" else np.where(v >= 0, np.sqrt(v), np.nan)
        if fn == "clip":
            v, lo, hi = (self.value(a) for a in args)
            return np.minimum(np.maximum(v, lo), hi)
        if fn == "where":
            cond, a, b = (self.value(a) for a in args)
            return np.where(np.isnan(cond), np.nan, np.where(cond != 0, a, b))
        if fn in DATE_PARTS:
            ts = parse_times(self.raw(args[0]))
            part = np.asarray(getattr(ts.dt, DATE_PARTS[fn]), dtype=float)
            return np.where(ts.isna().to_numpy(), np.nan, part)  # a missing date is missing (is_month_end would say 0)
        if fn == "days_between":
            a, b = (epoch_seconds(pd.Series(self.raw(x), index=self.frame.index)) for x in args)
            return (b - a) / 86400.0
        if fn in ("length", "contains"):
            text = self.raw(args[0])
            text = text if isinstance(text, pd.Series) else pd.Series(np.broadcast_to(text, (self.n,)), index=self.frame.index)
            s = text.astype(str)
            v = s.str.len().astype(float) if fn == "length" else s.str.contains(args[1].value, regex=False).astype(float)  # type: ignore[attr-defined]
            return v.where(text.notna()).to_numpy(dtype=float)
        raise ValueError(f"unsupported function {fn}")  # unreachable after the checker

    # -- group aggregates ----------------------------------------------------------------
    def _parts(self, node: ast.Call) -> tuple[str, np.ndarray, np.ndarray, float | None]:
        """(statistic, group keys, values, window seconds or None) of an aggregate on this frame."""
        fn = node.func.id  # type: ignore[attr-defined]
        keys = {k.arg: k.value for k in node.keywords}
        groups = group_keys(self.frame[keys["by"].column])  # type: ignore[attr-defined]
        values = np.ones(self.n) if fn == "count" else self.value(node.args[0])
        window = window_seconds(keys["over"].value) if "over" in keys else None  # type: ignore[attr-defined]
        return fn, groups, values, window

    def learn(self, node: ast.Call) -> dict[str, Any]:
        """What the aggregate needs from the fitted rows, as plain data."""
        fn, groups, values, window = self._parts(node)
        if window is None:
            by = pd.Series(values).groupby(groups, sort=False)
            stats = by.size() if fn == "count" else by.agg(fn)
            if fn == "std":
                stats = stats.fillna(0.0)  # one row: no spread
            table = {str(g): float(v) for g, v in stats.items()}
            default = 0.0 if fn in ZERO_WHEN_EMPTY else _stat(fn, values)
            return {"table": table, "default": default}
        times = epoch_seconds(self.frame[self.time_column])
        ok = ~np.isnan(times) & (~np.isnan(values) if fn != "count" else True)
        history: dict[str, list[list[float]]] = {}
        for g, rows in _positions(groups[ok]).items():
            t, v = times[ok][rows], values[ok][rows]
            order = np.argsort(t, kind="stable")
            history[str(g)] = [t[order].tolist(), v[order].tolist()]
        return {"history": history, "window": window}

    def aggregate(self, node: ast.Call) -> np.ndarray:
        fitted = (self.tables or {})[f"{self.prefix}#{node.aggregate}"]  # type: ignore[attr-defined]
        fn, groups, _, window = self._parts(node)
        if window is None:
            table, default = fitted["table"], fitted["default"]
            return pd.Series(groups, dtype=object).map(table).fillna(default).to_numpy(dtype=float)
        times = epoch_seconds(self.frame[self.time_column])
        empty = 0.0 if fn in ZERO_WHEN_EMPTY else np.nan
        out = np.full(self.n, empty)
        known = ~np.isnan(times)
        for g, rows in _positions(groups[known], np.flatnonzero(known)).items():
            if g not in fitted["history"]:
                continue
            h_times, h_values = (np.asarray(v, dtype=float) for v in fitted["history"][g])
            # [t - window, t): searchsorted "left" at t excludes every history row at the row's own time.
            lo = np.searchsorted(h_times, times[rows] - window, side="left")
            hi = np.searchsorted(h_times, times[rows], side="left")
            for r, a, b in zip(rows, lo, hi):
                if b > a:
                    out[r] = _stat(fn, h_values[a:b])
        return out


class DerivedFeatures(TransformerMixin, BaseEstimator):
    """Appends the derived features (`name = expression` strings) to a DataFrame of raw columns.

    `time_column` is the column windowed aggregates (`over 90 days`) read time from."""

    def __init__(self, features: list[str] | tuple[str, ...] = (), time_column: str | None = None):
        self.features = features
        self.time_column = time_column

    def _parsed(self) -> list[Parsed]:
        return [parse_feature(f) for f in self.features]

    def fit(self, X: pd.DataFrame, y=None):
        frame = self._frame(X)
        self.input_columns_ = [str(c) for c in frame.columns]
        self.n_features_in_ = len(self.input_columns_)
        tables: dict[str, Any] = {}
        for p in self._parsed():
            ev = Evaluator(frame, None, p.name, self.time_column)
            for i, node in enumerate(p.aggregates):
                tables[f"{p.name}#{i}"] = ev.learn(node)
        self.tables_ = tables
        return self

    def transform(self, X: pd.DataFrame) -> pd.DataFrame:
        frame = self._frame(X)
        out = frame.copy()
        shuffle = getattr(self, "_shuffle", None)  # set only inside `shuffled`, for permutation importance
        for p in self._parsed():
            out[p.name] = Evaluator(frame, self.tables_, p.name, self.time_column).value(p.tree)
            if shuffle is not None and shuffle[0] == p.name and len(shuffle[1]) == len(out):
                out[p.name] = out[p.name].to_numpy()[shuffle[1]]
        return out

    @staticmethod
    def _frame(X: Any) -> pd.DataFrame:
        if not hasattr(X, "columns"):
            raise ValueError("DerivedFeatures needs a DataFrame with the raw column names")
        return X

    def get_feature_names_out(self, input_features=None):
        names = list(input_features) if input_features is not None else list(self.input_columns_)
        return np.asarray(names + [p.name for p in self._parsed()], dtype=object)


def derive_steps(model: Any, depth: int = 0) -> list[DerivedFeatures]:
    """The fitted DerivedFeatures inside a model: a Pipeline's, or each member Pipeline's of an
    ensemble, stack or bag (a bag's members were fitted on different folds, so their group
    statistics can differ a little)."""
    if isinstance(model, DerivedFeatures):
        return [model] if hasattr(model, "tables_") else []
    if depth > 8 or not isinstance(model, BaseEstimator):
        return []
    found: list[DerivedFeatures] = []
    for part in _estimators_in(list(vars(model).values())):
        found += [s for s in derive_steps(part, depth + 1) if all(s is not f for f in found)]
    return found


@contextmanager
def shuffled(model: Any, name: str, order: np.ndarray):
    """Within the block, every derive step of the model permutes feature `name` of a frame of
    len(order) rows by `order`: the permutation importance of a feature no raw column holds."""
    steps = derive_steps(model)
    for step in steps:
        step._shuffle = (name, order)
    try:
        yield
    finally:
        for step in steps:
            del step._shuffle


def _estimators_in(values: list) -> list:
    """The estimators among attribute values: direct, or inside lists, (name, step) tuples and dicts."""
    out = []
    for v in values:
        if isinstance(v, BaseEstimator):
            out.append(v)
        elif isinstance(v, (list, tuple)):
            out += _estimators_in(list(v))
        elif isinstance(v, dict):
            out += _estimators_in(list(v.values()))
    return out


def derived_values(model: Any, X: pd.DataFrame) -> pd.DataFrame:
    """The derived feature columns the model computes for the raw rows X (its first step's; no
    column without a step): what monitoring compares with the training rows' values."""
    steps = derive_steps(model)
    if not steps:
        return pd.DataFrame(index=X.index)
    step = steps[0]
    names = [p.name for p in step._parsed()]
    return step.transform(X)[names]
