"""The sections of report.md that are plain functions of the saved records (business framing,
data, trade-offs) and the numbers computed from the saved test predictions (secondary-metric
CIs, per-group rates): the library behind write_report (tools/report.py), no @tool here."""

from __future__ import annotations

import re
from typing import Any

import numpy as np
import pandas as pd

from dsagent.tools.business import use_lines
from dsagent.tools.markdown import md_cell
from dsagent.tools.registry import ToolContext, ToolError, read_json
from dsagent.tools.task_sections import fmt as _fmt, pct as _pct
from dsagent.tools.task_types import get_task_type

INTERPRETABILITY = {"baseline": "trivial", "linear": "high (one coefficient per encoded feature)",
                    "random_forest": "low (hundreds of trees; use importance/SHAP)", "extra_trees": "low (hundreds of trees)",
                    "hist_gb": "low (boosted trees)", "xgboost": "low (boosted trees; SHAP available)",
                    "mlp": "low (a neural network; read it through permutation importance)",
                    "ensemble": "low (a blend of several models)",
                    "stack": "low (several models combined by a learned linear model)"}


def _load(ctx: ToolContext, name: str) -> Any:
    return read_json(ctx.artifacts_dir / name, {})


def _slug(v: str) -> str:
    return re.sub(r"[^A-Za-z0-9_-]+", "_", str(v))[:40] or "column"


# -- numbers computed from the saved test predictions ---------------------------------------
class TestView:
    """The held-out rows, their labels and the saved model's predictions on them."""

    def __init__(self, ctx: ToolContext, task: dict[str, Any], ev: dict[str, Any]):
        from dsagent.tools.data import load_dataset
        from dsagent.tools.task_data import encode_target

        saved = np.load(ctx.artifacts_dir / "test_predictions.npz")
        self.pred = np.asarray(saved["pred"])
        self.proba = np.asarray(saved["proba"]) if saved["proba"].size else None
        df, _ = load_dataset(ctx)
        self.frame = df.iloc[task["test_rows"]].reset_index(drop=True)
        self.y = encode_target(task, self.frame[task["target"]])
        self.task = task
        threshold = (ev.get("threshold") or {}).get("threshold")
        self.decision = (self.proba[:, 1] >= threshold).astype(int) if threshold is not None and self.proba is not None else self.pred
        if len(self.y) != len(self.pred):
            raise ToolError("test_predictions.npz does not match the test split; run evaluate_model again")


def refit_lines(ev: dict[str, Any]) -> list[str]:
    """A bullet on what the shipped model was fitted on when it is not the scored one
    (tools/refit_all.py), or why it is the scored one after a refit was asked for; none when none was."""
    refit = ev.get("refit_all_rows") or {}
    if refit.get("rows"):
        return [f"- The saved model is this configuration refitted on all {refit['rows']} labelled rows (training and test "
                f"rows together) after the test split was scored: the test figures are those of the model fitted on "
                f"the {ev['n_train']} training rows, which never saw the test rows; the refit, with more rows and "
                "nothing chosen on the test rows, is not scored again (no unseen labelled rows are left)."]
    if refit.get("not_refit_because"):
        return [f"- The saved model is the scored one, not refitted on every labelled row: {refit['not_refit_because']}."]
    return []


def _fit_rows_text(ev: dict[str, Any]) -> str:
    fit_rows, n_train = ev.get("fit_rows") or ev["n_train"], ev["n_train"]
    if fit_rows >= n_train:
        return f"{n_train} rows" + (" (then refitted on every labelled row: see below)"
                                    if (ev.get("refit_all_rows") or {}).get("rows") else "")
    grown = ev.get("grown")
    if grown:
        return (f"{fit_rows} of the {n_train} training rows; {grown['es_rows']} other training rows decided when to stop "
                f"boosting: {grown['rounds']} rounds at learning rate {grown['learning_rate']:g} (the search, on a small "
                f"subsample, had stopped at {grown['search_rounds']} rounds at learning rate "
                f"{grown['search_learning_rate']:g}; more rows support more boosting, and a larger step when time is short)")
    return (f"a fixed subsample of {fit_rows} of the {n_train} training rows (a fit on every row did not fit the "
            "time budget; a larger --time-budget uses more of them)")


def _metric_cis(view: TestView, ev: dict[str, Any], seed: int) -> dict[str, tuple[float, float] | None]:
    from dsagent.tools.metrics import bootstrap_ci, task_metrics

    out: dict[str, tuple[float, float] | None] = {}
    known = task_metrics(view.task["task"])
    for name in ev.get("test_metrics", {}):
        if name == ev["metric"] and ev.get("test_ci"):
            out[name] = tuple(ev["test_ci"])
            continue
        metric = known.get(name)
        if metric is None:
            continue
        try:
            out[name] = bootstrap_ci(metric, view.y, view.pred, view.proba, n=200, seed=seed, time_limit=1.0)
        except Exception:
            out[name] = None
    return out


