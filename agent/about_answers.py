"""The answer writers of agent/about.py: one function per intent, each reading a finished
session's artifacts (`Artifacts`) and answering in a few sentences with the numbers (`Reply`).
Which question goes to which writer is the table in agent/about.py."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from dsagent.tools import paths


_LIST_ITEM = re.compile(r"^\s*(?:[-*]|\d+[.)]?)\s")


def _paragraphs(text: str) -> str:
    """A blank line after a list when plain text follows it: markdown would otherwise fold the text
    into the list's last item (the chat renders replies as markdown)."""
    out: list[str] = []
    for line in text.split("\n"):
        if out and line.strip() and not _LIST_ITEM.match(line) and _LIST_ITEM.match(out[-1]):
            out.append("")
        out.append(line)
    return "\n".join(out)


@dataclass
class Reply:
    """One answer: the text (markdown), plot files worth opening, and an action to carry out."""

    intent: str
    text: str
    plots: list[str] = field(default_factory=list)
    # {"kind": "show", "name": ...} or {"kind": "rerun", "changes": {answer key: value}}
    action: dict[str, Any] | None = None

    def __post_init__(self) -> None:
        self.text = _paragraphs(self.text)

    def to_dict(self) -> dict[str, Any]:
        return {"intent": self.intent, "answer": self.text, "plots": self.plots, "action": self.action}

    def __str__(self) -> str:
        return self.text


class Artifacts:
    """The session's files, read lazily; a missing file reads as empty."""

    def __init__(self, session_dir: Path, acting: bool = False):
        self.dir = Path(session_dir)
        self.acting = acting  # the surface carries out follow-ups (the chat), or only reads (API, MCP)
        self.art = self.dir / "artifacts"
        self._cache: dict[str, Any] = {}

    def json(self, rel: str, default: Any = None) -> Any:
        if rel not in self._cache:
            try:
                self._cache[rel] = json.loads((self.art / rel).read_text(encoding="utf-8"))
            except (OSError, ValueError):
                self._cache[rel] = None
        value = self._cache[rel]
        return default if value is None else value

    @property
    def meta(self) -> dict[str, Any]:
        if "session" not in self._cache:
            try:
                self._cache["session"] = json.loads((self.dir / "session.json").read_text(encoding="utf-8"))
            except (OSError, ValueError):
                self._cache["session"] = {}
        return self._cache["session"]

    def plot(self, rel: str | None) -> str | None:
        p = self.art / rel if rel else None
        return str(p) if p is not None and p.is_file() else None

    def columns(self) -> list[str]:
        return [c["name"] for c in self.json(paths.PROFILE, {}).get("columns", [])]


def _f(x: Any, digits: int = 4) -> str:
    if isinstance(x, (int, float)):
        return f"{x:.{digits}f}" if abs(x) < 1e4 else f"{x:,.0f}"
    return str(x)


def _norm(text: str) -> str:
    """Case and separators folded: "Bill_Length-mm?" -> "bill length mm"."""
    return " ".join(re.sub(r"[^a-z0-9]+", " ", text.lower()).split())


def _find_column(text: str, columns: list[str]) -> str | None:
    """The column a phrase names: exact, then with separators folded, then by close spelling."""
    import difflib

    norm = _norm(text)
    by_norm = {_norm(c): c for c in columns}
    for key in sorted(by_norm, key=len, reverse=True):  # longest first: "bill length mm" before "bill"
        if re.search(rf"(?<![a-z0-9]){re.escape(key)}(?![a-z0-9])", norm):
            return by_norm[key]
    words = norm.split()
    for word in words:
        close = difflib.get_close_matches(word, list(by_norm), n=1, cutoff=0.8)
        if close:
            return by_norm[close[0]]
    return None


# ------------------------------------------------------------------------------ the answers


