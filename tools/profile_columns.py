"""Profiling, the columns: what each column holds (numeric facts in one vectorised pass, string
facts from a sample), its kind (numeric, categorical, boolean, datetime, text, id, constant), rows
and columns that repeat, and the JSON helpers the profile record is written with. The thresholds
the profile uses live here, module-level."""

from __future__ import annotations

import math
import re
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np
import pandas as pd

from dsagent.tools.slowdown import cores_given
from dsagent.tools.text import is_free_text, word_facts
from dsagent.tools.timestamps import parse_times


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
            parsed = parse_times(sample)
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
            with ThreadPoolExecutor(max_workers=min(4, cores_given())) as pool:
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