def group_table(view: TestView, column: str, metric_name: str) -> list[dict[str, Any]]:
    """Per value of `column`: rows, the main metric and error rates (fairness view)."""
    from dsagent.tools.metric_table import defined_score
    from dsagent.tools.metrics import task_metrics

    values = view.frame[column]
    if pd.api.types.is_numeric_dtype(values) and values.nunique() > 10:
        values = pd.qcut(values, 4, duplicates="drop").astype(str)
    values = values.astype(object).where(values.notna(), "(missing)").astype(str).to_numpy()
    metric = task_metrics(view.task["task"])[metric_name]
    tt = get_task_type(view.task["task"])
    rows = []
    for val in pd.Series(values).value_counts().index[:12]:
        m = values == val
        row: dict[str, Any] = {"value": str(val), "n": int(m.sum())}
        row[metric_name] = defined_score(metric, view.y[m], view.pred[m], None if view.proba is None else view.proba[m])
        rows.append(row | tt.segment_stats(view.y[m], view.pred[m], view.decision[m]))
    return rows


def _gap(rows: list[dict[str, Any]], key: str, min_n: int = 10) -> tuple[float, str, str] | None:
    vals = [(r[key], r["value"]) for r in rows if r.get(key) is not None and r["n"] >= min_n]
    if len(vals) < 2:
        return None
    hi, lo = max(vals), min(vals)
    return hi[0] - lo[0], hi[1], lo[1]


def _group_md(rows: list[dict[str, Any]], metric: str, tt) -> list[str]:
    cols = tt.segment_columns()
    head = f"| value | rows | {metric} | " + " | ".join(c.header for c in cols) + " |"
    sep = "|---|---|---|" + "---|" * len(cols)
    body = [f"| {md_cell(r['value'])} | {r['n']} | {_fmt(r.get(metric))} | "
            + " | ".join((_pct if c.rate else _fmt)(r.get(c.key)) for c in cols) + " |" for r in rows]
    return [head, sep, *body]


# -- sections --------------------------------------------------------------------------------
def _section_business(answers: dict[str, Any], task: dict[str, Any], ev: dict[str, Any], goal: str,
                      view: TestView | None) -> list[str]:
    out = ["## Business framing", "", f"- **Goal:** {md_cell(goal, 300)}."]
    out += get_task_type(task["task"]).practical_meaning(task, ev, answers, view)
    lat = ((ev.get("latency") or {}).get("single_row_ms") or {})
    if answers.get("latency_ms"):
        ok = lat.get("p95") is not None and lat["p95"] <= answers["latency_ms"]
        out.append(f"- **Latency:** required {answers['latency_ms']} ms per prediction; measured single-row p95 "
                   f"{lat.get('p95')} ms ({'meets' if ok else 'MISSES'} it).")
    out += use_lines(answers, ev)  # what latency, volume, min useful score, baseline and cadence changed
    if answers.get("model_families"):
        out.append(f"- **Model families:** limited by the answers to {', '.join(answers['model_families'])} "
                   "(and the baseline).")
    if answers.get("interpretability"):
        out.append(f"- **Interpretability need:** {answers['interpretability']}; the chosen family's is "
                   f"{INTERPRETABILITY.get(ev['family'], 'unknown')}.")
    return out + [""]


def _section_data(profile: dict[str, Any], task: dict[str, Any]) -> list[str]:
    out = ["## Data quality findings", ""]
    if profile:
        out.append(f"- {profile.get('n_rows')} rows x {profile.get('n_cols')} columns; "
                   f"{profile.get('duplicate_rows', 0)} exact duplicate rows"
                   + (f"; duplicate columns: {', '.join(map(md_cell, profile['duplicate_columns'][:5]))}"
                      if profile.get("duplicate_columns") else "") + ".")
        load = profile.get("load") or {}
        if load.get("notes"):
            out.append("- Reading the file: " + "; ".join(md_cell(n, 200) for n in load["notes"][:5]))
        missing = sorted((c for c in profile.get("columns", []) if c.get("missing_frac", 0) > 0),
                         key=lambda c: -c["missing_frac"])[:8]
        if missing:
            out.append("- Missing values: " + ", ".join(f"`{md_cell(c['name'])}` {c['missing_frac']:.1%}" for c in missing)
                       + " (imputed inside the Pipeline, with missing-value indicators for numbers missing in at least 5 "
                       "training rows).")
        else:
            out.append("- No missing values.")
        tgt = profile.get("target") or {}
        if tgt.get("class_counts"):
            out.append("- Target balance: " + ", ".join(f"`{md_cell(k)}` {v}" for k, v in list(tgt["class_counts"].items())[:10]) + ".")
        # Leakage warnings get their own lines below, which also say whether the column was kept.
        for w in [w for w in profile.get("warnings") or [] if not str(w).startswith("leakage suspect:")][:8]:
            out.append(f"- {md_cell(w, 300)}")
        left_out = {d["column"] for d in task.get("dropped") or []}
        for s in (profile.get("leakage_suspects") or [])[:5]:
            col = s.get("column", s) if isinstance(s, dict) else s
            if col in left_out:
                out.append(f"- Possible leak: `{md_cell(col)}` predicts the target almost perfectly on its own; it was "
                           "left out of the features. If it is known at prediction time, it can go back in.")
            else:
                out.append(f"- Possible leak: `{md_cell(col)}` predicts the target strongly on its own; it was kept as "
                           "a feature. Check that it is known at prediction time (to leave it out, list it under "
                           "`id_columns` in an answers file).")
    if task.get("dropped"):
        out.append("- Left out of the features: " + ", ".join(f"`{md_cell(d['column'])}` ({md_cell(d['reason'], 100)})"
                                                              for d in task["dropped"]) + ".")
    for note in task.get("notes", []):
        out.append(f"- {md_cell(note, 300)}")
    return out + [""]


