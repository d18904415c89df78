"""What a supervised task type writes, computes and checks, by its prediction shape: the defaults
behind the TaskType methods (tools/task_types.py) that the report, the model card, evaluation and
monitoring ask instead of branching on "binary" / "multiclass" / "regression" themselves. A plugin
task type overrides the method to change what its report or monitoring says.

Imported only by those methods (numpy, pandas and report helpers are loaded by the tools anyway).
"""

from __future__ import annotations

import math
from typing import Any, NamedTuple

import numpy as np
import pandas as pd

from dsagent.tools.markdown import md_cell


def fmt(v: Any, digits: int = 4) -> str:
    if v is None or (isinstance(v, float) and not math.isfinite(v)):
        return "n/a"
    if isinstance(v, (float, np.floating)):
        return f"{v:.{digits}f}"
    return str(v)


def pct(v: float | None) -> str:
    return "n/a" if v is None or not math.isfinite(v) else f"{v:.1%}"


class SegmentColumn(NamedTuple):
    """One column of the report's per-group table, also judged for gaps between groups."""

    key: str
    label: str  # in the gap notes
    header: str  # in the table
    rate: bool  # a share (percent, gaps in percentage points) or a value in the target's units


SEGMENT_COLUMNS: dict[str, tuple[SegmentColumn, ...]] = {
    "regression": (SegmentColumn("mae", "MAE", "MAE", False),
                   SegmentColumn("mean_residual", "mean residual", "mean residual (actual - predicted)", False)),
    "binary": (SegmentColumn("accuracy", "accuracy", "accuracy", True),
               SegmentColumn("selection_rate", "selection rate", "selection rate", True),
               SegmentColumn("tpr", "true positive rate", "true positive rate", True),
               SegmentColumn("fpr", "false positive rate", "false positive rate", True)),
    "multiclass": (SegmentColumn("accuracy", "accuracy", "accuracy", True),),
}


def segment_stats(prediction: str, y: np.ndarray, pred: np.ndarray, decision: np.ndarray) -> dict[str, Any]:
    """The SEGMENT_COLUMNS values of one group's test rows."""
    if prediction == "regression":
        resid = y - pred
        return {"mae": float(np.abs(resid).mean()), "mean_residual": float(resid.mean())}
    row: dict[str, Any] = {"accuracy": float((decision == y).mean())}
    if prediction == "binary":
        pos, neg = y == 1, y == 0
        row["selection_rate"] = float(decision.mean())
        row["tpr"] = float(decision[pos].mean()) if pos.any() else None
        row["fpr"] = float(decision[neg].mean()) if neg.any() else None
    return row


def practical_meaning(prediction: str, task: dict[str, Any], ev: dict[str, Any], answers: dict[str, Any],
                      view) -> list[str]:
    """The report's business-framing lines that say what the test score means in practice."""
    out: list[str] = []
    if prediction == "binary":
        cfp, cfn = answers.get("cost_fp"), answers.get("cost_fn")
        th = ev.get("threshold") or {}
        if cfp is not None or cfn is not None:
            out.append(f"- **Costs of mistakes:** a false positive costs {cfp if cfp is not None else 'n/a'}, a missed "
                       f"positive {cfn if cfn is not None else 'n/a'}; the decision threshold is set from them.")
        else:
            out.append("- **Costs of mistakes:** not stated, so false positives and misses are weighed equally (F1).")
        at = th.get("test_metrics_at_threshold") or {}
        if th and at:
            out.append(f"- **What it means in practice:** flagging rows with P(`{md_cell(task['positive_class'])}`) >= "
                       f"{th['threshold']:.3f} finds {pct(at.get('recall'))} of the actual positives, and "
                       f"{pct(at.get('precision'))} of the flagged rows are right (test split).")
        if view is not None:
            fp = int(((view.decision == 1) & (view.y == 0)).sum())
            fn = int(((view.decision == 0) & (view.y == 1)).sum())
            out.append(f"- On the {len(view.y)} test rows that is {fp} false positive(s) and {fn} miss(es)"
                       + (f", a cost of {fp * (cfp or 1):g} + {fn * (cfn or 1):g} = {fp * (cfp or 1) + fn * (cfn or 1):g}"
                          if cfp is not None or cfn is not None else "") + ".")
    elif prediction == "regression":
        mae = ev.get("test_metrics", {}).get("mae")
        if mae is not None:
            out.append(f"- **What it means in practice:** a typical prediction is off by about {fmt(mae, 2)} "
                       f"(mean absolute error, in the units of `{md_cell(task['target'])}`).")
    else:
        acc = ev.get("test_metrics", {}).get("accuracy")
        if acc is not None:
            out.append(f"- **What it means in practice:** {pct(acc)} of test rows get the right class; "
                       "the probabilities say how sure each call is.")
    return out


