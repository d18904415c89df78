"""Profiling, the whole table: which columns to use and why (column_decisions), the profile record
(build_profile) and its summary within the model's token budget (compact_summary). The library
under the profile_data tool (tools/profile.py) and define_task."""

from __future__ import annotations

import json
import time
from typing import Any

import pandas as pd

from dsagent.tools.data import LoadInfo
from dsagent.tools.paths import PROFILE
from dsagent.tools.profile_columns import (LEAK_DROP_THRESHOLD, LEAK_DROP_THRESHOLD_R2, LEAK_SAMPLE, LEAK_THRESHOLD,
                                           LEAK_THRESHOLD_R2, NUMERIC_SAMPLE, SUMMARY_CHAR_BUDGET, TEXT_SAMPLE,
                                           _column_facts, _duplicate_columns, _duplicate_rows, _jsonable, _round,
                                           _short)
from dsagent.tools.profile_target import _single_feature_scores, _target_facts, check_target
from dsagent.tools.task_types import shape_type


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
    classif = shape_type(task).classification
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
        if shape_type(eff_task).classification:
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
        elif shape_type(eff_task).regression and target_rec.get("skew") is not None and abs(target_rec["skew"]) > 2:
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
        from dsagent.tools.text_embed import availability  # a package look-up: imports no model

        usable, why = availability()
        warnings.append("sentence embeddings (all-MiniLM-L6-v2) are compared with TF-IDF by CV when the texts are short"
                        if usable else f"sentence embeddings for the text are not available: {why}; TF-IDF only")

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
        if shape_type(t.get("task")).regression:
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
