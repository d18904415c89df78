"""What the words do: the terms (words and word pairs) that move a model's predictions most, per
class, and the misclassified test rows shown with their text.

Term effects are measured by occlusion, the same way for every model family (linear, trees on
SVD components, ensembles): on held-out rows that contain a term, delete the term from the text
and predict again; the mean change in P(class) (regression: in the prediction) is the term's
effect. It explains the whole Pipeline, TF-IDF weighting and character n-grams included, where a
linear model's coefficients would explain only one of its inputs.
"""

from __future__ import annotations

import re
import time
from typing import Any

import numpy as np
import pandas as pd

from dsagent.tools.text import TOKEN_PATTERN, as_documents

MAX_PREDICT_ROWS = 20_000  # rows per stacked predict call


def _scores(model, X: pd.DataFrame, task: dict[str, Any]) -> np.ndarray:
    """(rows, outputs): class probabilities, or the prediction as one column for regression."""
    from dsagent.tools.cv import predict_any

    pred, proba = predict_any(model, X, task)
    return proba if proba is not None else np.asarray(pred, dtype=float).reshape(-1, 1)


def _candidate_terms(docs: list[str], base: np.ndarray, n_terms: int) -> list[str]:
    """Terms seen in enough rows (>= 3 and >= 2%, in at most 60%), screened by how far the mean
    prediction of rows with the term sits from rows without it, weighted by sqrt(rows)."""
    from sklearn.feature_extraction.text import CountVectorizer

    try:
        counts = CountVectorizer(token_pattern=TOKEN_PATTERN, ngram_range=(1, 2), binary=True,
                                 min_df=max(3, int(0.02 * len(docs))), max_df=0.6).fit(docs)
    except ValueError:  # no term frequent enough
        return []
    has = counts.transform(docs).tocsc()
    terms = counts.get_feature_names_out()
    n_with = np.asarray(has.sum(axis=0)).ravel()
    sums = np.asarray(has.T @ base)  # (terms, outputs)
    mean_with = sums / n_with[:, None]
    mean_without = (base.sum(axis=0) - sums) / np.maximum(len(docs) - n_with, 1)[:, None]
    screen = np.abs(mean_with - mean_without).max(axis=1) * np.sqrt(n_with)
    order = np.argsort(-screen, kind="stable")[:n_terms]
    return [str(terms[i]) for i in order]


def _without(doc: str, term: str) -> str:
    pattern = r"(?<![^\W\d_])" + r"\W+".join(map(re.escape, term.split())) + r"(?![^\W\d_])"
    return re.sub(pattern, " ", doc, flags=re.IGNORECASE)


def term_effects(model, X: pd.DataFrame, task: dict[str, Any], column: str, *, n_terms: int = 40, top: int = 10,
                 time_limit: float = 10.0) -> dict[str, Any]:
    """{"column", "rows", "method", "effects": {output label: [{"term", "effect", "rows"}], ...}}:
    per class (binary: the positive class, with its most negative terms pushing towards the other),
    the terms whose deletion moves the prediction most."""
    started = time.perf_counter()
    docs = as_documents(X[[column]])
    base = _scores(model, X, task)
    terms = _candidate_terms(docs, base, n_terms)
    effects: list[tuple[str, np.ndarray, int]] = []
    frames, spans = [], []
    for term in terms:
        new_docs = [_without(d, term) for d in docs]
        rows = np.flatnonzero([a != b for a, b in zip(new_docs, docs)])
        if not len(rows):
            continue
        edited = X.iloc[rows].copy()
        edited[column] = [new_docs[i] for i in rows]
        frames.append(edited)
        spans.append((term, rows))
        if time.perf_counter() - started > time_limit / 2:  # editing is the cheap half; leave time to predict
            break
    pending = list(zip(frames, spans))
    while pending and time.perf_counter() - started < time_limit:
        batch, size = [], 0
        while pending and (not batch or size + len(pending[0][0]) <= MAX_PREDICT_ROWS):
            batch.append(pending.pop(0))
            size += len(batch[-1][0])
        scored = _scores(model, pd.concat([f for f, _ in batch], ignore_index=True), task)
        at = 0
        for frame, (term, rows) in batch:
            # The term's push: prediction with it minus prediction without it, averaged over its rows.
            effects.append((term, (base[rows] - scored[at:at + len(rows)]).mean(axis=0), len(rows)))
            at += len(rows)
    labels = _output_labels(task)
    by_output: dict[str, list[dict[str, Any]]] = {}
    if task["task"] == "binary":
        outputs = [(f"towards {labels[1]}", 1, -1), (f"towards {labels[0]}", 1, 1)]
    elif task["task"] == "multiclass":
        outputs = [(f"towards {label}", k, -1) for k, label in enumerate(labels)]
    else:
        outputs = [("raises the prediction", 0, -1), ("lowers the prediction", 0, 1)]
    for name, k, sign in outputs:
        ranked = sorted(effects, key=lambda e: sign * e[1][k])
        by_output[name] = [{"term": t, "effect": round(float(-sign * e[k]), 5), "rows": n}
                           for t, e, n in ranked[:top] if -sign * e[k] > 0]
    return {"column": column, "rows": len(X), "terms_tried": len(effects), "effects": by_output,
            "method": "occlusion: how far the term pushes " + ("P(class) towards the class named" if task["task"] != "regression"
                                                                else "the prediction in the direction named")
                      + ", the mean change when it is deleted from the held-out rows that contain it"}


