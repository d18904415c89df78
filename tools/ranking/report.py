"""The ranking deliverables: report (leaderboard, test metrics with CIs against the baselines,
NDCG by group size, the worst groups, what drives the score), the model card, and a notebook that
re-creates the split and the chosen model's test score from the raw file."""

from __future__ import annotations

from typing import Any

from dsagent.tools.defaults import floor_markdown
from dsagent.tools.markdown import md_cell
from dsagent.tools.ranking.metrics import METRIC_NAMES

LABELS = {"ndcg": "NDCG@{k}", "map": "MAP@{k}", "mrr": "MRR", "precision": "precision@{k}"}


def _f(v: Any, digits: int = 4) -> str:
    return "n/a" if v is None or v != v else f"{v:.{digits}f}" if isinstance(v, float) else str(v)


def _ci(s: dict[str, Any], m: str) -> str:
    ci = s.get(f"{m}_ci")
    return f"{_f(s[m])} ({_f(ci[0])} to {_f(ci[1])})" if ci else _f(s[m])


def report_md(rec: dict[str, Any], board: list[dict[str, Any]], ev: dict[str, Any], goal: str) -> str:
    k = rec["k"]
    lab = {m: v.format(k=k) for m, v in LABELS.items()}
    sp = rec["split"]
    t = ev["test"]
    lines = [f"# Ranking report: {md_cell(rec['target'], 60)} within {md_cell(rec['group_column'], 60)}", "",
             f"**Goal:** {md_cell(goal, 300)}", "",
             "## Data and task", "",
             f"- {rec['rows']:,} labelled rows in {rec['n_groups']:,} groups of `{md_cell(rec['group_column'], 40)}` "
             f"(median {rec['group_size']['median']:g} rows, largest {rec['group_size']['max']}).",
             f"- Relevance `{md_cell(rec['target'], 40)}` ({rec['grades']['mapping']}); a row counts as relevant for MAP, MRR "
             f"and precision at grade {rec['relevance_threshold']:g} or more ({rec['relevant_share']:.0%} of rows).",
             f"- Features: {', '.join(f'`{md_cell(c, 30)}`' for c in rec['categorical'] + rec['numeric'])}."]
    lines += [f"- Left out: {md_cell(d, 80)}." for d in rec["dropped"]] + [f"- {md_cell(n, 200)}." for n in rec["notes"]]
    lines += [f"- Split by group (GroupShuffleSplit): {sp['train_groups']} training groups, {sp['test_groups']} test groups "
              "never seen in training or cross-validation; folds are GroupKFold, so no group is cut between folds.", "",
              "Metrics are computed per group and averaged over groups; rows are ordered by score (ties in input order); "
              f"NDCG uses the gain 2^grade - 1; groups with no relevant row ({t['groups_without_relevant']} in test) are left "
              f"out; precision@{k} divides by min({k}, group size).", "",
              "## Cross-validation (training groups only)", "",
              f"| candidate | {lab['ndcg']} | std | {lab['map']} | MRR | {lab['precision']} | seconds |",
              "|---|---|---|---|---|---|---|"]
    for r in board:
        if "skipped" in r:
            lines.append(f"| {r['name']} | skipped: {md_cell(r['skipped'], 60)} | | | | | |")
        else:
            lines.append(f"| {r['name']}{' (baseline)' if r.get('baseline') else ''} | {_f(r['cv_ndcg'])} | "
                         f"{_f(r['cv_ndcg_std'])} | {_f(r['cv_map'])} | {_f(r['cv_mrr'])} | {_f(r['cv_precision'])} | {r['seconds']} |")
    lines += ["", f"## Test ({ev['test_rows']:,} rows, {t['groups']} scored groups; 95% CI from 1000 bootstrap resamples of groups)", "",
              f"Chosen: **{ev['model']}** ({md_cell(ev.get('why', 'best cross-validated ' + lab['ndcg']), 400)})"
              + (f"; fitted on {ev['fit_rows']:,} of the {ev['train_rows']:,} training rows (whole groups): what the time "
                 "budget afforded." if ev.get("fit_rows", 0) < ev.get("train_rows", 0) else "."), ""]
    if ev.get("params"):
        trials = next((r.get("trials") for r in board if r["name"] == ev["model"]), None)
        lines += [f"Tuned settings (Optuna{f', the best of {trials} trials' if trials else ''} on the same training-group "
                  "folds, so its CV score is slightly optimistic against the untuned candidates'): "
                  + ", ".join(f"{k}={_f(v, 4) if isinstance(v, float) else v}" for k, v in sorted(ev["params"].items())) + ".", ""]
    lines += floor_markdown(ev.get("strong_defaults"), ev["model"])
    lines += ["| model | " + " | ".join(lab[m] for m in METRIC_NAMES) + " |", "|---|---|---|---|---|"]
    for name, s in ev["compared"].items():
        lines.append(f"| {name} | " + " | ".join(_ci(s, m) for m in METRIC_NAMES) + " |")
    lines += ["", f"## {lab['ndcg']} by group size", "", "| group size | groups | NDCG | MRR |", "|---|---|---|---|"]
    lines += [f"| {b['size']} | {b['groups']} | {_f(b['ndcg'])} | {_f(b['mrr'])} |" for b in ev["by_group_size"]]
    lines += ["", "## Worst test groups", "", f"| group | rows | relevant | {lab['ndcg']} | MRR |", "|---|---|---|---|---|"]
    lines += [f"| {md_cell(w['group'], 40)} | {w['size']} | {w['relevant']} | {_f(w['ndcg'])} | {_f(w['mrr'])} |"
              for w in ev["worst_groups"]]
    if ev["importances"]:
        lines += ["", "## What drives the score", "", "| feature | importance (gain share) |", "|---|---|"]
        lines += [f"| {md_cell(i['feature'], 40)} | {i['importance']:.3f} |" for i in ev["importances"]]
    lines += ["", "## Deliverables", "", "- `model/model.skops` + manifest; `dsagent predict SESSION rows.csv -o out.csv` writes "
              f"`score` and `rank` (1 = top within its `{md_cell(rec['group_column'], 40)}`), one row per input row, in input order.",
              "- `monitoring.md`: score drift and, with labels, NDCG per batch (`dsagent monitor SESSION batch.csv`).",
              "- `notebook.ipynb` re-creates the split and the chosen model's test score.", ""]
    return "\n".join(lines)