def drivers(a: Artifacts, q: str) -> Reply:
    ex = a.json(paths.EXPLANATION, {})
    perm = ex.get("permutation_importance") or []
    if not perm:
        return Reply("drivers", "This session has no explanation yet (explain_model did not run), so I cannot say "
                                "what drives the predictions.")
    scoring = ex.get("scoring", "the metric")
    top = [r for r in perm if r["importance"] > 0][:5] or perm[:3]
    lines = [f"What drives the predictions: permutation importance on {ex.get('rows', '?')} held-out test rows, i.e. "
             f"how much {scoring} worsens when one column is shuffled (mean ± std over {ex.get('repeats', '?')} repeats):"]
    lines += [f"{i}. `{r['feature']}` {_f(r['importance'])} ± {_f(r['std'])}" for i, r in enumerate(top, 1)]
    useless = [r["feature"] for r in perm if r["importance"] <= 0]
    if useless:
        lines.append(f"Adding nothing measurable: {', '.join(useless)}.")
    shap = ex.get("shap_mean_abs") or {}
    if shap:
        lines.append("Mean |SHAP| (" + str(ex.get("shap_model", "the model")) + "): "
                     + ", ".join(f"{k} {_f(v)}" for k, v in list(shap.items())[:5]) + ".")
    lines.append("Direction is not recorded: permutation importance says how much a column matters, not which way it "
                 "pushes; and it measures association, not cause (correlated columns share importance).")
    plot = a.plot(f"{paths.PLOTS_DIR}/permutation_importance.png")
    return Reply("drivers", "\n".join(lines), [plot] if plot else [])


def _mistakes(ev: dict[str, Any]) -> str:
    """The test split's most frequent confusions (rows of the matrix are the actual class)."""
    cm = ev.get("confusion_matrix") or {}
    labels, mat = cm.get("labels", []), cm.get("matrix", [])
    errs = sorted(((mat[i][j], labels[i], labels[j]) for i in range(len(labels)) for j in range(len(labels))
                   if i != j and mat[i][j]), reverse=True)
    return "; ".join(f"{n} x actual `{t}` predicted `{p}`" for n, t, p in errs[:4])


def _in_goal_terms(a: Artifacts, ev: dict[str, Any], task: dict[str, Any]) -> list[str]:
    kind, m = task.get("task"), ev.get("test_metrics", {})
    out = []
    if kind == "binary" and ev.get("threshold"):
        th = ev["threshold"]
        at = th.get("test_metrics_at_threshold", {})
        pos = task.get("positive_class")
        out.append(f"In practice: flagging rows with P({pos}) >= {_f(th['threshold'], 3)} ({th.get('rule', '')}) finds "
                   f"{at.get('recall', 0):.1%} of the actual `{pos}` rows (recall), and {at.get('precision', 0):.1%} of "
                   "the flagged rows are right (precision) on the test split.")
    elif kind in ("binary", "multiclass") and "accuracy" in m:
        out.append(f"In practice: {m['accuracy']:.1%} of the test rows get the right class "
                   f"(about {round(m['accuracy'] * 100)} in 100; balanced accuracy {_f(m.get('balanced_accuracy'))}).")
    elif kind == "regression":
        target = task.get("target", "the target")
        if "mae" in m:
            out.append(f"In practice: a prediction of `{target}` is off by {_f(m['mae'], 1)} on average (MAE), "
                       f"RMSE {_f(m.get('rmse'), 1)}; the model explains {m.get('r2', 0):.1%} of its variance (R²).")
    if _mistakes(ev):
        out.append(f"Mistakes on the test split: {_mistakes(ev)}.")
    goal = a.meta.get("answers", {}).get("goal")
    if goal:
        out.append(f"The goal was: {goal.rstrip('.')}.")
    return out


def performance(a: Artifacts, q: str) -> Reply:
    ev, task = a.json(paths.EVALUATION, {}), a.json(paths.TASK, {})
    if not ev:
        return Reply("performance", "This session has no evaluated model yet (evaluate_model did not run).")
    better = "higher" if ev.get("greater_is_better", True) else "lower"
    ci = ev.get("test_ci")
    lines = [f"The model ({ev['model']}) scores **{ev['metric']} {_f(ev['test_score'])}** on {ev.get('n_test', '?')} "
             f"held-out test rows, scored once" + (f"; 95% bootstrap CI {_f(ci[0])} to {_f(ci[1])}" if ci else "")
             + f" ({better} is better)."]
    if ev.get("baseline_score") is not None:
        gain = (ev["test_score"] - ev["baseline_score"]) * (1 if better == "higher" else -1)
        verdict = "better than" if gain > 0 else "NOT better than"
        lines.append(f"The baseline (class prior / training mean) scores {_f(ev['baseline_score'])}: the model is "
                     f"{verdict} it by {_f(abs(gain))}.")
    if ev.get("cv_mean") is not None:
        lines.append(f"Cross-validation on the training split gave {_f(ev['cv_mean'])} ± {_f(ev.get('cv_std'))}.")
    others = {k: v for k, v in ev.get("test_metrics", {}).items() if k != ev["metric"]}
    if others:
        lines.append("Other test metrics: " + ", ".join(f"{k} {_f(v)}" for k, v in others.items()) + ".")
    lines += _in_goal_terms(a, ev, task)
    if ci and ev.get("n_test", 0) < 200:
        lines.append(f"With only {ev['n_test']} test rows the interval is wide: new data from the same source may score "
                     "anywhere in it.")
    files = ev.get("files", {})
    plots = [p for p in (a.plot(files.get(k)) for k in ("roc_pr", "confusion_matrix", "regression")) if p]
    return Reply("performance", "\n".join(lines), plots)