def _both_looked(a: dict[str, Any], b: dict[str, Any]) -> bool:
    """Both rows were scored on more rows than the CV's (tools/more_rows.py), and that order differs from the CV's."""
    if a.get("more_rows_score") is None or b.get("more_rows_score") is None:
        return False
    return (a["cv_mean"] < b["cv_mean"]) != (a["more_rows_score"] < b["more_rows_score"])


def _section_tradeoffs(board: list[dict[str, Any]], ev: dict[str, Any]) -> list[str]:
    out = ["## Trade-offs", "", "| candidate | interpretability | CV score | fit s | predict ms / 1k rows |", "|---|---|---|---|---|"]
    for r in board[:8]:
        out.append(f"| {md_cell(r['name'])}{' (chosen)' if r['name'] == ev['model'] else ''} | "
                   f"{INTERPRETABILITY.get(r['family'], '?')} | {_fmt(r['cv_mean'])} ± {_fmt(r['cv_std'])} | {r.get('fit_s', '')} | "
                   f"{r.get('predict_ms_per_1k', '')} |")
    out.append("")
    looked = [r for r in board if r.get("more_rows_score") is not None]
    if looked:
        out.append("- The search ran on a subsample of the training rows, so its leading families were also fitted on "
                   "several times those rows and scored on training rows held out from that fit (not the test split): "
                   + ", ".join(f"{md_cell(r['name'])} {_fmt(r['more_rows_score'])}" for r in looked)
                   + ". That order, not the subsample's CV, ranks them above.")
    chosen = next((r for r in board if r["name"] == ev["model"]), None)
    simpler = [r for r in board if r["family"] == "linear" and r["name"] != ev["model"]]
    complex_ = [r for r in board if r["family"] not in ("linear", "baseline") and r["name"] != ev["model"]]
    if chosen and ev["family"] != "linear" and simpler and _both_looked(chosen, simpler[0]):
        s = simpler[0]
        out.append(f"- The best linear model ({md_cell(s['name'])}) led the subsample's CV ({_fmt(s['cv_mean'])} vs "
                   f"{_fmt(chosen['cv_mean'])}) but scored {_fmt(s['more_rows_score'])} vs {_fmt(chosen['more_rows_score'])} "
                   "when both were fitted on more rows, which is closer to the final fit on every row. It is easier to "
                   "explain and cheaper to run; keep it as a fallback where explanations are required.")
    elif chosen and ev["family"] != "linear" and simpler:
        s = simpler[0]
        gap = abs(chosen["cv_mean"] - s["cv_mean"])
        noise = max(chosen["cv_std"], s["cv_std"])
        out.append(f"- The best linear model ({md_cell(s['name'])}) reaches CV {_fmt(s['cv_mean'])} vs {_fmt(chosen['cv_mean'])}: "
                   f"a gap of {_fmt(gap)}, {'within' if gap <= noise else 'larger than'} the fold-to-fold spread ({_fmt(noise)}). "
                   + ("It is easier to explain and cheaper to run; prefer it when explanations matter." if gap <= noise else
                      "The extra accuracy is real; keep the linear model as a fallback where explanations are required."))
    elif chosen and ev["family"] == "linear":
        if complex_:
            c = complex_[0]
            out.append(f"- The chosen model is linear: the most interpretable family here. The best tree ensemble "
                       f"({md_cell(c['name'])}) scored CV {_fmt(c['cv_mean'])} vs {_fmt(chosen['cv_mean'])}, so the extra "
                       "complexity did not pay.")
        else:
            out.append("- The chosen model is linear, the most interpretable family; no tree ensemble finished within the "
                       "time budget, so a more complex model might still do better with more time.")
    lat = ev.get("latency") or {}
    if lat.get("single_row_ms"):
        out.append(f"- Prediction latency (this machine): single row p50 {lat['single_row_ms']['p50']} ms, "
                   f"p95 {lat['single_row_ms']['p95']} ms; {lat['batch_rows']} rows in {lat['batch_ms']} ms.")
    return out + [""]
