"""How free-text columns are represented: TF-IDF (always available) or, for short texts when the
`dsagent[embeddings]` extra is installed, sentence embeddings (tools/text_embed.py), chosen by
cross-validation on the training rows. A library module (no @tool): engineer_features runs the
choice and keeps it in the task's "derived" entry ("text": "embed"), which every Pipeline of the
run is built from; the report reads the record it leaves.

Short means a median of at most 500 characters in every text column. all-MiniLM-L6-v2 was
trained on sequences of 128 word pieces (about 500 characters of English, ~4 characters a piece)
and cuts its input at 256: up to that length the median text is read whole, in the setting the
model was trained for; past it the embedding sees only the start of a long text while TF-IDF
reads all of it, and the embedding's cost grows with the length.
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np
import pandas as pd

SHORT_MEDIAN_CHARS = 500
MIN_BUDGET_S = 10.0  # below this, loading the model alone may not fit: TF-IDF without trying
LOAD_SHARE = 0.5  # of the comparison's budget, the most its wait for the model to load may take
# The models each representation is judged by: the sparse-aware linear model (TF-IDF's home ground,
# and a quick read of how linearly separable the embeddings are) and boosted trees with fixed rounds
# (the probe engineer_features judges derived features by). The better of the two scores each side.
PROBES = {"linear": {"family": "linear", "params": {}},
          "hist_gb": {"family": "hist_gb", "params": {"max_iter": 100, "early_stopping": False}}}


def text_columns(task) -> list[str]:
    return [c for c, k in (task.get("features") or {}).items() if k == "text"]


def median_chars(X: pd.DataFrame, columns: list[str]) -> dict[str, int]:
    """Median length in characters of each column's non-empty values."""
    out = {}
    for col in columns:
        lengths = X[col].dropna().astype(str).str.len()
        lengths = lengths[lengths > 0]
        out[col] = int(lengths.median()) if len(lengths) else 0
    return out


def with_text(derived: dict[str, Any] | None, representation: str, time_column: str | None) -> dict[str, Any] | None:
    """The task's "derived" entry carrying the text representation ("tfidf": the key left out, so a
    task without embeddings looks as it always did)."""
    rest = {k: v for k, v in (derived or {}).items() if k != "text"}
    if representation != "embed":
        return rest or None
    return {**(rest or {"features": [], "time_column": time_column, "inputs": []}), "text": "embed"}


def choose_text(ctx, task, X: pd.DataFrame, y: np.ndarray, splits, *, mode: str = "auto",
                budget_s: float | None = None) -> dict[str, Any]:
    """{"representation": "tfidf" | "embed", "reason": ..., "cv": {...}, ...}: the record of the choice.

    mode "auto" compares the two by CV when the texts are short, the extra is installed and the
    projected cost fits `budget_s`; "embed" / "tfidf" take that one without comparing."""
    from dsagent.tools.text_embed import DEFAULT_MODEL, availability

    columns = text_columns(task)
    medians = median_chars(X, columns)
    record: dict[str, Any] = {"representation": "tfidf", "model": DEFAULT_MODEL, "columns": medians,
                              "short_median_chars": SHORT_MEDIAN_CHARS, "mode": mode}
    ok, why = availability()
    long = {c: m for c, m in medians.items() if m > SHORT_MEDIAN_CHARS}
    if mode == "tfidf":
        return {**record, "reason": "TF-IDF was asked for"}
    if not ok:
        return {**record, "reason": f"sentence embeddings are not available: {why}"}
    if mode == "embed":
        return {**record, "representation": "embed", "reason": "sentence embeddings were asked for (not compared)"}
    if long:
        col, m = next(iter(long.items()))
        return {**record, "reason": f"the texts are long (median {m} characters in {col}, over {SHORT_MEDIAN_CHARS}): "
                                    "the embedding model reads only a long text's first 256 word pieces, TF-IDF all of it"}
    budget = float(budget_s if budget_s is not None else 0.3 * ctx.seconds_left(120))
    if budget < MIN_BUDGET_S:
        return {**record, "reason": f"the time budget left {budget:.0f}s for trying sentence embeddings; "
                                    f"loading the model and embedding the texts needs more (at least {MIN_BUDGET_S:.0f}s)"}
    return _compare(ctx, task, X, y, splits, record, budget)


