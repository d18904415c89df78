"""report.md and model_card.md for a segmentation or an anomaly detector (write_report dispatches here)."""

from __future__ import annotations

from typing import Any

from dsagent.tools import paths
from dsagent.tools.markdown import md_cell
from dsagent.tools.registry import ToolContext, ToolOutput, artifact_path, read_json


def _f(v: Any, digits: int = 3) -> str:
    return f"{v:.{digits}f}" if isinstance(v, (int, float)) else "n/a"


def _features(rec: dict[str, Any]) -> list[str]:
    f = rec["features"]
    lines = [f"- Features used ({len(f['numeric'])} numeric, standardised; {len(f['categorical'])} categorical, one-hot): "
             + ", ".join(f"`{md_cell(c, 40)}`" for c in f["numeric"] + f["categorical"]) + "."]
    if f["dropped"]:
        lines.append("- Left out (identifiers, dates, free text or constant columns; distances on them mean nothing): "
                     + ", ".join(f"`{md_cell(c, 40)}`" for c in f["dropped"]) + ".")
    return lines


def _k_reason(c: dict[str, Any]) -> str:
    """How the number of segments was reached (tools/unsupervised/segment.py's choose)."""
    if "k_by_rank" not in c:  # a record written before the split test
        return "Chosen by the best mean rank over the four criteria (near-ties to the more stable, then to fewer segments)."
    return (f"The best mean rank over the four criteria gave {c['k_by_rank']}; the gap statistic found "
            f"{c['splits_found']} more segment(s) inside those (each segment split in two only when that tightens it "
            f"clearly more than it tightens uniform noise); the best silhouette was at {c['k_by_silhouette']}. "
            "The larger of the two counts is kept.")


def clustering_report(rec: dict[str, Any], goal: str) -> list[str]:
    lo, hi = rec["range"]
    c = rec["chosen"]
    lines = [f"# Report: {md_cell(goal, 200)}", "", "## Summary", "",
             f"- Task: segmentation (clustering) of {rec['n_rows']} rows; no target column.",
             f"- Chosen: **{rec['k']} segments** by **{rec['method']}**: silhouette {_f(c['silhouette'])}, Calinski-Harabasz "
             f"{_f(c['calinski_harabasz'], 1)}, bootstrap stability (adjusted Rand) {_f(c['stability'])}, gap statistic {_f(c.get('gap'))}.",
             f"- Numbers of segments considered: {lo} to {hi}, on {rec['selection_rows']} rows. " + _k_reason(c), ""]
    lines += ["## Segments", "", "| segment | name | rows | share | what sets it apart (standardised difference) |", "|---|---|---|---|---|"]
    for s in rec["segments"]:
        apart = "; ".join(f"{md_cell(d['feature'], 30)} {d['std_diff']:+.2f} SD" for d in s["distinguishing"]) or "close to the average"
        lines.append(f"| {s['segment']} | {md_cell(s['name'], 60)} | {s['size']} | {s['share']:.1%} | {apart} |")
    lines += ["", "A standardised difference is the segment's mean minus everyone's, in standard deviations; for a "
              "category level (`col=level`) it compares the share of rows at that level.", ""]
    for key, title in (("segment_map", "2-D map (PCA)"), ("segment_profiles", "Segment profiles")):
        if key in rec.get("plots", {}):
            lines += [f"![{title}]({rec['plots'][key]})", ""]
    lines += ["## Candidates", "", "| method | k | silhouette | Calinski-Harabasz | stability | gap | note |", "|---|---|---|---|---|---|---|"]
    for r in rec["candidates"]:
        lines.append(f"| {r['method']} | {r['k']} | {_f(r.get('silhouette'))} | {_f(r.get('calinski_harabasz'), 1)} | "
                     f"{_f(r.get('stability'))} | {_f(r.get('gap'))} | {md_cell(r.get('skipped', ''), 60)} |")
    lines += ["", "## Data", ""] + _features(rec) + [""]
    lines += ["## What this does not do", "",
              "- Segments are a description of these rows, not a ground truth: another feature set or scaling gives other segments.",
              "- A segment says rows are alike, not why; it predicts nothing about an outcome until tested against one.",
              "- New rows are assigned to the nearest learned segment (`dsagent predict`: `segment`, `segment_distance`); "
              "a large distance means the row fits no segment well.", ""]
    return lines


