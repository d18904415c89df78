"""profile_data: what is in the table, what kind each column is, and what could go wrong.

Also the plain helpers the training tools reuse: `infer_column_kinds(df)`, `infer_task(y)` and
`check_target(df, target)`.

Speed matters (the profile runs on every dataset before anything else): whole-column work is
vectorised numpy/pandas (one sort per numeric column gives unique count, quantiles and IQR
outliers together; above NUMERIC_SAMPLE rows the quantiles come from a sample while counts,
min/max/mean/std stay exact; wide frames are reduced as one 2-D block); the expensive checks
(text and date detection, the single-feature leakage check) look at samples, and the record's
"method" says which.
"""

from __future__ import annotations

import difflib
import json
import math
import os
import re
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np
import pandas as pd

from dsagent.tools.data import DataError, LoadInfo, load_dataset
from dsagent.tools.paths import PROFILE
from dsagent.tools.registry import ToolContext, ToolOutput, artifact_path, tool
from dsagent.tools.text import is_free_text, word_facts

KINDS = ("numeric", "categorical", "boolean", "datetime", "text", "id", "constant")

NUMERIC_SAMPLE = 100_000  # above this many rows, quantiles/skew/outliers come from a sample
BLOCK_MAX_CELLS = 20_000_000  # wide numeric blocks up to this size are profiled in one 2-D pass
TEXT_SAMPLE = 1000  # values looked at to tell text, dates and IDs apart
LEAK_SAMPLE = 10_000  # labelled rows used by the single-feature leakage check
LEAK_EXACT_MAX = 200  # beyond this many numeric columns, a vectorised screen picks which get the exact check
LEAK_THRESHOLD = 0.9  # normalised accuracy (classification) above which a column "nearly predicts" the target
LEAK_THRESHOLD_R2 = 0.95  # R² / squared correlation (regression)
# Above these a suspect is left out of the features by default: the column alone is close to a
# function of the target (a copy with 1% noise scores 0.98), the signature of a post-outcome field.
# Between the two levels a column is a strong real signal as often as a leak, so it is kept and
# flagged: shuttle's sensor columns f1 and f7 score 0.94 on their own; without them every model
# misranked a few test rows (AUC 0.999997 at best), with them dsagent scores 1.0 like plain XGBoost.
LEAK_DROP_THRESHOLD = 0.97
LEAK_DROP_THRESHOLD_R2 = 0.99
MAX_CLASSES_LISTED = 50
MULTICLASS_MAX_INT_LEVELS = 10  # an integer target with at most this many values is read as classes
SUMMARY_CHAR_BUDGET = 5800  # ~1,450 tokens of JSON

_BOOL_WORDS = {
    frozenset({"true", "false"}), frozenset({"yes", "no"}), frozenset({"y", "n"}), frozenset({"t", "f"}),
    frozenset({"0", "1"}), frozenset({"on", "off"}), frozenset({"1.0", "0.0"}), frozenset({"si", "no"}),
}
_ID_NAMES = {"id", "uuid", "guid", "key", "index", "idx", "rowid", "row_id", "row", "record_id", "rownum",
             "row_number", "unnamed_0"}
_ID_SUFFIX = re.compile(r"[_\s.\-](id|uuid|guid|key)$", re.I)
_ID_CAMEL = re.compile(r"(?<=[a-z0-9])(Id|ID|Uuid|UUID)$")
_NUMERIC_TEXT = re.compile(r"^\s*[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?\s*$")
_UUID = re.compile(r"^[0-9a-fA-F]{8}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{12}$")
_DATE_LIKE = re.compile(
    r"^\s*(\d{4}[-/.]\d{1,2}[-/.]\d{1,2}([ T]\d{1,2}:\d{2}(:\d{2}(\.\d+)?)?\s*(Z|[+-]\d{2}:?\d{2})?)?"
    r"|\d{1,2}[-/.]\d{1,2}[-/.]\d{2,4}([ T]\d{1,2}:\d{2}(:\d{2})?)?"
    r"|\d{1,2}[ -](jan|feb|mar|apr|may|jun|jul|aug|sep|oct|nov|dec)[a-z]*[ -]\d{2,4}"
    r"|(jan|feb|mar|apr|may|jun|jul|aug|sep|oct|nov|dec)[a-z]* \d{1,2},? \d{4})\s*$",
    re.I,
)


# ---------------------------------------------------------------------------------------------
# Column facts and kinds


def _looks_like_id_name(name: str) -> bool:
    s = str(name).strip()
    return s.lower() in _ID_NAMES or bool(_ID_SUFFIX.search(s)) or bool(_ID_CAMEL.search(s))


