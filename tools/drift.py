"""Drift statistics for monitoring: reference distributions taken at training time, PSI and a
two-sample test against a new batch, and a feature's drift status. A library module (no @tool):
the monitoring tool (tools/monitor.py), its labelled and text checks, and the unsupervised
monitoring share it.

Drift is judged by effect size AND evidence (see tools/monitor.py's docstring for why).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from dsagent.tools.registry import ToolError

PSI_WARN, PSI_ALERT = 0.1, 0.25
P_VALUE = 0.01
BINS = 10
EPS = 1e-4
MIN_BATCH_ROWS = 50  # below this, drift numbers are reported but flagged as unreliable
VERDICT_EXIT = {"ok": 0, "investigate": 3, "retrain": 4}


def worse(a: str, b: str) -> str:
    """The more severe of two verdicts."""
    return a if VERDICT_EXIT[a] >= VERDICT_EXIT[b] else b


# -- reference distributions ----------------------------------------------------------------
def psi(expected: np.ndarray, actual: np.ndarray) -> float:
    e = np.clip(np.asarray(expected, float), EPS, None)
    a = np.clip(np.asarray(actual, float), EPS, None)
    e, a = e / e.sum(), a / a.sum()
    return float(np.sum((a - e) * np.log(a / e)))


def _finite(values: pd.Series) -> np.ndarray:
    v = pd.to_numeric(values, errors="coerce").to_numpy(dtype=float, na_value=np.nan)
    return v[np.isfinite(v)]


def numeric_reference(values: pd.Series, bins: int = BINS) -> dict[str, Any]:
    finite = _finite(values)
    uniq = np.unique(finite)
    if len(uniq) <= bins:  # few distinct values (years, counts): one bin per value
        inner = ((uniq[1:] + uniq[:-1]) / 2).tolist()
    else:
        inner = np.unique(np.quantile(finite, np.linspace(0, 1, bins + 1)))[1:-1].tolist()
    counts = np.bincount(np.searchsorted(inner, finite, side="right"), minlength=len(inner) + 1)
    rng = np.random.default_rng(0)
    sample = finite if len(finite) <= 5000 else rng.choice(finite, 5000, replace=False)
    stats = {}
    if len(finite):
        q = np.quantile(finite, [0.01, 0.05, 0.5, 0.95, 0.99])
        stats = {"mean": float(finite.mean()), "std": float(finite.std()), "p01": float(q[0]), "p05": float(q[1]),
                 "p50": float(q[2]), "p95": float(q[3]), "p99": float(q[4])}
    return {"type": "numeric", "n": int(len(values)), "edges": inner, "counts": counts.tolist(),
            "proportions": (counts / max(counts.sum(), 1)).tolist(), "null_rate": float(pd.isna(values).mean()),
            "min": float(finite.min()) if len(finite) else None, "max": float(finite.max()) if len(finite) else None,
            "stats": stats, "sample": np.round(sample, 6).tolist()}


def categorical_reference(values: pd.Series, top: int = 30) -> dict[str, Any]:
    s = values.dropna().astype(str)
    counts = s.value_counts()
    kept = counts.iloc[:top]
    return {"type": "categorical", "n": int(len(values)), "categories": kept.index.tolist(), "counts": kept.tolist(),
            "other_count": int(counts.iloc[top:].sum()),
            "proportions": (kept / max(len(s), 1)).tolist(), "other": float(counts.iloc[top:].sum() / max(len(s), 1)),
            "null_rate": float(values.isna().mean()), "known": counts.index[:1000].tolist()}


def numeric_counts(ref: dict[str, Any], values: pd.Series) -> np.ndarray:
    finite = _finite(values)
    return np.bincount(np.searchsorted(ref["edges"], finite, side="right"), minlength=len(ref["edges"]) + 1)


def categorical_counts(ref: dict[str, Any], values: pd.Series) -> tuple[np.ndarray, float]:
    s = values.dropna().astype(str)
    freq = s.value_counts()
    counts = np.array([freq.get(c, 0) for c in ref["categories"]] + [len(s) - sum(freq.get(c, 0) for c in ref["categories"])])
    known = set(ref.get("known", ref["categories"]))
    unseen = float(s[~s.isin(known)].size / len(s)) if len(s) else 0.0
    return counts, unseen


def _chi2_p(ref_counts: np.ndarray, new_counts: np.ndarray) -> float | None:
    """Two-sample chi-squared test (reference vs batch), cells with tiny expected counts merged."""
    from scipy.stats import chi2_contingency

    table = np.vstack([ref_counts, new_counts]).astype(float)
    table = table[:, table.sum(axis=0) > 0]
    if table.shape[1] < 2 or (table.sum(axis=1) == 0).any():
        return None
    expected = table.sum(axis=0) * table[1].sum() / table.sum()
    small = expected < 5
    if small.any():
        table = np.hstack([table[:, ~small], table[:, small].sum(axis=1, keepdims=True)])
    if table.shape[1] < 2:
        return None
    return float(chi2_contingency(table, correction=False).pvalue)


def _status(psi_value: float, p: float | None, n: int) -> str:
    significant = p is None and n >= MIN_BATCH_ROWS or (p is not None and p < P_VALUE)
    if psi_value >= PSI_ALERT and significant:
        return "alert"
    if psi_value >= PSI_WARN and (significant or psi_value >= PSI_ALERT):
        return "warn"
    return "ok"

def _num(v: float | None) -> str:
    if v is None:
        return "n/a"
    return f"{v:.4g}"


def _feature_drift(ref: dict[str, Any], values: pd.Series, t: dict[str, Any], quality: list[str], col: str) -> dict[str, Any]:
    from scipy import stats

    n = int(values.notna().sum())
    entry: dict[str, Any] = {"type": ref["type"], "rows": n, "null_rate": round(float(values.isna().mean()), 4)}
    p = None
    if ref["type"] == "numeric":
        counts = numeric_counts(ref, values)
        entry["psi"] = round(psi(ref["proportions"], counts / max(counts.sum(), 1)), 4)
        finite = _finite(values)
        if len(finite) >= 5 and ref["sample"]:
            p = float(stats.ks_2samp(ref["sample"], finite).pvalue)
            entry["test"] = "ks"
            entry["mean"] = round(float(finite.mean()), 6)
            entry["reference_mean"] = round(ref["stats"].get("mean", float("nan")), 6)
        if ref["min"] is not None and len(finite):
            margin = t["range_margin"] * max(ref["max"] - ref["min"], 1e-12)
            out = float(((finite < ref["min"] - margin) | (finite > ref["max"] + margin)).mean())
            entry["out_of_range_share"] = round(out, 4)
            if out > t["out_of_range_share"]:
                quality.append(f"{col}: {out:.1%} of values outside the training range "
                               f"[{_num(ref['min'])}, {_num(ref['max'])}] (+/- {t['range_margin']:.0%})")
    else:
        counts, unseen = categorical_counts(ref, values)
        total = max(counts.sum(), 1)
        entry["psi"] = round(psi(np.array(ref["proportions"] + [ref["other"]]), counts / total), 4)
        entry["unseen_share"] = round(unseen, 4)
        ref_counts = np.array(ref.get("counts", [round(x * ref["n"]) for x in ref["proportions"]]) + [ref.get("other_count", 0)])
        if counts.sum() >= 5:
            p = _chi2_p(ref_counts, counts)
            entry["test"] = "chi2"
        if unseen > t["unseen_category_share"]:
            quality.append(f"{col}: {unseen:.1%} of rows in categories never seen in training")
    if p is not None:
        entry["p_value"] = float(f"{p:.3g}")
    if entry["null_rate"] > ref["null_rate"] + t["null_rate_increase"]:
        quality.append(f"{col}: null rate {entry['null_rate']:.1%} vs {ref['null_rate']:.1%} at training")
    entry["status"] = _status(entry["psi"], p, n)
    return entry


def check_batch(plan: dict[str, Any], data: pd.DataFrame) -> None:
    """A batch must carry every column the plan tracks, and at least one row."""
    missing = [c for c, ref in plan["features"].items() if c not in data.columns and "derived" not in ref]
    if missing:
        raise ToolError(f"the new data lacks {len(missing)} column(s) the model needs: {', '.join(map(repr, missing[:10]))}; "
                        "monitor the same columns the model was trained on")
    if len(data) == 0:
        raise ToolError("the new data has no rows")