def model_card_md(rec: dict[str, Any], ev: dict[str, Any]) -> str:
    k, t = rec["k"], ev["test"]
    return "\n".join([
        f"# Model card: {ev['model']} ranking {md_cell(rec['target'], 60)} within {md_cell(rec['group_column'], 60)}", "",
        "## Intended use", "",
        f"Orders the rows of one `{md_cell(rec['group_column'], 40)}` (a query, user or session) by predicted relevance. "
        "The score is only meaningful for comparing rows of the same group: it is not a probability nor a rating.", "",
        "## Performance (untouched test groups)", "",
        f"- NDCG@{k} {_ci(t, 'ndcg')}; MAP@{k} {_ci(t, 'map')}; MRR {_ci(t, 'mrr')}; precision@{k} {_ci(t, 'precision')}.",
        f"- Random ordering: NDCG@{k} {_f(ev['compared'].get('random', {}).get('ndcg'))}; best single feature: "
        f"{_f(ev['compared'].get('single_feature', {}).get('ndcg'))}.",
        f"- Trained on {ev['fit_rows']:,} of the {ev['train_rows']:,} training rows (whole training groups"
        f"{'; fewer rows: the time budget' if ev['fit_rows'] < ev['train_rows'] else ''}); the saved model is the one scored on test.", "",
        "## Limits", "",
        "- Groups unlike the training ones (far larger, new kinds of query or user) are not covered by the test score; "
        "see NDCG by group size in the report.",
        "- Relevance labels from clicks or ratings carry position and selection bias; the model learns it too.",
        f"- Groups with no relevant row cannot be scored ({t['groups_without_relevant']} in test).",
        "- Not for decisions about individuals without review: it orders options, it does not judge them.", ""])


def notebook(rec: dict[str, Any], data_path: str, sha256: str | None, chosen: str, test_ndcg: float,
             max_fit_rows: int | None = None, params: dict[str, Any] | None = None) -> Any:
    """Re-creates the split from the raw file (checking its sha256), refits the chosen candidate (with
    its tuned settings) on the training groups and asserts its test NDCG@k."""
    from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

    spec = {"target": rec["target"], "group_column": rec["group_column"], "k": rec["k"],
            "relevance_threshold": rec["relevance_threshold"], "drop_columns": rec.get("drop_columns", [])}
    cells = [
        new_markdown_cell(f"# Ranking {rec['target']} within {rec['group_column']}\n\nRe-creates the dsagent session: the "
                          "group-aware split, the chosen candidate fitted on the training groups, and its test NDCG@"
                          f"{rec['k']}. It needs the `dsagent` package (its ranking library)."),
        new_code_cell("import hashlib\nfrom dsagent.tools.data import load_table\n"
                      f"DATA = {data_path!r}\n"
                      + (f"assert hashlib.sha256(open(DATA, 'rb').read()).hexdigest() == {sha256!r}, 'the data file changed'\n" if sha256 else "")
                      + "df, _ = load_table(DATA)\ndf.shape"),
        new_code_cell("from dsagent.tools.ranking.task import RankingSpec, RankingTask\n"
                      f"task = RankingTask(RankingSpec(**{spec!r}))\nrec = task.define(df, seed={rec['seed']})\n"
                      "{k: rec['split'][k] for k in ('train_groups', 'test_groups')}"),
        new_code_cell(f"ev, fitted, per_group = task.evaluate(df, rec, [], {chosen!r}, seed={rec['seed']}, "
                      f"max_fit_rows={max_fit_rows!r}, params={params!r})\n"
                      f"assert abs(ev['test']['ndcg'] - {test_ndcg!r}) < 1e-6, 'the test score differs from the session'\n"
                      "ev['test']"),
        new_code_cell("per_group.sort_values('ndcg').head(10)"),
    ]
    nb = new_notebook(cells=cells)
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    return nb