def _numeric_facts(a: np.ndarray, sample_idx: np.ndarray | None = None, n_missing: int | None = None) -> dict[str, Any]:
    """Unique count, min/max, mean/std, quantiles, skew and IQR outliers of one numeric column.

    Small columns: one sort gives everything exactly. Large columns (`sample_idx` given):
    min/max/mean/std stay exact; quantiles, skew and outliers come from the sample; the unique
    count is exact for low-cardinality and integer columns (IDs must be caught) and estimated
    (flagged `n_unique_approx`) only for continuous floats.
    """
    finite = np.isfinite(a)
    n_fin = int(np.count_nonzero(finite))
    all_finite = n_fin == a.size
    if all_finite:
        n_inf = 0
    elif n_missing is not None:
        n_inf = a.size - n_fin - n_missing
    else:
        n_inf = int(np.count_nonzero(np.isinf(a)))
    out: dict[str, Any] = {"n_inf": n_inf}
    if sample_idx is None:
        v = np.sort(a) if all_finite else np.sort(a[finite])
        full_sorted = True
    else:
        vs = a[sample_idx]
        v = np.sort(vs[np.isfinite(vs)])
        full_sorted = False
    n = v.size
    if n == 0:
        out.update(n_unique=0)
        return out
    n_unique_v = 1 + int(np.count_nonzero(v[1:] != v[:-1])) if n > 1 else 1

    def q(p: float) -> float:
        pos = p * (n - 1)
        lo = int(math.floor(pos))
        hi = min(lo + 1, n - 1)
        return float(v[lo] + (v[hi] - v[lo]) * (pos - lo))

    q1, med, q3 = q(0.25), q(0.5), q(0.75)
    vm = float(v.mean())
    d = v - vm
    d2 = d * d
    m2 = float(d2.mean())
    skew = float((d2 * d).sum() / n / m2**1.5) if m2 > 0 else 0.0
    iqr = q3 - q1
    outlier_frac = None
    if iqr > 0:
        lo_b, hi_b = q1 - 1.5 * iqr, q3 + 1.5 * iqr
        outlier_frac = int(np.searchsorted(v, lo_b, "left") + (n - np.searchsorted(v, hi_b, "right"))) / n
    step = max(1, n // 2000)
    integer = bool(np.all(v[::step] == np.floor(v[::step]))) and bool(np.all(v == np.floor(v)))
    if full_sorted:
        n_unique, approx = n_unique_v, False
        vmin, vmax, mean = float(v[0]), float(v[-1]), vm
        std = math.sqrt(m2 * n / (n - 1)) if n > 1 else 0.0
        low_card_values = v
    else:
        fa = a if all_finite else a[finite]
        vmin, vmax = float(fa.min()), float(fa.max())
        mean = float(fa.sum()) / n_fin
        # One pass for the variance, shifted by the sample mean against cancellation.
        shift = vm
        ss = float(np.square(fa).sum()) - 2 * shift * float(fa.sum()) + n_fin * shift * shift
        var = max(0.0, (ss - n_fin * (mean - shift) ** 2) / (n_fin - 1)) if n_fin > 1 else 0.0
        std = math.sqrt(var)
        if integer:
            integer = bool(np.all(fa == np.floor(fa)))
        approx = False
        low_card_values = None
        if n_unique_v <= 1000:
            uniq = pd.unique(fa)
            n_unique = int(uniq.size)
            if n_unique <= 20:
                low_card_values = np.sort(fa)
        elif integer:
            sf = np.sort(fa)
            n_unique = 1 + int(np.count_nonzero(sf[1:] != sf[:-1]))
        else:
            n_unique = max(n_unique_v, int(round(n_unique_v / n * n_fin)))
            approx = True
    out.update(
        n_unique=n_unique, min=vmin, max=vmax, mean=mean, std=std, q1=q1, median=med, q3=q3,
        skew=skew, outlier_frac=outlier_frac, integer_valued=integer,
    )
    if approx:
        out["n_unique_approx"] = True
    if n_unique <= 20 and low_card_values is not None:
        lv = low_card_values
        starts = np.flatnonzero(np.r_[True, lv[1:] != lv[:-1]])
        counts = np.diff(np.r_[starts, lv.size])
        order = np.argsort(-counts, kind="stable")[:5]
        out["top_values"] = [[_py(lv[starts[i]]), int(counts[i])] for i in order]
        out["_values"] = [float(lv[s]) for s in starts]
    return out


def _numeric_block_facts(X: np.ndarray, missing: np.ndarray) -> list[dict[str, Any]]:
    """`_numeric_facts` for every column of a 2-D block at once (exact; used for wide frames)."""
    n, p = X.shape
    isinf = np.isinf(X)
    n_inf = isinf.sum(0)
    if n_inf.any():
        X = np.where(isinf, np.nan, X)
    nan = np.isnan(X)
    cnt = n - nan.sum(0)
    S = np.sort(X, axis=0)  # NaN last
    cols = np.arange(p)
    diff = (S[1:] != S[:-1]) & ~np.isnan(S[1:])
    n_unique = np.where(cnt > 0, diff.sum(0) + 1, 0)
    last = np.maximum(cnt - 1, 0)

    def q(frac: float) -> np.ndarray:
        pos = frac * last
        lo = np.floor(pos).astype(int)
        hi = np.minimum(lo + 1, last)
        return S[lo, cols] + (S[hi, cols] - S[lo, cols]) * (pos - lo)

    with np.errstate(invalid="ignore", divide="ignore"):
        q1, med, q3 = q(0.25), q(0.5), q(0.75)
        mean = np.nansum(X, 0) / np.maximum(cnt, 1)
        D = np.where(nan, 0.0, X - mean)
        m2 = (D * D).sum(0) / np.maximum(cnt, 1)
        m3 = (D * D * D).sum(0) / np.maximum(cnt, 1)
        std = np.sqrt(m2 * cnt / np.maximum(cnt - 1, 1))
        skew = np.where(m2 > 0, m3 / m2**1.5, 0.0)
        iqr = q3 - q1
        lo_b, hi_b = q1 - 1.5 * iqr, q3 + 1.5 * iqr
        n_out = ((X < lo_b) | (X > hi_b)).sum(0)
        outlier = np.where(iqr > 0, n_out / np.maximum(cnt, 1), np.nan)
        integer = ((X == np.floor(X)) | nan).all(0)
    vmin = S[0]
    vmax = S[last, cols]
    out = []
    for j in range(p):
        if cnt[j] == 0:
            out.append({"n_inf": int(n_inf[j]), "n_unique": 0})
            continue
        f = {
            "n_inf": int(n_inf[j]), "n_unique": int(n_unique[j]), "min": float(vmin[j]), "max": float(vmax[j]),
            "mean": float(mean[j]), "std": float(std[j]), "q1": float(q1[j]), "median": float(med[j]),
            "q3": float(q3[j]), "skew": float(skew[j]),
            "outlier_frac": None if np.isnan(outlier[j]) else float(outlier[j]), "integer_valued": bool(integer[j]),
        }
        if n_unique[j] <= 20:
            v = S[: cnt[j], j]
            starts = np.flatnonzero(np.concatenate(([True], v[1:] != v[:-1])))
            counts = np.diff(np.append(starts, v.size))
            order = np.argsort(-counts, kind="stable")[:5]
            f["top_values"] = [[_py(v[starts[i]]), int(counts[i])] for i in order]
            f["_values"] = [float(v[s]) for s in starts]
        out.append(f)
    return out


def _sample_values(s: pd.Series, rng: np.random.Generator, k: int = TEXT_SAMPLE) -> list[str]:
    n = len(s)
    if n == 0:
        return []
    if n > 3 * k:
        vals = s.iloc[np.sort(rng.choice(n, size=3 * k, replace=False))].dropna()
    else:
        vals = s.dropna()
    return [str(x) for x in vals.iloc[:k].tolist()]


def _string_facts(s: pd.Series, rng: np.random.Generator) -> dict[str, Any]:
    vc = s.value_counts(dropna=True, sort=True)
    if isinstance(s.dtype, pd.CategoricalDtype):
        vc = vc[vc > 0]
    out: dict[str, Any] = {"n_unique": int(len(vc))}
    out["top_values"] = [[_short(k), int(v)] for k, v in vc.iloc[:5].items()]
    sample = _sample_values(s, rng)
    if sample:
        lens = [len(x) for x in sample]
        words = [len(x.split()) for x in sample]
        out["avg_len"] = float(np.mean(lens))
        out["avg_words"] = float(np.mean(words))
        out["max_len"] = int(max(lens))
        date_hits = sum(1 for x in sample if _DATE_LIKE.match(x))
        if date_hits >= 0.9 * len(sample):
            parsed = pd.to_datetime(pd.Series(sample), errors="coerce", format="mixed")
            if parsed.notna().mean() >= 0.9:
                out["datetime_parse"] = True
                out["min"] = str(parsed.min())
                out["max"] = str(parsed.max())
        out.update(word_facts(sample))
        out["numeric_frac"] = sum(1 for x in sample if _NUMERIC_TEXT.match(x)) / len(sample)
        out["uuid_frac"] = sum(1 for x in sample[:200] if _UUID.match(x)) / min(len(sample), 200)
    if len(vc) == 2:
        out["_values"] = [str(k) for k in vc.index]
    return out


def _column_facts(df: pd.DataFrame, seed: int = 0) -> list[dict[str, Any]]:
    n = len(df)
    rng = np.random.default_rng(seed)
    # Column-wise reductions cost per column: on wide frames reduce one 2-D array instead.
    missing = df.isna().to_numpy().sum(0) if df.shape[1] > 200 else df.isna().sum().to_numpy()
    cols = list(df.columns)
    dtypes = list(df.dtypes)
    facts: list[dict[str, Any]] = []
    numeric_jobs: list[tuple[int, np.ndarray]] = []
    plain_numeric: list[int] = []
    for i, (c, dt) in enumerate(zip(cols, dtypes)):
        f: dict[str, Any] = {"name": str(c), "dtype": str(dt), "n_missing": int(missing[i]),
                             "missing_frac": float(missing[i] / n) if n else 0.0}
        facts.append(f)
        if pd.api.types.is_bool_dtype(dt):
            vc = df.iloc[:, i].value_counts(dropna=True)
            f["n_unique"] = int(len(vc))
            f["top_values"] = [[_py(k), int(v)] for k, v in vc.items()]
            f["_base"] = "bool"
        elif pd.api.types.is_numeric_dtype(dt):
            plain_numeric.append(i)
            f["_base"] = "numeric"
        elif pd.api.types.is_datetime64_any_dtype(dt):
            nn = df.iloc[:, i].dropna()
            f["n_unique"] = int(nn.nunique())
            if len(nn):
                f["min"], f["max"] = str(nn.min()), str(nn.max())
            f["_base"] = "datetime"
        elif pd.api.types.is_timedelta64_dtype(dt):
            a = df.iloc[:, i].dt.total_seconds().to_numpy(dtype="float64", na_value=np.nan)
            numeric_jobs.append((i, a))
            f["_base"] = "numeric"
        else:
            f.update(_string_facts(df.iloc[:, i], rng))
            f["_base"] = "category" if isinstance(dt, pd.CategoricalDtype) else "string"
    if plain_numeric and n <= NUMERIC_SAMPLE and len(plain_numeric) >= 50 and n * len(plain_numeric) <= BLOCK_MAX_CELLS:
        # Wide and not too long: one 2-D pass instead of thousands of small per-column calls.
        X = df.iloc[:, plain_numeric].to_numpy(dtype="float64", na_value=np.nan)
        for i, r in zip(plain_numeric, _numeric_block_facts(X, missing[plain_numeric])):
            facts[i].update(r)
    else:
        numeric_jobs += [(i, df.iloc[:, i].to_numpy(dtype="float64", na_value=np.nan)) for i in plain_numeric]
    # Sorting releases the GIL: two threads halve the wall time on the 2-core target.
    if numeric_jobs:
        sample_idx = np.sort(rng.choice(n, size=NUMERIC_SAMPLE, replace=False)) if n > NUMERIC_SAMPLE else None
        if n >= 100_000 and len(numeric_jobs) > 1:
            with ThreadPoolExecutor(max_workers=min(4, os.cpu_count() or 1)) as pool:
                results = list(pool.map(lambda job: _numeric_facts(job[1], sample_idx, int(missing[job[0]])),
                                        numeric_jobs))
        else:
            results = [_numeric_facts(a, sample_idx, int(missing[i])) for i, a in numeric_jobs]
        for (i, _), r in zip(numeric_jobs, results):
            facts[i].update(r)
    for f in facts:
        f["kind"] = _kind_of(f, n)
        f["unique_frac"] = (f.get("n_unique", 0) / max(n - f["n_missing"], 1))
    return facts


def _kind_of(f: dict[str, Any], n: int) -> str:
    n_nonnull = n - f["n_missing"]
    n_unique = f.get("n_unique", 0)
    base = f["_base"]
    if n_unique == 0 or (n_unique == 1 and f["n_missing"] == 0):
        return "constant"
    if base == "bool":
        return "boolean"
    if base == "datetime":
        return "datetime"
    name = f["name"]
    if base == "numeric":
        vals = f.get("_values")
        if n_unique == 2 and vals is not None and set(vals) <= {0.0, 1.0}:
            return "boolean"
        if f.get("integer_valued") and n_nonnull >= 20:
            all_unique = n_unique == n_nonnull
            span = f["max"] - f["min"] + 1
            if all_unique and (span <= 1.5 * n_unique or _looks_like_id_name(name)):
                return "id"
            if _looks_like_id_name(name) and n_unique >= 0.5 * n_nonnull:
                return "id"
        return "numeric"
    # strings, objects and categoricals
    vals = f.get("_values")
    if n_unique == 2 and vals is not None and frozenset(v.strip().lower() for v in vals) in _BOOL_WORDS:
        return "boolean"
    if f.get("datetime_parse"):
        return "datetime"
    unique_frac = n_unique / max(n_nonnull, 1)
    if is_free_text(f, unique_frac):
        return "text"
    if n_nonnull >= 20 and (unique_frac >= 0.98 or f.get("uuid_frac", 0) >= 0.9):
        return "id"
    if n_nonnull >= 20 and _looks_like_id_name(name) and unique_frac >= 0.5:
        return "id"
    return "categorical"


def infer_column_kinds(df: pd.DataFrame) -> dict[str, str]:
    """Kind of every column: one of "numeric", "categorical", "boolean", "datetime", "text",
    "id" (ID-like) or "constant". Deterministic; text/date/ID detection looks at a sample."""
    return {f["name"]: f["kind"] for f in _column_facts(df)}


# ---------------------------------------------------------------------------------------------
# Target


def infer_task(y: pd.Series) -> str:
    """"binary" | "multiclass" | "regression" from the labelled values of a target column."""
    yy = y.dropna()
    n_unique = int(yy.nunique())
    if n_unique <= 2:
        return "binary"
    if pd.api.types.is_bool_dtype(yy.dtype):
        return "binary"
    if pd.api.types.is_numeric_dtype(yy.dtype):
        a = yy.to_numpy(dtype="float64")
        a = a[np.isfinite(a)]
        if np.all(a == np.floor(a)) and n_unique <= MULTICLASS_MAX_INT_LEVELS:
            return "multiclass"
        return "regression"
    return "multiclass"


def check_target(df: pd.DataFrame, target: str) -> str:
    """Validate a target column and return its task. Raises DataError (one line) when the
    column is missing, all-missing, constant, single-class or ID-like."""
    cols = [str(c) for c in df.columns]
    if target not in df.columns:
        lower = {c.lower(): c for c in cols}
        close = [lower[target.lower()]] if target.lower() in lower else difflib.get_close_matches(target, cols, n=3, cutoff=0.5)
        hint = f"did you mean {', '.join(repr(c) for c in close)}? " if close else ""
        shown = ", ".join(cols[:12]) + (f", ... ({len(cols)} columns)" if len(cols) > 12 else "")
        raise DataError(f"target column {target!r} not found; {hint}columns are: {shown}")
    y = df[target]
    n_lab = int(y.notna().sum())
    if n_lab == 0:
        raise DataError(f"target column {target!r} is entirely missing (no labelled rows); choose a column with values to predict")
    n_unique = int(y.nunique(dropna=True))
    if n_unique == 1:
        value = _short(y.dropna().iloc[0])
        if pd.api.types.is_numeric_dtype(y.dtype) and not pd.api.types.is_bool_dtype(y.dtype):
            raise DataError(
                f"target column {target!r} is constant (every one of {n_lab} labelled rows is {value!r}); "
                "there is nothing to learn — choose another target"
            )
        raise DataError(
            f"target column {target!r} has a single class ({value!r} in all {n_lab} labelled rows); "
            "a classifier needs at least two classes — add rows of the other classes or choose another target"
        )
    numeric = pd.api.types.is_numeric_dtype(y.dtype) or pd.api.types.is_bool_dtype(y.dtype)
    if not numeric and n_unique == n_lab and n_lab >= 10:
        raise DataError(
            f"target column {target!r} looks like an identifier (all {n_lab} values are unique and non-numeric); "
            "choose the column you want to predict"
        )
    return infer_task(y)


def _target_facts(df: pd.DataFrame, target: str, task: str, answered_task: str | None) -> dict[str, Any]:
    y = df[target]
    n_missing = int(y.isna().sum())
    yy = y.dropna()
    out: dict[str, Any] = {"name": target, "task": answered_task or task, "inferred_task": task,
                           "n_missing": n_missing, "n_labelled": int(len(yy)), "dtype": str(y.dtype),
                           "n_classes": None, "classes": None, "class_counts": None, "minority_frac": None,
                           "skew": None}
    if (answered_task or task) in ("binary", "multiclass"):
        vc = yy.value_counts()
        out["n_classes"] = int(len(vc))
        listed = vc.iloc[:MAX_CLASSES_LISTED]
        out["classes"] = [_py(k) for k in listed.index]
        out["class_counts"] = {str(_py(k)): int(v) for k, v in listed.items()}
        out["minority_frac"] = float(vc.iloc[-1] / len(yy))
        out["majority_frac"] = float(vc.iloc[0] / len(yy))
        out["minority_class"] = _py(vc.index[-1])
        out["smallest_class_count"] = int(vc.iloc[-1])
    if pd.api.types.is_numeric_dtype(yy.dtype) and not pd.api.types.is_bool_dtype(yy.dtype):
        facts = _numeric_facts(yy.to_numpy(dtype="float64"))
        out["skew"] = facts.get("skew")
        if (answered_task or task) == "regression":
            out.update({k: facts.get(k) for k in ("min", "max", "mean", "std", "median", "q1", "q3", "n_unique")})
            out["outlier_frac"] = facts.get("outlier_frac")
    return out


# ---------------------------------------------------------------------------------------------
# Leakage: how well does one column alone predict the target (on held-out rows)?


def _codes_for(x: pd.Series) -> np.ndarray:
    codes, _ = pd.factorize(x, use_na_sentinel=True)
    codes = codes.astype(np.int64)
    codes[codes < 0] = codes.max() + 1 if len(codes) else 0
    return codes


def _score_codes(codes: np.ndarray, y: np.ndarray, tr: np.ndarray, te: np.ndarray, classif: bool, k: int) -> float:
    ncode = int(codes.max()) + 1
    ctr, cte = codes[tr], codes[te]
    if classif:
        counts = np.bincount(ctr * k + y[tr], minlength=ncode * k).reshape(ncode, k)
        majority = int(np.bincount(y[tr], minlength=k).argmax())
        seen = counts.sum(1) > 0
        pred = np.where(seen[cte], counts.argmax(1)[cte], majority)
        return _norm_acc(pred, y[te], majority)
    sums = np.bincount(ctr, weights=y[tr], minlength=ncode)
    cnt = np.bincount(ctr, minlength=ncode)
    mean = np.where(cnt > 0, sums / np.maximum(cnt, 1), y[tr].mean())
    return _r2(y[te], mean[cte])


def _score_nn(x: np.ndarray, y: np.ndarray, tr: np.ndarray, te: np.ndarray, classif: bool, k: int) -> float:
    """1-nearest-neighbour on one numeric feature: near-perfect only for near-deterministic links."""
    xtr, ytr, xte = x[tr], y[tr], x[te]
    ftr = np.isfinite(xtr)
    if ftr.sum() < 2:
        return 0.0
    order = np.argsort(xtr[ftr], kind="stable")
    xs, ys = xtr[ftr][order], ytr[ftr][order]
    fte = np.isfinite(xte)
    pos = np.searchsorted(xs, np.where(fte, xte, 0.0))
    left = np.clip(pos - 1, 0, len(xs) - 1)
    right = np.clip(pos, 0, len(xs) - 1)
    xq = np.where(fte, xte, 0.0)
    choose = np.where(np.abs(xq - xs[left]) < np.abs(xs[right] - xq), left, right)
    pred = ys[choose].astype(float)
    # Missing values form their own group: predicted by the train rows that are missing too.
    if classif:
        majority = int(np.bincount(ytr, minlength=k).argmax())
        miss_tr = ~ftr
        miss_pred = int(np.bincount(ytr[miss_tr], minlength=k).argmax()) if miss_tr.any() else majority
        pred = np.where(fte, pred, miss_pred).astype(np.int64)
        return _norm_acc(pred, y[te], majority)
    miss_tr = ~ftr
    miss_pred = float(ytr[miss_tr].mean()) if miss_tr.any() else float(ytr.mean())
    pred = np.where(fte, pred, miss_pred)
    return _r2(y[te], pred)


def _norm_acc(pred: np.ndarray, truth: np.ndarray, majority: int) -> float:
    acc = float(np.mean(pred == truth))
    base = float(np.mean(truth == majority))
    return 0.0 if base >= 1.0 else max(0.0, (acc - base) / (1.0 - base))


def _r2(truth: np.ndarray, pred: np.ndarray) -> float:
    sst = float(np.sum((truth - truth.mean()) ** 2))
    if sst <= 0:
        return 0.0
    return max(0.0, 1.0 - float(np.sum((truth - pred) ** 2)) / sst)


def _screen_numeric(X: np.ndarray, y: np.ndarray, tr: np.ndarray, te: np.ndarray, classif: bool, k: int,
                    bins: int = 32) -> np.ndarray:
    """Held-out score of every column of X at once: rank-based bins (missing = own bin) -> the
    majority class (or mean) per bin on train rows, scored on test rows."""
    s, p = X.shape
    nan = np.isnan(X)
    order = np.argsort(np.where(nan, np.inf, X), axis=0, kind="stable")
    ranks = np.empty_like(order)
    np.put_along_axis(ranks, order, np.arange(s)[:, None], axis=0)
    cnt = np.maximum((~nan).sum(0), 1)
    codes = np.where(nan, bins, np.minimum((ranks * bins) // cnt, bins - 1))
    nb = bins + 1
    offs = np.arange(p) * nb
    ctr, cte = codes[tr] + offs, codes[te] + offs
    if classif:
        counts = np.bincount((ctr * k + y[tr][:, None]).ravel(), minlength=p * nb * k).reshape(p * nb, k)
        majority = int(np.bincount(y[tr], minlength=k).argmax())
        pred = np.where(counts.sum(1) > 0, counts.argmax(1), majority)
        acc = (pred[cte] == y[te][:, None]).mean(0)
        base = float(np.mean(y[te] == majority))
        return np.zeros(p) if base >= 1 else np.clip((acc - base) / (1 - base), 0, 1)
    sums = np.bincount(ctr.ravel(), weights=np.repeat(y[tr], p), minlength=p * nb)
    cn = np.bincount(ctr.ravel(), minlength=p * nb)
    means = np.where(cn > 0, sums / np.maximum(cn, 1), y[tr].mean())
    yt = y[te]
    sst = float(((yt - yt.mean()) ** 2).sum())
    if sst <= 0:
        return np.zeros(p)
    return np.clip(1 - ((yt[:, None] - means[cte]) ** 2).sum(0) / sst, 0, 1)


def _single_feature_scores(df: pd.DataFrame, target: str, task: str, facts: list[dict[str, Any]],
                           seed: int) -> list[dict[str, Any]]:
    y_all = df[target]
    lab = np.flatnonzero(y_all.notna().to_numpy())
    if len(lab) < 20:
        return []
    rng = np.random.default_rng(seed)
    idx = rng.choice(lab, size=LEAK_SAMPLE, replace=False) if len(lab) > LEAK_SAMPLE else rng.permutation(lab)
    sub = df.take(idx)
    half = len(idx) // 2
    tr, te = np.arange(half), np.arange(half, len(idx))
    classif = task in ("binary", "multiclass")
    if classif:
        yc, classes = pd.factorize(sub[target])
        y = yc.astype(np.int64)
        k = len(classes)
    else:
        y = sub[target].to_numpy(dtype="float64")
        k = 0
    positions = {f["name"]: i for i, f in enumerate(facts)}
    candidates = [f for f in facts if f["name"] != target and f["kind"] != "constant"]
    plain = [f for f in candidates if f["_base"] == "numeric" and not f["dtype"].startswith("timedelta")]
    scores = []
    exact = candidates
    if len(plain) > LEAK_EXACT_MAX:
        # Very wide: a vectorised binned screen scores every numeric column; only the best
        # LEAK_EXACT_MAX of them (and all non-numeric columns) get the exact per-column check.
        X = sub.iloc[:, [positions[f["name"]] for f in plain]].to_numpy(dtype="float64", na_value=np.nan)
        screen = _screen_numeric(X, y, tr, te, classif, k)
        order = np.argsort(-screen, kind="stable")
        keep = {plain[j]["name"] for j in order[:LEAK_EXACT_MAX]}
        for j in order[LEAK_EXACT_MAX:]:
            scores.append({"column": plain[j]["name"], "score": round(float(screen[j]), 4), "method": "binned-screen",
                           "kind": plain[j]["kind"]})
        plain_names = {f["name"] for f in plain}
        exact = [f for f in candidates if f["name"] in keep or f["name"] not in plain_names]
    for f in exact:
        name = f["name"]
        x = sub.iloc[:, positions[name]]
        method = "groups"
        if f["_base"] in ("numeric", "datetime") and f.get("n_unique", 0) > 64:
            if f["_base"] == "datetime":
                xv = pd.to_numeric(x.astype("int64").where(x.notna()), errors="coerce").to_numpy(dtype="float64", na_value=np.nan)
            elif pd.api.types.is_timedelta64_dtype(x.dtype):
                xv = x.dt.total_seconds().to_numpy(dtype="float64", na_value=np.nan)
            else:
                xv = x.to_numpy(dtype="float64", na_value=np.nan)
            score = _score_nn(xv, y, tr, te, classif, k)
            method = "nearest-value"
            if not classif:
                fin = np.isfinite(xv)
                if fin.sum() > 10 and np.std(xv[fin]) > 0 and np.std(y[fin]) > 0:
                    score = max(score, float(np.corrcoef(xv[fin], y[fin])[0, 1] ** 2))
        else:
            score = _score_codes(_codes_for(x), y, tr, te, classif, k)
        scores.append({"column": name, "score": round(score, 4), "method": method, "kind": f["kind"]})
    scores.sort(key=lambda d: -d["score"])
    return scores


# ---------------------------------------------------------------------------------------------
# Rows and columns that repeat


def _duplicate_rows(df: pd.DataFrame, facts: list[dict[str, Any]]) -> int:
    """Exact count of rows equal to an earlier row. Hashing a few high-cardinality columns first
    finds the candidates cheaply; only those are compared in full."""
    n, m = df.shape
    if n < 2 or m == 0:
        return 0
    if n <= 50_000 and m <= 200:
        return int(df.duplicated().sum())
    ranked = sorted(range(m), key=lambda i: -(facts[i].get("n_unique") or 0))[:3]
    h = np.zeros(n, dtype=np.uint64)
    for i in ranked:
        hc = pd.util.hash_pandas_object(df.iloc[:, i], index=False).to_numpy()
        h = h * np.uint64(0x100000001B3) ^ hc
    cand = pd.Series(h).duplicated(keep=False).to_numpy()
    n_cand = int(cand.sum())
    if n_cand == 0:
        return 0
    if m <= 200 and n_cand <= 200_000:
        return int(df.loc[cand].duplicated().sum())
    if m > 200 and n_cand <= 2000:
        sub = df.loc[cand]
        rows = sub.to_numpy(dtype=object, copy=True)
        rows[sub.isna().to_numpy()] = None
        seen: set[tuple] = set()
        dups = 0
        for row in map(tuple, rows):
            if row in seen:
                dups += 1
            else:
                seen.add(row)
        return dups
    return int(pd.util.hash_pandas_object(df, index=False).duplicated().sum())


def _duplicate_columns(df: pd.DataFrame, facts: list[dict[str, Any]], seed: int) -> list[dict[str, str]]:
    """Columns identical to an earlier column. Identical columns share all their statistics, so
    only columns whose statistics collide are compared value by value."""
    groups: dict[tuple, list[int]] = {}
    for i, f in enumerate(facts):
        if f["kind"] == "constant":
            continue
        sig = (f["_base"], f["n_missing"], f.get("n_unique"), f.get("min"), f.get("max"), f.get("mean"),
               str(f.get("top_values"))[:300])
        groups.setdefault(sig, []).append(i)
    dups = []
    for members in groups.values():
        if len(members) < 2:
            continue
        reps: list[int] = []
        for i in members:
            col = df.iloc[:, i]
            match = next((r for r in reps if col.equals(df.iloc[:, r])), None)
            if match is None:
                reps.append(i)
            else:
                dups.append({"column": facts[i]["name"], "duplicate_of": facts[match]["name"]})
    return dups


# ---------------------------------------------------------------------------------------------
# The profile


def column_decisions(df: pd.DataFrame, target: str | None, task: str | None, seed: int = 0, *,
                     facts: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    """The column decisions that shape a model: kinds, leakage suspects and the columns to drop
    (all-missing, constant, ID-like, near-deterministic leaks, duplicates), with the scores behind
    them. The profile calls it on the whole file to describe it; define_task calls it again on the
    training rows only, so no label or value of a test row decides a feature."""
    facts = facts if facts is not None else _column_facts(df, seed)
    scores = _single_feature_scores(df, target, task, facts, seed) if target else []
    score_of = {s["column"]: s for s in scores}
    classif = task in ("binary", "multiclass")
    threshold = LEAK_THRESHOLD if classif else LEAK_THRESHOLD_R2
    drop_threshold = LEAK_DROP_THRESHOLD if classif else LEAK_DROP_THRESHOLD_R2
    leakage: list[dict[str, Any]] = []
    for s in scores:
        if s["score"] >= threshold:
            drop_it = s["score"] >= drop_threshold
            leakage.append({"column": s["column"], "score": s["score"], "drop": drop_it,
                            "reason": f"alone predicts the target on held-out rows (score {s['score']:.2f}); "
                                      "check it is known at prediction time and not derived from the target"
                                      + ("" if drop_it else f" (kept: below {drop_threshold} a column this strong is "
                                                            "as often a real signal as a leak)")})
    for f in facts:
        if f["kind"] == "id" and f["name"] != target and f["name"] not in {d["column"] for d in leakage}:
            sc = score_of.get(f["name"], {}).get("score")
            leakage.append({"column": f["name"], "score": sc, "drop": True,
                            "reason": "ID-like (unique per row): carries no general signal; a model can memorise it "
                                      "or pick up how IDs were assigned"})
    dup_cols = _duplicate_columns(df, facts, seed)
    drop: list[dict[str, str]] = []
    for f in facts:
        if f["name"] == target:
            continue
        if f["missing_frac"] >= 1.0:
            drop.append({"column": f["name"], "reason": "all-missing"})
        elif f["kind"] == "constant":
            drop.append({"column": f["name"], "reason": "constant"})
        elif f["kind"] == "id":
            drop.append({"column": f["name"], "reason": "id-like"})
    dropped = {d["column"] for d in drop}
    for d in leakage:
        if d["drop"] and d["column"] not in dropped:
            drop.append({"column": d["column"], "reason": f"leakage suspect (score {d['score']:.2f})"})
            dropped.add(d["column"])
    for d in dup_cols:
        if d["column"] not in dropped and d["column"] != target:
            drop.append({"column": d["column"], "reason": f"duplicate of {d['duplicate_of']}"})
            dropped.add(d["column"])
    return {"kinds": {f["name"]: f["kind"] for f in facts if f["name"] != target}, "scores": scores,
            "leakage": leakage, "duplicates": dup_cols, "drop": drop, "threshold": threshold}


def build_profile(df: pd.DataFrame, info: LoadInfo | None = None, target: str | None = None, *,
                  task: str | None = None, seed: int = 0) -> dict[str, Any]:
    """The full profile record (JSON-ready). Raises DataError when `target` is unusable."""
    t0 = time.perf_counter()
    n, m = df.shape
    if m > 200 and getattr(getattr(df, "_mgr", None), "nblocks", 0) > 50:
        df = df.copy()  # one block per dtype: wide frames from read_csv come as one block per column
    inferred = check_target(df, target) if target else None
    from dsagent.tools.task_types import PREDICTIONS, prediction_of

    answered_task = prediction_of(task) if task and prediction_of(task) in PREDICTIONS else None  # a plugin's task by its shape
    facts = _column_facts(df, seed)
    warnings: list[str] = []

    target_rec = _target_facts(df, target, inferred, answered_task) if target else None
    eff_task = (answered_task or inferred) if target else None
    decided = column_decisions(df, target, eff_task, seed, facts=facts)
    scores, leakage, dup_cols, drop = decided["scores"], decided["leakage"], decided["duplicates"], decided["drop"]
    score_of = {s["column"]: s for s in scores}
    threshold = decided["threshold"]
    dup_rows = _duplicate_rows(df, facts)

    # Warnings a data scientist would say out loud.
    if n < 100:
        warnings.append(f"small dataset ({n} rows): estimates will be noisy; use cross-validation")
    if m - 1 > n:
        warnings.append(f"more columns ({m}) than rows ({n}): expect overfitting; prefer strong regularisation")
    if dup_rows:
        warnings.append(f"{dup_rows} duplicate row(s) ({dup_rows / n:.1%}); they can leak between train and test splits")
    all_missing = [f["name"] for f in facts if f["missing_frac"] >= 1.0]
    if all_missing:
        warnings.append(f"{len(all_missing)} column(s) entirely missing: {', '.join(all_missing[:5])}")
    heavy = [f["name"] for f in facts if 0.5 <= f["missing_frac"] < 1.0]
    if heavy:
        warnings.append(f"{len(heavy)} column(s) over 50% missing: {', '.join(heavy[:5])}")
    if target_rec:
        if target_rec["n_missing"]:
            warnings.append(f"target has {target_rec['n_missing']} missing value(s); those rows cannot be used for training")
        if eff_task in ("binary", "multiclass"):
            mf = target_rec["minority_frac"]
            if mf is not None and mf < 0.1:
                warnings.append(
                    f"imbalanced classes: minority class {target_rec['minority_class']!r} is {mf:.1%}; "
                    "prefer PR-AUC/F1/balanced metrics and stratified splits"
                )
            if target_rec["smallest_class_count"] is not None and target_rec["smallest_class_count"] < 10:
                warnings.append(
                    f"class {target_rec['minority_class']!r} has only {target_rec['smallest_class_count']} row(s): "
                    "stratified CV may fail; consider merging rare classes"
                )
            if target_rec["n_classes"] and target_rec["n_classes"] > 50:
                warnings.append(f"{target_rec['n_classes']} classes: is this really a classification target?")
        elif eff_task == "regression" and target_rec.get("skew") is not None and abs(target_rec["skew"]) > 2:
            tip = "; consider a log transform" if (target_rec.get("min") or 0) >= 0 else ""
            warnings.append(f"target is highly skewed (skew {target_rec['skew']:.1f}){tip}")
    for d in leakage:
        if d["score"] is not None and d["score"] >= threshold:
            warnings.append(f"leakage suspect: {d['column']!r} alone predicts the target (score {d['score']:.2f})"
                            + ("" if d["drop"] else "; kept as a feature: check it is known at prediction time"))
    mostly_numeric = [f["name"] for f in facts if f["_base"] == "string" and 0.5 <= (f.get("numeric_frac") or 0) < 1]
    if mostly_numeric:
        warnings.append(f"mostly-numeric text column(s) kept as categorical (a few non-numbers, e.g. '?' or 'n/a'): "
                        f"{', '.join(mostly_numeric[:5])}")
    with_inf = [f["name"] for f in facts if f.get("n_inf")]
    if with_inf:
        warnings.append(f"inf values in {', '.join(with_inf[:5])}: profiled as missing; treat them as missing before training")
    text_cols = [f["name"] for f in facts if f["kind"] == "text"]
    if text_cols:
        warnings.append(f"free-text column(s) {', '.join(text_cols[:5])}: modelled with TF-IDF of words and character "
                        "n-grams (SVD-reduced for tree models), fitted within each fold")

    columns = []
    for f in facts:
        rec = {k: v for k, v in f.items() if not k.startswith("_")}
        if f["name"] in score_of:
            rec["target_score"] = score_of[f["name"]]["score"]
        columns.append(rec)
    kind_counts: dict[str, int] = {}
    for f in facts:
        kind_counts[f["kind"]] = kind_counts.get(f["kind"], 0) + 1

    record = {
        "n_rows": int(n),
        "n_cols": int(m),
        "load": info.to_dict() if info is not None else None,
        "kind_counts": kind_counts,
        "columns": columns,
        "target": target_rec,
        "drop_suggestions": drop,
        "leakage_suspects": leakage,
        "single_feature_scores": scores[:20],
        "duplicate_rows": int(dup_rows),
        "duplicate_columns": dup_cols,
        "warnings": warnings,
        "method": {
            "text_sample": TEXT_SAMPLE, "leakage_sample": min(LEAK_SAMPLE, n), "leakage_threshold": threshold,
            "outliers": "fraction outside [Q1 - 1.5 IQR, Q3 + 1.5 IQR]",
            "numeric_sample": None if n <= NUMERIC_SAMPLE else NUMERIC_SAMPLE,
        },
        "elapsed_s": round(time.perf_counter() - t0, 3),
    }
    return _jsonable(record)


def compact_summary(record: dict[str, Any], budget: int = SUMMARY_CHAR_BUDGET) -> dict[str, Any]:
    """What the model reads: counts by kind and only the notable columns, under `budget` chars of JSON."""
    for limit in (12, 8, 5, 3, 2, 1, 0):
        summary = _summary_at(record, limit)
        if len(json.dumps(summary, separators=(",", ":"), default=str)) <= budget:
            return summary
    return summary


def _summary_at(r: dict[str, Any], limit: int) -> dict[str, Any]:
    cols = r["columns"]
    nm = lambda s: _short(s, 40)  # noqa: E731

    def top(items: list, k: int | None = None) -> list:
        k = limit if k is None else k
        return items[:k]

    by_kind: dict[str, list[str]] = {}
    for c in cols:
        by_kind.setdefault(c["kind"], []).append(nm(c["name"]))
    names_per_kind = max(limit * 2, 0) if len(cols) > 40 else 40
    columns_by_kind = {}
    for k, names in by_kind.items():
        shown = names[:names_per_kind]
        if len(names) > len(shown):
            shown = shown + [f"(+{len(names) - len(shown)} more)"]
        columns_by_kind[k] = shown
    load = r.get("load") or {}
    missing = sorted((c for c in cols if c["missing_frac"] > 0), key=lambda c: -c["missing_frac"])
    high_card = sorted((c for c in cols if c["kind"] == "categorical" and (c.get("n_unique") or 0) > 50),
                       key=lambda c: -c["n_unique"])
    outliers = sorted((c for c in cols if (c.get("outlier_frac") or 0) > 0.01), key=lambda c: -c["outlier_frac"])
    skewed = sorted((c for c in cols if c["kind"] == "numeric" and abs(c.get("skew") or 0) > 2),
                    key=lambda c: -abs(c["skew"]))
    t = r.get("target")
    target = None
    if t:
        target = {k: t.get(k) for k in ("name", "task", "n_missing", "n_classes", "minority_frac", "skew")}
        if t.get("class_counts"):
            cc = list(t["class_counts"].items())
            target["class_counts"] = dict(cc[: max(limit, 3)])
            if len(cc) > max(limit, 3):
                target["class_counts"]["(other classes)"] = len(cc) - max(limit, 3)
        if t.get("task") == "regression":
            target.update({k: _round(t.get(k)) for k in ("min", "median", "max")})
        target = {k: _round(v) for k, v in target.items() if v is not None}
    summary: dict[str, Any] = {
        "shape": [r["n_rows"], r["n_cols"]],
        "file": {k: load.get(k) for k in ("format", "encoding", "delimiter") if load.get(k)},
        "load_notes": [_short(x, 160) for x in top(load.get("notes") or [], max(limit // 2, 1))],
        "kinds": r["kind_counts"],
        "columns_by_kind": columns_by_kind,
        "missing": {"columns_with_missing": len(missing),
                    "most_missing": {nm(c["name"]): round(c["missing_frac"], 3) for c in top(missing)}},
        "target": target,
        "leakage_suspects": [{"column": nm(d["column"]), "score": d["score"],
                              "why": "id-like" if d["reason"].startswith("ID-like") else "predicts target alone",
                              **({} if d.get("drop", True) else {"kept": True})}
                             for d in top(r["leakage_suspects"])],
        "top_single_features": [[nm(s["column"]), s["score"]] for s in top(r.get("single_feature_scores") or [], min(limit, 5))],
        "drop_suggestions": _group_drops(r["drop_suggestions"], limit, nm),
        "duplicate_rows": r["duplicate_rows"],
        "duplicate_columns": [f"{nm(d['column'])}={nm(d['duplicate_of'])}" for d in top(r["duplicate_columns"])],
        # Free text said out loud: what makes it text (words, length, uniqueness) and how it is used.
        "text_columns": {nm(c["name"]): {"avg_words": round(c.get("avg_words") or 0, 1), "avg_chars": round(c.get("avg_len") or 0),
                                         "unique_frac": round(c["unique_frac"], 2)}
                         for c in cols if c["kind"] == "text"} if limit else {},
        "high_cardinality": {nm(c["name"]): c["n_unique"] for c in top(high_card, min(limit, 6))},
        "outliers_iqr_frac": {nm(c["name"]): round(c["outlier_frac"], 3) for c in top(outliers, min(limit, 6))},
        "skewed": {nm(c["name"]): round(c["skew"], 1) for c in top(skewed, min(limit, 6))},
        "warnings": [_short(w, 200) for w in top(r["warnings"], max(limit, 2))],
        "full_profile": PROFILE,
    }
    return {k: v for k, v in summary.items() if v not in (None, [], {})}


def _group_drops(drops: list[dict[str, str]], limit: int, nm) -> dict[str, list[str]]:
    """{reason: [columns]}: 100 constant columns are one line, not 100."""
    groups: dict[str, list[str]] = {}
    for d in drops:
        reason = d["reason"]
        if reason.startswith("duplicate of "):
            groups.setdefault("duplicate column", []).append(f"{nm(d['column'])}={nm(reason[len('duplicate of '):])}")
        elif reason.startswith("leakage suspect"):
            groups.setdefault("leakage suspect", []).append(nm(d["column"]))
        else:
            groups.setdefault(reason, []).append(nm(d["column"]))
    k = max(limit, 1)
    return {reason: names[:k] + ([f"(+{len(names) - k} more)"] if len(names) > k else []) for reason, names in groups.items()}


# ---------------------------------------------------------------------------------------------
# The tool


@tool
def profile_data(ctx: ToolContext, target: str | None = None) -> ToolOutput:
    """Profile the session's dataset before any modelling: call this first.

    Reports the shape; each column's kind (numeric, categorical, boolean, datetime, text = free
    text, id = ID-like, constant), missingness and cardinality; duplicate rows and duplicate or
    constant columns; outliers (IQR rule) and skew; how the file was read (format, encoding,
    delimiter, anything that was detected or cleaned). With a target it also infers the task
    (binary, multiclass or regression), shows class balance or target skew and missing labels,
    and flags leakage suspects: columns that alone predict the target almost perfectly on
    held-out rows (ask whether they are known at prediction time; near-deterministic ones are
    suggested for dropping, merely strong ones are kept and marked "kept") and ID-like columns. The
    answer lists only notable columns and suggests columns to drop, with reasons; the full
    per-column profile is saved as profile.json in the session's artifacts.

    Args:
        target: name of the column to predict, exactly as in the data (case-sensitive). Omit it to
            profile without target analysis (the session's answered target is used if there is one).
            An unknown, constant, single-class, all-missing or ID-like target is an error that
            suggests close column names.
    """
    ctx.report("loading data", 0.0)
    df, info = load_dataset(ctx)
    target = target or (ctx.answers or {}).get("target") or None
    task = (ctx.answers or {}).get("task")
    ctx.report("profiling columns", 0.3)
    record = build_profile(df, info, target, task=task, seed=ctx.seed)
    path = artifact_path(ctx, PROFILE)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(record, indent=1, default=str))
    os.replace(tmp, path)
    ctx.report("profile saved", 1.0)
    return ToolOutput(summary=compact_summary(record), record=record, files={"profile": PROFILE})


# ---------------------------------------------------------------------------------------------
# JSON helpers


def _py(v: Any) -> Any:
    if isinstance(v, np.generic):
        v = v.item()
    if isinstance(v, float):
        if math.isnan(v) or math.isinf(v):
            return None
        return int(v) if v.is_integer() and abs(v) < 2**53 else v
    if isinstance(v, (pd.Timestamp, np.datetime64)):
        return str(v)
    return v


def _short(v: Any, n: int = 60) -> str:
    s = str(_py(v))
    return s if len(s) <= n else s[: n - 1] + "…"


def _round(v: Any) -> Any:
    if isinstance(v, float):
        return round(v, 4) if abs(v) < 1e6 else round(v, 1)
    return v


_PLAIN = (str, int, bool, type(None))


def _jsonable(obj: Any) -> Any:
    t = type(obj)
    if t in _PLAIN:
        return obj
    if t is float:
        return None if (obj != obj or obj in (math.inf, -math.inf)) else obj
    if t is dict:
        return {(k if type(k) is str else str(k)): _jsonable(v) for k, v in obj.items()}
    if t is list or t is tuple:
        return [_jsonable(v) for v in obj]
    if isinstance(obj, np.generic):
        return _jsonable(obj.item())
    if isinstance(obj, dict):
        return {str(k): _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_jsonable(v) for v in obj]
    if isinstance(obj, float):
        return _jsonable(float(obj))
    return str(obj)