def _output_labels(task: dict[str, Any]) -> list[str]:
    return [str(c) for c in task["classes"]] if task.get("classes") else [task["target"]]


_MD_SPECIAL = re.compile(r"([\\`*_{}\[\]()#+\-.!|~])")


def md_text(value: Any, width: int = 160) -> str:
    """Free text made inert in markdown: HTML entities for & < >, backslash before markdown
    punctuation, whitespace collapsed, truncated to `width` characters (with an ellipsis)."""
    text = " ".join(str(value).split())
    cut = text[:width] + ("…" if len(text) > width else "")
    cut = cut.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    return _MD_SPECIAL.sub(r"\\\1", cut)


def misclassified_markdown(frame: pd.DataFrame, text_cols: list[str], task: dict[str, Any], y: np.ndarray,
                           decision: np.ndarray, proba: np.ndarray | None, k: int = 5) -> list[str]:
    """The most confident mistakes on the test split (regression: the largest errors) with their text."""
    if not text_cols:
        return []
    if task["task"] == "regression":
        err = np.abs(np.asarray(y, float) - np.asarray(decision, float))
        worst = np.argsort(-err, kind="stable")[:k]
        head = ["Largest test errors, with their text (truncated):", "", "| actual | predicted | " +
                " | ".join(md_text(c, 40) for c in text_cols) + " |", "|---|---|" + "---|" * len(text_cols)]
        rows = [f"| {y[i]:.4g} | {decision[i]:.4g} | " + " | ".join(md_text(frame[c].iloc[i]) for c in text_cols) + " |"
                for i in worst]
        return head + rows + [""]
    wrong = np.flatnonzero(np.asarray(y) != np.asarray(decision))
    if not len(wrong):
        return []
    confidence = proba[wrong, decision[wrong]] if proba is not None else np.zeros(len(wrong))
    worst = wrong[np.argsort(-confidence, kind="stable")[:k]]
    classes = task["classes"]
    head = [f"Misclassified test rows ({len(wrong)} in all; the {len(worst)} most confident mistakes), with their "
            "text (truncated):", "", "| actual | predicted | P(predicted) | " + " | ".join(md_text(c, 40) for c in text_cols)
            + " |", "|---|---|---|" + "---|" * len(text_cols)]
    rows = [f"| {md_text(classes[y[i]], 40)} | {md_text(classes[decision[i]], 40)} | "
            + (f"{proba[i, decision[i]]:.2f}" if proba is not None else "n/a") + " | "
            + " | ".join(md_text(frame[c].iloc[i]) for c in text_cols) + " |" for i in worst]
    return head + rows + [""]


def terms_markdown(text_terms: list[dict[str, Any]]) -> list[str]:
    """The report's table of term effects per text column and direction."""
    out: list[str] = []
    for entry in text_terms:
        out += [f"### Words in `{md_text(entry['column'], 60)}` that move the predictions", "",
                f"Method: {entry['method']}; {entry['rows']} rows, {entry['terms_tried']} terms tried.", "",
                "| direction | terms (mean effect, rows) |", "|---|---|"]
        for direction, items in entry["effects"].items():
            shown = ", ".join(f"{md_text(r['term'], 40)} ({r['effect']:+.3f}, {r['rows']})" for r in items) or "none"
            out.append(f"| {md_text(direction, 60)} | {shown} |")
        out.append("")
    return out