def why_model(a: Artifacts, q: str) -> Reply:
    board, ev = a.json(paths.LEADERBOARD, []), a.json(paths.EVALUATION, {})
    if not board:
        return Reply("why_model", "No models were compared yet (train_models did not run).")
    metric = board[0].get("metric", "")
    lines = [f"Candidates by cross-validated {metric} on the training split (best first):"]
    lines += [f"- {r['name']} ({r['family']}): {_f(r['cv_mean'])} ± {_f(r.get('cv_std'))}"
              + (" ← chosen" if r["name"] == ev.get("model") else "") for r in board[:6]]
    interp = a.meta.get("answers", {}).get("interpretability")
    chosen = ev.get("model")
    ranked = [r for r in board if r.get("family") != "baseline"]
    rule = ("The rule: ship the best cross-validated candidate (the baseline never counts); only when interpretability "
            "is 'high' does a linear model within one CV standard deviation of the best win instead.")
    lines.append(rule + f" Interpretability here: {interp or 'not stated'}.")
    families = a.meta.get("answers", {}).get("model_families")
    if families:  # a stakeholder's constraint shaped the candidates: say so before the verdict
        lines.append(f"The search was limited by the answers' model_families to {', '.join(families)} (and the baseline); "
                     "other families were not tried.")
    if ranked and chosen:
        if chosen == ranked[0]["name"]:
            lines.append(f"So {chosen} was chosen: it has the best CV {metric}.")
        else:
            lines.append(f"So {chosen} was chosen over {ranked[0]['name']} (the best by CV): interpretability mattered.")
    linear = next((r for r in ranked if r["family"] == "linear"), None)
    best = ranked[0] if ranked else None
    if linear and best and linear is not best:
        gap = abs(best["cv_mean"] - linear["cv_mean"])
        spread = max(best.get("cv_std") or 0, linear.get("cv_std") or 0)
        within = "within" if gap <= spread else "more than"
        lines.append(f"Trade-off: the interpretable linear model is {_f(gap)} behind, {within} the fold-to-fold spread "
                     f"({_f(spread)}).")
    return Reply("why_model", "\n".join(lines))


def assumptions(a: Artifacts, q: str) -> Reply:
    items = a.meta.get("assumptions") or []
    if not items:
        return Reply("assumptions", "Nothing was assumed: every question was answered (or none was needed).")
    lines = [f"{len(items)} answer(s) were assumed rather than given (say otherwise and I can re-run with yours):"]
    lines += [f"- {x}" for x in items]
    return Reply("assumptions", "\n".join(lines))


def data_quality(a: Artifacts, q: str) -> Reply:
    prof, task = a.json(paths.PROFILE, {}), a.json(paths.TASK, {})
    if not prof:
        return Reply("data_quality", "The data was not profiled in this session.")
    lines = [f"{prof.get('n_rows', '?')} rows x {prof.get('n_cols', '?')} columns; "
             f"{prof.get('duplicate_rows', 0)} exact duplicate rows."]
    missing = [(c["name"], c.get("missing_frac", 0)) for c in prof.get("columns", []) if c.get("n_missing")]
    if missing:
        lines.append("Missing values: " + ", ".join(f"`{n}` {f:.1%}" for n, f in missing)
                     + " (imputed inside the model's Pipeline).")
    else:
        lines.append("No missing values.")
    for key, label in (("leakage_suspects", "Possible leakage"), ("drop_suggestions", "Suggested to drop"),
                       ("duplicate_columns", "Duplicate columns")):
        if prof.get(key):
            lines.append(f"{label}: {json.dumps(prof[key], default=str)[:300]}.")
    lines += [f"Warning: {w}" for w in prof.get("warnings", [])]
    lines += [f"Note: {n}" for n in task.get("notes", [])]
    if task.get("dropped"):
        lines.append(f"Columns left out of the features: {', '.join(map(str, task['dropped']))}.")
    return Reply("data_quality", "\n".join(lines))


