"""Monitoring a free-text column: its length, its vocabulary and its empty-text rate.

A text column has no useful category frequencies (every value is unique), so the plan keeps:
- the length in words, binned like a numeric feature (PSI + KS, as for numbers);
- the training vocabulary (the most frequent words) and the share of a batch's word occurrences
  outside it. Some unseen words are normal (names, typos), so the plan also stores the share
  expected on new rows of the same kind, measured between two halves of the training rows; the
  alert is on the excess over that baseline;
- the share of empty (missing or blank) texts.
"""

from __future__ import annotations

import re
from collections import Counter
from typing import Any

import numpy as np
import pandas as pd

from dsagent.tools.text import TOKEN_PATTERN

VOCABULARY = 5000  # most frequent training words kept in the plan (~50 KB of JSON)
UNSEEN_WARN, UNSEEN_ALERT = 0.05, 0.15  # excess share of unseen word occurrences over the baseline
_WORDS = re.compile(TOKEN_PATTERN)


def _tokens(values: pd.Series) -> list[list[str]]:
    return [_WORDS.findall(str(v).lower()) for v in values.dropna()]


def _vocabulary(docs: list[list[str]], size: int = VOCABULARY) -> set[str]:
    return {w for w, _ in Counter(w for d in docs for w in d).most_common(size)}


def unseen_share(docs: list[list[str]], vocabulary: set[str]) -> float:
    """Share of word occurrences not in `vocabulary` (0 when there are no words)."""
    total = sum(len(d) for d in docs)
    return float(sum(w not in vocabulary for d in docs for w in d) / total) if total else 0.0


def empty_rate(values: pd.Series) -> float:
    return float((values.isna() | (values.astype(str).str.strip() == "")).mean()) if len(values) else 0.0


def word_lengths(values: pd.Series) -> pd.Series:
    return pd.Series([len(_WORDS.findall(str(v))) for v in values.dropna()], dtype=float)


def text_reference(values: pd.Series) -> dict[str, Any]:
    from dsagent.tools.drift import numeric_reference

    docs = _tokens(values)
    half = len(docs) // 2
    # Expected unseen share: each half's words against the other half's vocabulary, averaged.
    # Half the rows make a smaller vocabulary than all of them, so this errs high: no false alarms.
    baseline = (unseen_share(docs[half:], _vocabulary(docs[:half])) + unseen_share(docs[:half], _vocabulary(docs[half:]))) / 2 \
        if half >= 10 else 0.0
    return {"type": "text", "n": int(len(values)), "null_rate": float(values.isna().mean()),
            "empty_rate": empty_rate(values), "length_words": numeric_reference(word_lengths(values)),
            "vocabulary": sorted(_vocabulary(docs)), "unseen_share_expected": round(baseline, 4)}


def text_drift(ref: dict[str, Any], values: pd.Series, t: dict[str, Any], quality: list[str], col: str) -> dict[str, Any]:
    """The monitor entry of one text column: PSI/KS of the length in words, the unseen-word share
    against its expected level, and the empty-text rate. Status: the worse of length and vocabulary."""
    from dsagent.tools.drift import _feature_drift

    length = _feature_drift(ref["length_words"], word_lengths(values), t, [], f"{col} (length)")
    unseen = unseen_share(_tokens(values), set(ref["vocabulary"]))
    excess = unseen - ref["unseen_share_expected"]
    n = int(values.notna().sum())
    vocab_status = "ok"
    if excess >= UNSEEN_ALERT and n >= 5:
        vocab_status = "alert"
    elif excess >= UNSEEN_WARN:
        vocab_status = "warn"
    entry: dict[str, Any] = {"type": "text", "rows": n, "null_rate": round(float(values.isna().mean()), 4),
                             "psi": length["psi"], "length_status": length["status"],
                             "mean_words": round(float(word_lengths(values).mean()), 2) if n else None,
                             "reference_mean_words": round(ref["length_words"]["stats"].get("mean", float("nan")), 2),
                             "unseen_word_share": round(unseen, 4), "unseen_word_share_expected": ref["unseen_share_expected"],
                             "vocabulary_status": vocab_status, "empty_rate": round(empty_rate(values), 4)}
    if "p_value" in length:
        entry["p_value"] = length["p_value"]
        entry["test"] = "ks (length in words)"
    if vocab_status == "alert":
        quality.append(f"{col}: {unseen:.1%} of words never seen in training (expected about "
                       f"{ref['unseen_share_expected']:.1%}): vocabulary drift")
    if entry["empty_rate"] > ref["empty_rate"] + t["null_rate_increase"]:
        quality.append(f"{col}: empty-text rate {entry['empty_rate']:.1%} vs {ref['empty_rate']:.1%} at training")
    order = ["ok", "warn", "alert"]
    entry["status"] = max(length["status"], vocab_status, key=order.index)
    return entry


def text_plan_line(ref: dict[str, Any]) -> str:
    """The reference cell of the monitoring plan's table for a text column."""
    s = ref["length_words"].get("stats") or {}
    return (f"words per text p5 / median / p95: {s.get('p05', 0):.0f} / {s.get('p50', 0):.0f} / {s.get('p95', 0):.0f}; "
            f"{len(ref['vocabulary'])} words kept, {ref['unseen_share_expected']:.1%} unseen expected; "
            f"{ref['empty_rate']:.1%} empty")