def evaluation_plots(prediction: str, ctx, task, model_name: str, y_test: np.ndarray, pred: np.ndarray,
                     proba: np.ndarray | None, threshold: dict[str, Any] | None, record: dict[str, Any]) -> dict[str, str]:
    """evaluate_model's plots (label -> path under artifacts/); adds the threshold and the confusion
    matrix to its record."""
    from dsagent.tools import paths, plots
    from dsagent.tools.metric_table import METRICS, scores_of
    from dsagent.tools.registry import artifact_path

    plot_dir = paths.PLOTS_DIR
    files: dict[str, str] = {}
    if prediction != "regression":
        from sklearn.metrics import confusion_matrix

        labels = task["classes"]
        if threshold is not None:
            threshold["test_metrics_at_threshold"] = scores_of({n: m for n, m in METRICS.items() if "binary" in m.tasks}, y_test, pred, None)
            record["threshold"] = threshold
            files["roc_pr"] = f"{plot_dir}/roc_pr.png"
            plots.roc_pr(y_test, proba[:, 1], artifact_path(ctx, files["roc_pr"]), labels[1])
            files["calibration"] = f"{plot_dir}/calibration.png"
            plots.calibration(y_test, proba[:, 1], artifact_path(ctx, files["calibration"]))
        cm = confusion_matrix(y_test, pred, labels=list(range(len(labels))))
        record["confusion_matrix"] = {"labels": labels, "matrix": cm.tolist()}
        files["confusion_matrix"] = f"{plot_dir}/confusion_matrix.png"
        plots.confusion(cm, labels, artifact_path(ctx, files["confusion_matrix"]), f"Confusion matrix — {model_name} (test)")
    else:
        files["regression"] = f"{plot_dir}/regression.png"
        plots.regression(y_test, pred, artifact_path(ctx, files["regression"]), task["target"])
    return files


def report_plots(prediction: str, ctx, task: dict[str, Any], view) -> dict[str, tuple[str, str]]:
    """Plots the report draws from the test predictions itself: label -> (path under artifacts/, caption)."""
    if prediction != "multiclass" or view is None or view.proba is None:
        return {}
    from dsagent.tools import paths, plots
    from dsagent.tools.registry import artifact_path

    rel = f"{paths.PLOTS_DIR}/multiclass_curves.png"
    try:
        plots.multiclass_curves(view.y, view.proba, task["classes"], artifact_path(ctx, rel))
    except ValueError:
        return {}
    return {"multiclass_curves": (rel, "ROC per class and calibration")}


def model_output(prediction: str, task: dict[str, Any]) -> str:
    """The model card's sentence on what the model outputs."""
    if prediction == "regression":
        return "a predicted value."
    return "a class and one probability per class (" + ", ".join(f"`{md_cell(c)}`" for c in task["classes"][:10]) + ")."


def row_loss(prediction: str, y: np.ndarray, pred: np.ndarray, proba: np.ndarray | None) -> np.ndarray:
    """Each test row's loss (evaluation's worst segments): absolute error, or the log-loss of the true class."""
    if prediction == "regression":
        return np.abs(y - pred)
    return -np.log(np.clip(proba[np.arange(len(y)), y], 1e-12, 1))


def monitored_predictions(prediction: str, task: dict[str, Any], pred: np.ndarray,
                          proba: np.ndarray | None) -> tuple[pd.Series, str]:
    """The model output that monitoring keeps a reference distribution of (text values: categorical),
    and what it is."""
    if prediction == "binary":
        return pd.Series(proba[:, 1]), f"P({task['classes'][1]})"
    if prediction == "multiclass":
        return pd.Series([task["classes"][int(i)] for i in pred]), "predicted class"
    return pd.Series(pred), f"predicted {task['target']}"


def monitored_output(prediction: str, preds: pd.DataFrame, manifest: dict[str, Any]) -> pd.Series:
    """The column of `dsagent predict`'s output that monitoring compares with the reference."""
    if prediction == "binary":
        return preds[f"proba_{manifest['classes'][1]}"]
    return preds["prediction"] if prediction == "regression" else preds["prediction"].astype(str)