def _compare(ctx, task, X, y, splits, record: dict[str, Any], budget: float) -> dict[str, Any]:
    from dsagent.tools.cv import OutOfTime, cross_validate
    from dsagent.tools.text import as_documents
    from dsagent.tools.text_embed import (DEFAULT_MODEL, LOAD_SECONDS, EmbeddingsUnavailable, embed, load_within,
                                          seconds_per_text)

    t0 = time.time()
    deadline = t0 + budget
    ctx.report("loading the sentence-embedding model", 0.0)
    try:
        loaded = load_within(LOAD_SHARE * budget)
    except EmbeddingsUnavailable as exc:  # installed but broken (a failed import): TF-IDF, and why
        return {**record, "reason": str(exc)}
    if not loaded:
        return {**record, "budget_s": round(budget, 1),
                "reason": f"loading the sentence-embedding model (torch, transformers) took over {LOAD_SHARE * budget:.0f}s "
                          f"here, {LOAD_SHARE:.0%} of the {budget:.0f}s the budget leaves for the comparison"}
    docs = {c: as_documents(X[[c]]) for c in record["columns"]}
    per_text = seconds_per_text([d for ds in docs.values() for d in ds])
    # The whole run embeds every row once (the cache serves every later fold and candidate), and the
    # notebook's kernel does it all again: twice the data's texts, against what is left of the budget.
    n_texts = int(task["n_rows"]) * len(docs)
    projected = 2 * per_text * n_texts
    record.update(load_s=LOAD_SECONDS.get(DEFAULT_MODEL), seconds_per_text=round(per_text, 5),
                  projected_embedding_s=round(projected, 1), budget_s=round(budget, 1))
    if time.time() + projected > deadline:
        return {**record, "reason": f"embedding the {n_texts:,} texts (here and again in the notebook) would take "
                                    f"~{projected:.0f}s, more than the {budget:.0f}s the budget leaves for it"}
    ctx.report(f"embedding {sum(len(d) for d in docs.values()):,} training texts", 0.2)
    for col_docs in docs.values():
        embed(col_docs)
    sign = 1.0 if task["greater_is_better"] else -1.0
    cv: dict[str, dict[str, float]] = {"tfidf": {}, "embed": {}}
    trials = [(probe, rep) for probe in PROBES for rep in ("tfidf", "embed")]
    not_reached: list[str] = []
    for i, (probe, representation) in enumerate(trials):
        ctx.report(f"cross-validating {probe} on {representation}", 0.3 + 0.7 * i / len(trials))
        trial = task.model_copy(update={"derived": with_text(task.get("derived"), representation,
                                                             task["split"].get("time_column"))})
        try:
            scores = cross_validate(PROBES[probe], X, y, trial, ctx, splits, deadline=deadline).fold_scores
        except OutOfTime:
            not_reached = [f"{p} on {r}" for p, r in trials[i:]]
            break
        cv[representation][probe] = round(float(np.mean(scores)), 6)
    probes = [p for p in PROBES if p in cv["tfidf"] and p in cv["embed"]]  # judged on what both sides finished
    record.update(cv=cv, probes=probes, not_reached=not_reached, seconds=round(time.time() - t0, 1))
    if not probes:
        return {**record, "reason": "no probe model finished on both representations within the budget"}
    best = {rep: max(cv[rep][p] * sign for p in probes) * sign for rep in cv}
    record["best_cv"] = best
    if sign * (best["embed"] - best["tfidf"]) > 0:
        return {**record, "representation": "embed",
                "reason": f"sentence embeddings scored {best['embed']:.4g} {task['metric']} in CV against TF-IDF's {best['tfidf']:.4g}"}
    return {**record, "reason": f"TF-IDF scored {best['tfidf']:.4g} {task['metric']} in CV against sentence "
                                f"embeddings' {best['embed']:.4g}"}


def representation_lines(record: dict[str, Any] | None, task) -> list[str]:
    """Report lines: which text representation the model uses, and why (empty without text columns)."""
    columns = text_columns(task)
    if not columns:
        return []
    used = "embed" if (task.get("derived") or {}).get("text") == "embed" else "tfidf"
    names = ", ".join(f"`{c}`" for c in columns)
    if used == "embed":
        what = f"sentence embeddings ({(record or {}).get('model', 'all-MiniLM-L6-v2')}, 384 dimensions)"
    else:
        what = "TF-IDF of words and character n-grams (SVD-reduced for tree models)"
    lines = [f"- Text representation of {names}: **{what}**."]
    if record and record.get("reason"):
        lines.append(f"- Why: {record['reason']}.")
    elif used == "tfidf":
        from dsagent.tools.text_embed import availability

        ok, why = availability()
        lines.append(f"- Sentence embeddings were not tried: {why if not ok else 'the run did not compare them (engineer_features, which does, did not run)'}.")
    cv = (record or {}).get("cv") or {}
    if cv.get("tfidf") and cv.get("embed"):
        cells = [f"{probe}: TF-IDF {cv['tfidf'][probe]:.4g}, embeddings {cv['embed'][probe]:.4g}"
                 for probe in (record.get("probes") or [])]
        if cells:
            lines.append(f"- CV {task['metric']} on the training rows by probe model: " + "; ".join(cells) + ".")
    return lines