def weak_spots(a: Artifacts, q: str) -> Reply:
    ev = a.json(paths.EVALUATION, {})
    worst = ev.get("worst_segments") or []
    lines = []
    if worst:
        lines.append("Where the model is weakest: test-split segments with the highest mean per-row loss "
                     "(x overall = how many times the average loss):")
        lines += [f"- `{s['column']}` = {s['value']}: {s['n']} rows, mean loss {_f(s['mean_loss'])}, "
                  f"x{_f(s['ratio_to_overall'], 2)} overall" for s in worst[:5]]
    else:
        lines.append("No test-split segment stands out: no segment's loss is above the overall mean by a margin.")
    if ev.get("confusion_matrix"):
        lines.append(f"Most frequent mistakes: {_mistakes(ev)}." if _mistakes(ev) else "No misclassified test rows.")
    lines.append(f"Small segments ({min((s['n'] for s in worst), default=0)} rows and up) are noisy: treat them as leads "
                 "to check, not verdicts." if worst else "")
    files = ev.get("files", {})
    plots = [p for p in (a.plot(files.get(k)) for k in ("confusion_matrix", "regression")) if p]
    return Reply("weak_spots", "\n".join(x for x in lines if x), plots)


def usage(a: Artifacts, q: str) -> Reply:
    task, ev = a.json(paths.TASK, {}), a.json(paths.EVALUATION, {})
    if not (a.art / paths.MODEL).is_file():
        return Reply("usage", "This session has no saved model yet, so there is nothing to predict with.")
    features = list(task.get("features", {}))
    cols = "`prediction`" + (", plus one `proba_<class>` column per class (" + ", ".join(map(str, task.get("classes", [])))
                             + ")" if task.get("task") in ("binary", "multiclass") else "")
    lines = [f"Predict on new rows with: `dsagent predict {a.dir} new.csv -o predictions.csv`",
             f"The file needs the columns {', '.join(features)} (raw, as in the training file; the saved Pipeline "
             f"does the preprocessing). The output has one row per input row, in order: {cols}.",
             f"The model is {a.art / paths.MODEL} (skops; its sha256 is checked against {paths.MODEL_MANIFEST})."]
    lat = (ev.get("latency") or {}).get("single_row_ms")
    if lat:
        lines.append(f"Measured latency on this machine: {_f(lat.get('p50'), 1)} ms per single row (p50), "
                     f"{_f(lat.get('p95'), 1)} ms p95.")
    if (a.art / paths.NOTEBOOK).is_file():
        lines.append(f"{a.art / paths.NOTEBOOK} re-creates the model from the raw file.")
    return Reply("usage", "\n".join(lines))


def monitoring(a: Artifacts, q: str) -> Reply:
    plan = a.json(paths.MONITORING, {})
    if not plan:
        return Reply("monitoring", "No monitoring plan yet (plan_monitoring did not run).")
    lines = [f"Check each new batch with `dsagent monitor {a.dir} new_batch.csv` (exit 0 ok, 3 investigate, 4 retrain)."]
    if plan.get("important_features"):
        lines.append("Watch most closely: " + ", ".join(plan["important_features"]) + " (the top features) and the "
                     "predictions themselves (drift by PSI: warn at "
                     f"{plan.get('thresholds', {}).get('psi_warn')}, alert at {plan.get('thresholds', {}).get('psi_alert')}).")
    lines.append("Retrain when:")
    lines += [f"- {t}" for t in plan.get("retraining_triggers", [])]
    sched = plan.get("schedule") or {}
    if sched:
        lines.append(f"Schedule: check {sched.get('check_every')}; retrain every {sched.get('retrain_every_days')} days at the latest.")
    md = a.art / paths.MONITORING_MD
    if md.is_file():
        lines.append(f"Details: {md}")
    return Reply("monitoring", "\n".join(lines))


