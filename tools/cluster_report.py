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


def write_cluster_report(ctx: ToolContext, rec: dict[str, Any]) -> ToolOutput:
    session = json.loads((ctx.session_dir / "session.json").read_text())
    metrics = sorted({m for s in rec["scores"].values() for m in s})
    seen = rec["rows_seen"]
    lines = [f"# Report: predict {md_cell(rec['target'])} (trained on a Dask cluster)", "",
             "## Summary", "",
             f"- Task: {rec['task']} prediction of `{md_cell(rec['target'])}`, data in {rec['partitions']} partition(s).",
             f"- Best on the test rows: **{rec['best']}**; the model file is `{rec['model_file']}` (XGBoost JSON).",
             "", "## Test results (scored partition by partition)", "",
             "| model | " + " | ".join(metrics) + " |", "|---" * (len(metrics) + 1) + "|"]
    for name, s in rec["scores"].items():
        lines.append(f"| {name} | " + " | ".join(str(s.get(m, "")) for m in metrics) + " |")
    lines += ["", "## Which model saw which rows", "", "| model | rows | what it saw |", "|---|---|---|"]
    for name in ("xgboost_dask", "linear_sample"):
        extra = f" (+{seen[name]['validation_rows']:,} validation rows for early stopping)" if "validation_rows" in seen[name] else ""
        lines.append(f"| {name} | {seen[name]['rows']:,}{extra} | {md_cell(seen[name]['saw'], 200)} |")
    lines += [f"| (test) | {seen['test']['rows']:,} | {md_cell(seen['test']['split'], 300)} |", "",
              "## Limitations", "",
              f"- Features: the numeric and boolean columns ({len(rec['features'])}); left out: "
              + (", ".join(f"`{md_cell(c)}`" for c in rec["left_out"]) or "none") + ".",
              "- This first slice of cluster training saves XGBoost's own model file and test predictions as Parquet "
              f"parts (`{rec['predictions']}/`); no notebook, explanation or monitoring plan is built from it yet.", "",
              "## Reproducibility", "", "```", f"data:    {session.get('data_path')}",
              f"sha256:  {session.get('data_sha256')}", f"seed:    {ctx.seed}", "```", ""]
    (ctx.artifacts_dir / "report.md").write_text("\n".join(lines), encoding="utf-8")
    return ToolOutput(summary={"report": "report.md", "best": rec["best"]}, files={"report": "report.md"})
