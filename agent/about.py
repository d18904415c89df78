"""Answers about a FINISHED session, read from its artifacts: no model, no network, stdlib only.

The offline autopilot has no language model, yet the person (or a parent agent) has the answers
on disk: explanation.json, evaluation.json, leaderboard.json, profile.json, monitoring.json,
task.json and session.json. `ask_about(session_dir, question)` matches the question against one
table of intents (keywords, first best match wins) and answers in a few sentences with the
numbers. Follow-up requests in words ("try again with 5 minutes", "use recall instead", "drop
column X", "show me the confusion matrix") come back as an `action` the surface carries out:
the chat runs it, the Python API and MCP describe the call that would do it.

An unmatched question gets the menu of what can be asked, never the run's summary again.

The answer writers (one per intent) are agent/about_answers.py; this module holds the table of
intents, the follow-up actions and `ask_about`.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any, Callable

from dsagent.about_answers import (Artifacts, Reply, _f, _find_column, _norm, assumptions, column, data_quality, drivers,
                                   improve, monitoring, performance, usage, weak_spots, why_model)
from dsagent.tools import paths

# Metric names per task (tools/metrics.py is authoritative and validates again in define_task;
# it imports scikit-learn, which agent/ must not, so the names are listed here).
METRICS = {
    "binary": ["roc_auc", "pr_auc", "log_loss", "accuracy", "balanced_accuracy", "f1", "precision", "recall"],
    "multiclass": ["log_loss", "roc_auc_ovr", "accuracy", "balanced_accuracy", "f1_macro"],
    "regression": ["rmse", "mae", "r2", "mape"],
}
METRIC_WORDS = {"auc": "roc_auc", "roc auc": "roc_auc", "pr auc": "pr_auc", "average precision": "pr_auc",
                "logloss": "log_loss", "log loss": "log_loss", "balanced accuracy": "balanced_accuracy",
                "f1 macro": "f1_macro", "macro f1": "f1_macro", "r squared": "r2", "mse": "rmse"}


# --------------------------------------------------------------------------- follow-up actions


def _rerun(a: Artifacts, intent: str, what: str, changes: dict[str, Any]) -> Reply:
    """A new run on the same data with this session's answers changed. The offline workflow of a
    finished session cannot be re-entered at define_task, so the honest version is a new session
    (the finished one stays as it is). The chat carries it out; the API and MCP only read, so
    they say which call would."""
    answers = {k: v for k, v in (a.meta.get("answers") or {}).items() if v is not None} | changes
    action = {"kind": "rerun", "changes": changes, "answers": answers, "data": a.meta.get("data_path")}
    if a.acting:
        text = f"I will start a new run on the same data with {what}, the other answers as before; the finished session stays as it is."
    else:
        text = (f"That needs a new run with {what}; ask_about only reads the finished session. Start it with "
                f"run_task(goal, {a.meta.get('data_path')!r}, answers={json.dumps(answers, default=str)}) in Python, "
                "or start_ml_task with the same data and answers over MCP (or say it in `dsagent chat`).")
    return Reply(intent, text, action=action)


def _rerun_budget(a: Artifacts, q: str, m: re.Match) -> Reply:
    amount, unit = float(m.group("n")), (m.group("unit") or "m")[0]
    seconds = amount * {"s": 1, "m": 60, "h": 3600}[unit]
    return _rerun(a, "rerun_budget", f"a {seconds:.0f}s time budget (this session had {_f(a.meta.get('time_budget'), 0)}s)",
                  {"time_budget": seconds})


def _rerun_metric(a: Artifacts, q: str, m: re.Match) -> Reply:
    task = a.json(paths.TASK, {}).get("task", "")
    word = _norm(m.group("metric"))
    name = METRIC_WORDS.get(word, word.replace(" ", "_"))
    ok = METRICS.get(task, [])
    if name == "roc_auc" and task == "multiclass":
        name = "roc_auc_ovr"
    if name not in ok:
        return Reply("rerun_metric", f"{name} does not fit a {task} task; choose one of {', '.join(ok)}.")
    return _rerun(a, "rerun_metric", f"metric = {name} (define_task frames the task with it, so the models are "
                                     "compared, tuned and evaluated on it)", {"metric": name})


def _rerun_drop(a: Artifacts, q: str, m: re.Match) -> Reply:
    cols = a.columns()
    name = _find_column(m.group("col"), cols)
    target = a.json(paths.TASK, {}).get("target")
    if name is None:
        return Reply("rerun_drop", f"{m.group('col').strip()!r} is not a column of the data; columns: {', '.join(cols)}.")
    if name == target:
        return Reply("rerun_drop", f"{name} is the target: it cannot be dropped from the features.")
    ids = list(dict.fromkeys(list(a.meta.get("answers", {}).get("id_columns") or []) + [name]))
    return _rerun(a, "rerun_drop", f"`{name}` left out of the features (id_columns = {', '.join(ids)})", {"id_columns": ids})


SHOWABLE = {"report": paths.REPORT, "model card": paths.MODEL_CARD, "card": paths.MODEL_CARD,
            "monitoring": paths.MONITORING_MD, "leaderboard": paths.LEADERBOARD, "profile": paths.PROFILE,
            "notebook": paths.NOTEBOOK}


def _show(a: Artifacts, q: str, m: re.Match) -> Reply:
    want = _norm(m.group("what"))
    want = re.sub(r"^(me |the |a |us )+", "", want).strip()
    plots = sorted(p for p in (a.art / paths.PLOTS_DIR).glob("*.png")) if (a.art / paths.PLOTS_DIR).is_dir() else []
    for p in plots:
        stem = _norm(p.stem)
        if stem and (stem in want or want in stem):
            rel = f"{paths.PLOTS_DIR}/{p.name}"
            return Reply("show", f"Showing {rel} (the same as /show {rel}):", [str(p)], action={"kind": "show", "name": rel})
    for word, rel in SHOWABLE.items():
        if word in want and (a.art / rel).is_file():
            name = word.replace(" ", "_") if word != "card" else "model_card"
            return Reply("show", f"Showing the {word} (the same as /show {name}): {a.art / rel}", [],
                         action={"kind": "show", "name": name})
    names = [f"{paths.PLOTS_DIR}/{p.name}" for p in plots] + [w for w, rel in SHOWABLE.items() if w != "card" and (a.art / rel).is_file()]
    return Reply("show", f"This session has no {want or 'such file'}; it can show: {', '.join(names)}.")


_METRIC_ALT = "|".join(sorted({re.escape(w) for w in METRIC_WORDS} | {m.replace("_", "[ _]") for ms in METRICS.values() for m in ms},
                              key=len, reverse=True))
# Follow-ups first (they are imperative and would otherwise match an intent's keywords). A
# question ("how does it do with recall?") is not a request to re-run.
_COL = r"(the\s+)?(column\s+|feature\s+)?(?P<col>[^,.;!?]+)"
_ASKING = r"^(please |can you |could you |now |ok |okay |then )*"
ACTIONS: list[tuple[re.Pattern[str], Callable[[Artifacts, str, re.Match], Reply]]] = [
    (re.compile(r"\b(again|re-?run|retry|more time|longer|budget|give it)\b.*?\b(?P<n>\d+(\.\d+)?)\s*"
                r"(?P<unit>s|sec|secs|seconds?|m|mins?|minutes?|h|hours?)\b"), _rerun_budget),
    (re.compile(rf"\b(use|optimi[sz]e|switch to|try|maximi[sz]e|minimi[sz]e)\b.*?\b(?P<metric>{_METRIC_ALT})\b(?!.*\?$)"),
     _rerun_metric),
    (re.compile(_ASKING + r"(drop|remove|exclude|ignore|leave out)\s+" + _COL), _rerun_drop),
    (re.compile(r"\b(again|re-?run|retry)\b.*?\bwithout\s+" + _COL), _rerun_drop),
    (re.compile(_ASKING + r"(show|open|display|plot|view)\b\s*(?P<what>.*)$"), _show),
]


# ---------------------------------------------------------------------------------- the table

# intent -> (keywords or phrases, handler, what the menu says). A question scores one point per
# keyword found; the highest score wins, ties go to the earlier row.
INTENTS: list[tuple[str, list[str], Callable[[Artifacts, str], Reply], str]] = [
    ("drivers", ["drive", "drives", "driver", "drivers", "important", "importance", "matter", "matters", "influence",
                 "factor", "factors", "top features", "which features", "shap", "explain", "predictive", "relies"],
     drivers, "what drives the predictions (top features and their importance)"),
    ("performance", ["how good", "how well", "accurate", "accuracy", "performance", "perform", "score", "error", "sure",
                     "confident", "confidence", "ci", "interval", "uncertain", "uncertainty", "reliable", "baseline",
                     "metric", "test", "precision", "recall", "rmse", "auc"],
     performance, "how good the model is (metric, confidence interval, baseline, what it means for the goal)"),
    ("why_model", ["why this", "why that", "why did", "why was", "why not", "choose", "chose", "chosen", "choice", "pick", "picked",
                   "leaderboard", "compare", "compared", "candidates", "alternatives", "other models", "which model",
                   "trade off", "interpretable", "interpretability"],
     why_model, "why this model (the leaderboard and the rule that chose it)"),
    ("assumptions", ["assume", "assumed", "assumption", "assumptions", "defaults", "guess", "guessed"],
     assumptions, "what was assumed"),
    ("data_quality", ["data quality", "quality", "missing", "duplicate", "duplicates", "clean", "leakage", "leak",
                      "outliers", "nulls", "problems with the data", "issues with the data", "warnings"],
     data_quality, "data quality findings"),
    ("weak_spots", ["weak", "weakest", "worst", "fail", "fails", "mistakes", "wrong", "segment", "segments", "struggle",
                    "bad at", "error analysis", "errors", "misclassif", "where does it"],
     weak_spots, "where the model is weak (worst segments, mistakes)"),
    ("usage", ["how do i use", "use it", "use the model", "predict", "predictions on new", "deploy", "serve", "apply",
               "new data", "production", "score new", "run it"],
     usage, "how to use it (the predict command)"),
    ("monitoring", ["monitor", "monitoring", "drift", "retrain", "retraining", "watch", "maintain", "degrade", "alert"],
     monitoring, "what to monitor and when to retrain"),
    ("improve", ["improve", "improvement", "better", "next step", "next steps", "boost", "increase", "more data",
                 "what else", "what would help"],
     improve, "what would improve it"),
]
COLUMN_WORDS = ["column", "what is", "what's", "tell me about", "describe", "distribution", "values of", "mean of",
                "range of", "meaning of"]


def _score(norm: str, words: list[str]) -> int:
    return sum(1 for w in words if re.search(rf"(?<![a-z0-9]){re.escape(w)}", norm))


def menu(a: Artifacts | None = None) -> str:
    lines = ["I can answer questions about this finished session from its files:"]
    lines += [f"- {what}" for _, _, _, what in INTENTS]
    lines.append("- what a column is (\"what is COLUMN?\", with a column's name)")
    lines.append("And act on follow-ups: \"try again with 5 minutes\", \"use recall instead\" (another metric), "
                 "\"drop column X\", \"show me the confusion matrix\".")
    return "\n".join(lines)


def ask_about(session_dir: str | Path, question: str, *, acting: bool = False) -> Reply:
    """Answer `question` about the finished session in `session_dir` from its artifacts.

    acting: the caller carries out follow-up actions (the chat); otherwise a follow-up's reply
    says which call would do it."""
    a = Artifacts(Path(session_dir), acting)
    norm = _norm(question)
    low = " ".join(question.lower().split())
    for pattern, handler in ACTIONS:
        m = pattern.search(low)
        if m:
            return handler(a, question, m)
    scored = sorted(((_score(norm, words), -i, name, handler) for i, (name, words, handler, _) in enumerate(INTENTS)),
                    reverse=True)
    col = _find_column(question, a.columns()) if norm else None
    if col is not None and (_score(norm, COLUMN_WORDS) or scored[0][0] == 0):
        return column(a, question)
    hits = [s for s in scored if s[0] > 0]
    if not hits:
        return Reply("menu", ("I did not understand that question. " if norm else "") + menu(a))
    reply = hits[0][3](a, question)
    # "Which features matter most, and how sure are you about the error?" asks two things: answer both.
    if len(hits) > 1 and re.search(r"\band\b|\?.+\?", low):
        second = hits[1][3](a, question)
        reply = Reply(f"{reply.intent}+{second.intent}", f"{reply.text}\n\n{second.text}",
                      list(dict.fromkeys(reply.plots + second.plots)))
    return reply