def anomaly_report(rec: dict[str, Any], goal: str) -> list[str]:
    ev = rec.get("evaluation") or {}
    lines = [f"# Report: {md_cell(goal, 200)}", "", "## Summary", "",
             f"- Task: anomaly detection on {rec['n_rows']} rows; no target column.",
             f"- Chosen detector: **{rec['method']}** (the one that agrees most with the consensus of all detectors; "
             "no label was used to choose).",
             f"- Threshold: anomaly score >= {rec['threshold']:.4g}, set so {rec['expected_anomaly_rate']:.1%} of the "
             f"fitted rows are flagged (rate {'from your answer' if rec['rate_source'] == 'answer' else 'estimated from the score distribution'}); "
             f"{rec['flagged']} of {rec['n_rows']} rows are flagged.", ""]
    if rec.get("label"):
        lines += ["## Evaluation against the known anomalies", "",
                  f"The column `{md_cell(rec['label'])}` was used **only to evaluate**, on {rec['n_holdout']} held-out rows the "
                  "detectors never saw; it never reached a fit or the choice of detector.", ""]
        if "average_precision" in ev:
            lines += [f"- Average precision {_f(ev['average_precision'])} (a random ranking scores the base rate, "
                      f"{_f(ev['base_rate'])}); ROC-AUC {_f(ev['roc_auc'])}; precision@{ev['k']} {_f(ev['precision_at_k'])}.",
                      f"- At the threshold: {ev['flagged']} flagged, recall {_f(ev['recall_at_threshold'])}, precision "
                      f"{_f(ev.get('precision_at_threshold'))}.", "",
                      "| detector | average precision | ROC-AUC | precision@k |", "|---|---|---|---|"]
            for name, e in (rec.get("detector_evaluation") or {}).items():
                lines.append(f"| {name}{' (chosen)' if name == rec['method'] else ''} | {_f(e.get('average_precision'))} | "
                             f"{_f(e.get('roc_auc'))} | {_f(e.get('precision_at_k'))} |")
            lines.append("")
        else:
            lines += [f"- {ev.get('note', 'no evaluation possible')}.", ""]
    lines += ["## Detectors", "", "IsolationForest is the default; another detector is chosen only when it agrees clearly "
              "more (Spearman, by 0.02 or more) with the consensus of all detectors' ranks.", "",
              "| detector | agreement with consensus | note |", "|---|---|---|"]
    for r in rec["detectors"]:
        lines.append(f"| {r['detector']} | {_f(r.get('agreement'))} | {md_cell(r.get('skipped', ''), 80)} |")
    lines += ["", "## Top anomalies", "", "| row | score | what makes it unusual |", "|---|---|---|"]
    for a in rec["top_anomalies"]:
        why = "; ".join(f"{md_cell(r['feature'], 30)} = {md_cell(r['value'], 20)} "
                        + (f"(robust z {r['robust_z']:+.1f}, median {r['median']:.4g})" if "robust_z" in r
                           else f"(only {r['share_of_rows']:.1%} of rows)") for r in a["reasons"]) or "an unusual combination of values"
        lines.append(f"| {a['row']} | {a['anomaly_score']:.4g} | {why} |")
    lines += ["", "Row numbers count data rows from 0 in file order.", ""]
    if "anomaly_scores" in rec.get("plots", {}):
        lines += [f"![Anomaly scores]({rec['plots']['anomaly_scores']})", ""]
    lines += ["## Data", ""] + _features(rec) + [""]
    lines += ["## What this does not do", "",
              "- An anomaly is a row unlike most others, not proof of fraud or error: every flag needs a person's review.",
              "- Rare but legitimate behaviour is flagged too; anomalies that look like normal rows are missed.",
              "- The threshold fixes the share flagged; if the true rate differs, precision or recall suffer.", ""]
    return lines


def model_card(rec: dict[str, Any], session: dict[str, Any], answers: dict[str, Any]) -> str:
    kind = rec["task"]
    what = (f"Assigns each row to one of {rec['k']} segments ({rec['method']}); output `segment` and `segment_distance`."
            if kind == "clustering" else
            f"Scores how unusual each row is ({rec['method']}); output `anomaly_score` and `is_anomaly` at threshold {rec['threshold']:.4g}.")
    may = (["describe and size customer groups; tailor messages or offers per segment and test them (A/B)",
            "spot rows far from every segment (large `segment_distance`) for a data-quality look"] if kind == "clustering" else
           ["rank rows for human review, most unusual first", "trigger a second check (a person, a rule) before acting"])
    may_not = (["decide anything about an individual on segment membership alone (segments are averages)",
                "stand in for a predictive model of an outcome: segments were not fitted to predict one",
                "use segments built on sensitive attributes to treat people differently"] if kind == "clustering" else
               ["block, accuse or penalise anyone automatically on a flag alone",
                "claim a recall: unlabelled anomalies of a kind unlike these rows go unflagged",
                "compare scores across retrained models (each has its own scale and threshold)"])
    lines = ["# Model card", "", "## What it does", "", what, "",
             "## Intended use", "", *(f"- May be used to {m}." for m in may), "",
             "## Not for", "", *(f"- Not to {m}." for m in may_not), "",
             "## Data", "", f"- File `{md_cell(session.get('data_path', '?'), 120)}` (sha256 `{session.get('data_sha256', '?')}`), "
             f"{rec['n_rows']} rows; seed {session.get('seed', 0)}.", *_features(rec), "",
             "## Monitoring", "", "- " + ("segment shares on new batches (PSI); feature drift." if kind == "clustering"
                                         else "the share of rows flagged on new batches against the expected rate; feature drift.")
             + " `dsagent monitor SESSION NEW_DATA` applies the plan (exit 0 ok, 3 investigate, 4 retrain).", ""]
    if answers.get("goal"):
        lines[4:4] = [f"Goal: {md_cell(answers['goal'], 200)}", ""]
    return "\n".join(lines)


def write(ctx: ToolContext, rec: dict[str, Any]) -> ToolOutput:
    session = read_json(ctx.session_dir / "session.json", {})
    goal = ctx.answers.get("goal") or ("segment the rows" if rec["task"] == "clustering" else "find unusual rows")
    lines = clustering_report(rec, goal) if rec["task"] == "clustering" else anomaly_report(rec, goal)
    assumptions = session.get("assumptions") or []
    if assumptions:
        lines += ["## Assumptions", "", *(f"- {md_cell(a, 300)}" for a in assumptions), ""]
    lines += ["## Reproducibility", "", f"- Data sha256 `{session.get('data_sha256', '?')}`, seed {ctx.seed}; "
              "notebook.ipynb re-creates the model and checks it matches the saved one.", ""]
    text = "\n".join(lines)
    artifact_path(ctx, paths.REPORT).write_text(text, encoding="utf-8")
    artifact_path(ctx, paths.MODEL_CARD).write_text(model_card(rec, session, ctx.answers), encoding="utf-8")
    return ToolOutput(summary={"report": paths.REPORT, "model_card": paths.MODEL_CARD, "report_chars": len(text)},
                      files={"report": paths.REPORT, "model_card": paths.MODEL_CARD})
