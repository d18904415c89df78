"""report.md for a model trained on the cluster (train_on_cluster): what it scored, and which model
saw which rows (XGBoost every training row through xgboost.dask, the linear model a sample).

write_report hands over here when the session has a cluster training record and no task.json (the
in-memory workflow did not run)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from dsagent.tools.markdown import md_cell
from dsagent.tools.registry import ToolContext, ToolOutput

RECORD = "cluster_training.json"  # written by dsagent.tools.dask_train


def cluster_record(artifacts_dir: Path) -> dict[str, Any] | None:
    path = Path(artifacts_dir) / RECORD
    return json.loads(path.read_text()) if path.is_file() else None


def _profile_lines(artifacts_dir: Path) -> list[str]:
    """The Dask profile's facts, with what is exact and what approximate (tools/dask_profile.py)."""
    path = Path(artifacts_dir) / "profile.json"
    prof = json.loads(path.read_text()) if path.is_file() else {}
    if prof.get("engine") != "dask":
        return []
    lines = ["## Data (profiled on the cluster)", "",
             f"- {prof['n_rows']:,} rows (exact) x {prof['n_cols']} columns in {prof['partitions']} partition(s); "
             f"{md_cell(prof.get('why_dask', ''), 200)}.",
             "- Exact: row count, missing values, the target's class counts. **Approximate**: quantiles ("
             + md_cell(prof["approximate"]["quantiles"], 120) + ") and distinct counts ("
             + md_cell(prof["approximate"]["n_unique"], 120) + ").",
             "- Not computed on the cluster: " + ", ".join(prof.get("not_computed", [])) + ".", "",
             "| column | kind | missing | distinct (approx.) | median (approx.) |", "|---|---|---|---|---|"]
    for c in prof["columns"][:40]:
        median = (c.get("quantiles_approx") or {}).get("0.5")
        lines.append(f"| {md_cell(c['name'])} | {c['kind']} | {c['missing_frac']:.1%} | {c['n_unique']:,} | "
                     + (f"{median:.4g}" if median is not None else "") + " |")
    return lines + [""]


def _explanation_lines(artifacts_dir: Path) -> list[str]:
    """The shipped model's permutation importance on a test sample and the XGBoost booster's gain
    (tools/dask_deliverables.py), the top 10 of each."""
    path = Path(artifacts_dir) / "explanation.json"
    expl = json.loads(path.read_text()) if path.is_file() else None
    if not expl:
        return []
    gain = expl.get("booster_gain") or {}
    lines = ["## What drives the predictions", "", md_cell(expl.get("computed_on", ""), 300) + ".", "",
             f"| feature | permutation importance ({expl.get('scoring')} rise) | share of the booster's gain |", "|---|---|---|"]
    for r in expl["permutation_importance"][:10]:
        lines.append(f"| {md_cell(r['feature'])} | {r['importance']:.4g} ± {r['std']:.2g} | {gain.get(r['feature'], 0):.1%} |")
    return lines + ["", "Importance is association with the predictions, not causation. The monitoring plan "
                    "(monitoring.md) tracks every feature, the predictions and the labels.", ""]