def improve(a: Artifacts, q: str) -> Reply:
    """Next steps read off the artifacts: each one says which number suggests it."""
    ev, board, ex, task = (a.json(paths.EVALUATION, {}), a.json(paths.LEADERBOARD, []), a.json(paths.EXPLANATION, {}),
                           a.json(paths.TASK, {}))
    prof = a.json(paths.PROFILE, {})
    steps = []
    if ev and ev.get("baseline_score") is not None:
        gain = (ev["test_score"] - ev["baseline_score"]) * (1 if ev.get("greater_is_better", True) else -1)
        if gain <= 0:
            steps.append("The model does not beat the baseline: revisit the features or the framing before anything else.")
    if board and not any(r["name"].endswith("_tuned") for r in board):
        steps.append(f"No candidate was tuned within the {_f(a.meta.get('time_budget'), 0)}s budget: more time lets "
                     "Optuna tune the best family (say \"try again with 5 minutes\").")
    if ev.get("test_ci") and ev.get("n_test", 0) < 200:
        steps.append(f"More labelled rows: the test split has {ev['n_test']} rows, so the CI "
                     f"({_f(ev['test_ci'][0])} to {_f(ev['test_ci'][1])}) is wide.")
    worst = ev.get("worst_segments") or []
    if worst:
        s = worst[0]
        steps.append(f"More data or a feature for the weakest segment, `{s['column']}` = {s['value']} "
                     f"(loss x{_f(s['ratio_to_overall'], 2)} overall).")
    useless = [r["feature"] for r in ex.get("permutation_importance", []) if r["importance"] <= 0]
    if useless:
        steps.append(f"Drop columns that add nothing measurable ({', '.join(useless)}), e.g. \"drop column {useless[0]}\".")
    if a.meta.get("assumptions"):
        steps.append(f"Answer the {len(a.meta['assumptions'])} assumed question(s) (costs of errors, goal): they set "
                     "the metric and the threshold.")
    if task.get("task") == "binary" and task.get("metric") == "roc_auc":
        steps.append("If one kind of error matters more, optimise for it (e.g. \"use recall instead\").")
    if prof.get("leakage_suspects"):
        steps.append("Check the leakage suspects in the profile before trusting the score.")
    head = "What would improve it, from this session's numbers:" if steps else "Nothing in the artifacts points to an obvious next step."
    return Reply("improve", "\n".join([head] + [f"- {s}" for s in steps]))


def column(a: Artifacts, q: str) -> Reply:
    prof = a.json(paths.PROFILE, {})
    name = _find_column(q, a.columns())
    col = next((c for c in prof.get("columns", []) if c["name"] == name), None)
    if col is None:
        return Reply("column", "Which column? The data has: " + ", ".join(a.columns()) + ".")
    parts = [f"`{name}`: {col.get('kind')} ({col.get('dtype')}), {col.get('n_unique')} distinct values, "
             f"{col.get('n_missing', 0)} missing ({col.get('missing_frac', 0):.1%})."]
    if col.get("kind") == "numeric" and col.get("mean") is not None:
        parts.append(f"Range {_f(col.get('min'), 2)} to {_f(col.get('max'), 2)}, mean {_f(col.get('mean'), 2)}, "
                     f"median {_f(col.get('median'), 2)}, std {_f(col.get('std'), 2)}; {col.get('outlier_frac', 0):.1%} outliers (IQR rule).")
    elif col.get("top_values"):
        parts.append("Most frequent: " + ", ".join(f"{v} ({n})" for v, n in col["top_values"][:5]) + ".")
    task = a.json(paths.TASK, {})
    if name == task.get("target"):
        parts.append(f"It is the target ({task.get('task')}).")
    elif name in task.get("features", {}):
        perm = a.json(paths.EXPLANATION, {}).get("permutation_importance", [])
        rank = next((i for i, r in enumerate(perm, 1) if r["feature"] == name), None)
        if rank:
            parts.append(f"Used as a {task['features'][name]} feature: importance rank {rank} of {len(perm)} "
                         f"({_f(perm[rank - 1]['importance'])}).")
    elif task:
        parts.append("It is not one of the model's features.")
    if col.get("target_score") is not None:
        parts.append(f"On its own it predicts the target with a score of {_f(col['target_score'])} (profile's single-feature check).")
    return Reply("column", " ".join(parts))