def write_cluster_report(ctx: ToolContext, rec: dict[str, Any]) -> ToolOutput:
    session = json.loads((ctx.session_dir / "session.json").read_text())
    metrics = sorted({m for s in rec["scores"].values() for m in s if m != "ci"})
    seen, shipped = rec["rows_seen"], rec.get("shipped") or {}
    models = [name for name in seen if name != "test"]
    lines = [f"# Report: predict {md_cell(rec['target'])} (trained on a Dask cluster)", "",
             "## Summary", "",
             f"- Task: {rec['task']} prediction of `{md_cell(rec['target'])}`, data in {rec['partitions']} partition(s).",
             f"- Shipped: **{rec['best']}**, the best on the {rec.get('chosen_on', 'test rows')}"
             + (f"; saved as `{shipped['file']}` (predicts on raw rows without a cluster: `dsagent predict`)." if shipped else "."),
             "", *_profile_lines(ctx.artifacts_dir),
             "## Test results (scored partition by partition)", "",
             "| model | " + " | ".join(metrics) + f" | 95% CI of {rec.get('metric', '')} | validation {rec.get('metric', '')} |",
             "|---" * (len(metrics) + 3) + "|"]
    for name, s in rec["scores"].items():
        ci = s.get("ci") or ["", ""]
        valid = (rec.get("validation_scores") or {}).get(name, {}).get(rec.get("metric"), "")
        lines.append(f"| {name} | " + " | ".join(str(s.get(m, "")) for m in metrics) + f" | {ci[0]} - {ci[1]} | {valid} |")
    lines += ["", "## Which model saw which rows", "", "| model | rows | what it saw |", "|---|---|---|"]
    for name in models:
        extra = f" (+{seen[name]['validation_rows']:,} validation rows for early stopping)" if "validation_rows" in seen[name] else ""
        lines.append(f"| {name} | {seen[name]['rows']:,}{extra} | {md_cell(seen[name]['saw'], 200)} |")
    lines += [f"| (test) | {seen['test']['rows']:,} | {md_cell(seen['test']['split'], 300)} |", "",
              *_explanation_lines(ctx.artifacts_dir),
              "## Limitations", "",
              f"- Features: the numeric and boolean columns ({len(rec['features'])}); left out: "
              + (", ".join(f"`{md_cell(c)}`" for c in rec["left_out"]) or "none") + "; row keys (hashed for the split, "
              "never features): " + (", ".join(f"`{md_cell(c)}`" for c in rec.get("key_columns") or []) or "none (the whole row)") + ".",
              "- No cross-validation or tuning on the cluster yet; the explanation and the monitoring plan are computed "
              f"from samples ({rec.get('test_sample_rows', 0):,} test rows, the training sample), and notebook.ipynb re-creates "
              "the model on a sample that fits one process (its scores are the sample's, not these); the test "
              f"predictions of the shipped model are Parquet parts (`{rec['predictions']}/`).", "",
              "## Reproducibility", "", "```", f"data:    {session.get('data_path')}",
              f"sha256:  {session.get('data_sha256')}", f"seed:    {ctx.seed}", "```", ""]
    (ctx.artifacts_dir / "report.md").write_text("\n".join(lines), encoding="utf-8")
    files = {"report": "report.md"}
    if shipped:
        files["model_card"] = _model_card(ctx, rec, shipped)
    return ToolOutput(summary={"report": "report.md", "best": rec["best"]}, files=files)


def _model_card(ctx: ToolContext, rec: dict[str, Any], shipped: dict[str, Any]) -> str:
    s = rec["scores"][rec["best"]]
    metric = rec.get("metric", "")
    lines = [f"# Model card: {rec['best']}", "",
             f"- Predicts `{md_cell(rec['target'])}` ({rec['task']}); family {shipped['family']}, trained on "
             f"{shipped['rows_seen']:,} rows ({md_cell(rec['rows_seen'][rec['best']]['saw'], 200)}).",
             f"- Test {metric}: {s.get(metric)} (95% CI {s['ci'][0]} - {s['ci'][1]}) on {rec['rows_seen']['test']['rows']:,} "
             f"hash-split test rows; baseline {rec['scores']['baseline'].get(metric)}.",
             f"- Inputs: {', '.join(f'`{md_cell(c)}`' for c in rec['features'])}.",
             "- Use: `dsagent predict SESSION rows.csv -o out.csv` (or a directory of Parquet parts: Parquet parts out).",
             "- Monitoring: monitoring.md (`dsagent monitor SESSION batch.csv`); its references come from samples of "
             "the training and test rows.",
             "- Not checked: fairness by group, calibration.", ""]
    (ctx.artifacts_dir / "model_card.md").write_text("\n".join(lines), encoding="utf-8")
    return "model_card.md"
