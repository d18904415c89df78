"""write_notebook: a clean narrative notebook that re-creates the chosen model from the raw data,
executed with nbclient in a fresh ipykernel and saved with its outputs.

The notebook is written from the session's records (task.json, leaderboard.json,
evaluation.json, profile.json), not from the transcript: it explains the problem, what the data
showed and each decision with its reason, then loads the file (checking its sha256), re-creates
the split with the same seed, builds the chosen Pipeline with the chosen hyperparameters, fits,
scores the test split and plots. Its last check asserts that the test metric equals the run's.
"""

from __future__ import annotations

import json
import math
import os
import pprint
import re
import time
from typing import Any

import nbformat
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

from dsagent.tools import paths
from dsagent.tools.markdown import md_cell
from dsagent.tools.notebook_kernel import execute
from dsagent.tools.registry import ToolContext, ToolError, ToolOutput, artifact_path, read_json, tool
from dsagent.tools.schemas import Evaluation, Leaderboard, TaskSpec
from dsagent.tools.task_types import get_task_type, prediction_of, shape_type

SCORE_LINE = re.compile(r"^test (\w+): (-?(?:[0-9.]+(?:e-?\d+)?|nan|inf))$", re.M)
METRIC_REASON = {
    "roc_auc": "ROC-AUC ranks positives above negatives regardless of the threshold; the classes are not rare, so it is informative",
    "pr_auc": "the positive class is rare, and PR-AUC (average precision) focuses on how well the rare class is found, where ROC-AUC looks optimistic",
    "log_loss": "log-loss rewards well-calibrated probabilities for every class, which matters when the probabilities feed a decision",
    "rmse": "RMSE is in the target's own units and weighs large errors more than small ones",
}
SPLIT_REASON = {
    "stratified": "a stratified random split keeps the class proportions equal in training and test",
    "random": "a random split (the target is continuous, so there are no classes to stratify)",
    "time": "a time-ordered split: the latest rows are the test set, because the model will predict the future",
    "group": "a grouped split: every group lies on one side only, so the test measures performance on unseen groups",
}


def _load_json(ctx: ToolContext, name: str) -> Any:
    return read_json(ctx.artifacts_dir / name, {})


def _f(v: Any, digits: int = 4) -> str:
    return f"{v:.{digits}f}" if isinstance(v, (int, float)) and v is not None and math.isfinite(v) else "n/a"


def _data_findings(profile: dict[str, Any], task: dict[str, Any]) -> str:
    lines = ["## 2. What the data showed", ""]
    if profile:
        lines.append(f"- {profile.get('n_rows')} rows and {profile.get('n_cols')} columns; "
                     f"{profile.get('duplicate_rows', 0)} exact duplicate rows.")
        missing = sorted((c for c in profile.get("columns", []) if c.get("missing_frac", 0) > 0), key=lambda c: -c["missing_frac"])
        if missing:
            lines.append("- Missing values: " + ", ".join(f"`{md_cell(c['name'])}` {c['missing_frac']:.1%}" for c in missing[:8])
                         + ". The Pipeline imputes them (median for numbers, a `__missing__` level or code for categories) "
                           "and adds missing-value indicators for numbers missing in at least 5 training rows, so "
                           "missingness itself can carry signal.")
        tgt = profile.get("target") or {}
        if tgt.get("class_counts"):
            lines.append("- Target classes: " + ", ".join(f"`{md_cell(k)}` {v}" for k, v in list(tgt["class_counts"].items())[:10]) + ".")
        for w in (profile.get("warnings") or [])[:6]:
            lines.append(f"- {md_cell(w, 200)}")
        if profile.get("leakage_suspects"):
            lines.append("- Possible leaks (strong on their own; check they are known at prediction time): "
                         + ", ".join(f"`{md_cell(s.get('column', s))}`" + ("" if s.get("drop", True) else " (kept)")
                                     for s in profile["leakage_suspects"][:5]) + ".")
    dropped = task.get("dropped") or []
    lines.append("- Columns left out of the features: " + (", ".join(f"`{md_cell(d['column'])}` ({md_cell(d['reason'], 80)})" for d in dropped)
                                                          if dropped else "none") + ".")
    kinds: dict[str, list[str]] = {}
    for col, kind in task["features"].items():
        kinds.setdefault(kind, []).append(col)
    for f in (task.get("derived") or {}).get("features") or []:  # the Pipeline computes these from raw columns
        name, expression = (part.strip() for part in f.split("=", 1))
        lines.append(f"- Derived feature `{md_cell(name, 60)}` = `{md_cell(expression, 200)}` (computed inside the Pipeline, "
                     "fitted on training rows only; see DERIVED below).")
    lines.append("- Features used: " + "; ".join(f"{k}: " + ", ".join(f"`{md_cell(c, 40)}`" for c in cols[:12])
                                                 + (" ..." if len(cols) > 12 else "") for k, cols in kinds.items()) + ".")
    return "\n".join(lines)


def _fit_rows_code(ev: dict[str, Any], split: dict[str, Any]) -> str:
    """When the run fitted the final model on a subsample (its time budget could not afford every
    training row), the same deterministic subsample, so the notebook rebuilds the same model."""
    fit_rows, n_train = ev.get("fit_rows"), ev.get("n_train")
    if not fit_rows or not n_train or fit_rows >= n_train:
        return ""
    why = "time budget"
    if ev.get("grown"):
        why = (f"{ev['grown']['es_rows']} of the others chose the number of boosting rounds by early stopping; "
               "SPEC holds the result")
    return ("from dsagent.tools.task_data import subsample\n\n"
            f"# The run fitted the final model on {fit_rows} of the {n_train} training rows ({why}).\n"
            f"X_train, y_train = subsample(X_train, y_train, {{'task': TASK, 'split': {{'kind': {split['kind']!r}}}}}, "
            f"{fit_rows}, SEED)\n\n")


def _model_fit_code(ev: dict[str, Any], task: dict[str, Any], X: str = "X_train", y: str = "y_train") -> str:
    """One Pipeline fitted on the rows named `X`, `y` (the training rows), or (a bagged run) the same
    k fold models averaged."""
    n_classes = len(task["classes"] or [])
    derived = ", derived=DERIVED" if task.get("derived") else ""
    folds = (ev.get("bagged") or {}).get("folds")
    if folds:
        return ("from dsagent.tools.bagging import fit_bagged\n\n"
                f"# A bag: the model above fitted on each of {folds} folds' training rows, predictions averaged.\n"
                f"model = fit_bagged(SPEC, FEATURES, {X}, {y}, TASK, SEED, n_classes={n_classes}, "
                f"folds={folds}{derived})" + _derived_look(task))
    return (f"model = build_pipeline(SPEC, FEATURES, {X}, TASK, SEED, n_classes={n_classes}{derived})\n"
            f"model.fit({X}, {y})" + _derived_look(task))


def _refit_cells(ev: dict[str, Any], task: dict[str, Any], model_path: str) -> list:
    """When the shipped model was refitted on every labelled row (tools/refit_all.py): the same fit
    on the training and test rows together, and how its test predictions compare with the saved
    model's (the refit has seen those rows: this checks the re-creation, it is not a score)."""
    rows = (ev.get("refit_all_rows") or {}).get("rows")
    if not rows:
        return []
    fit = _model_fit_code(ev, task, "X_all", "y_all")
    compare = ("np.abs(saved.predict(X_test) - model.predict(X_test)).max()" if prediction_of(task["task"]) == "regression"
               else "np.abs(saved.predict_proba(X_test) - model.predict_proba(X_test)).max()")
    return [
        new_markdown_cell(
            "## 8. The shipped model: the same configuration refitted on every labelled row\n\n"
            f"The score above is the honest estimate: a model fitted on the training rows only, scored once on rows it "
            f"never saw. The model that ships is the same configuration (hyperparameters"
            + (", decision threshold" if (ev.get("threshold") or {}).get("threshold") is not None else "")
            + f") fitted again on all {rows} labelled rows, test rows included: more data, nothing chosen on the test "
            "rows. It is not scored again (no rows are left that it has not seen)."),
        new_code_cell(
            "X_all, y_all = pd.concat([X_train, X_test]), np.concatenate([y_train, y_test])\n" + fit + "\n\n"
            "from dsagent.tools.model_io import load_model\n\n"
            f"saved, _ = load_model(Path({model_path!r}))  # where the session saved it\n"
            f"print(f'largest difference from the saved model on the test rows: {{{compare}:.3g}}')"),
    ]


def _derived_look(task: dict[str, Any]) -> str:
    """With derived features: their values as the fitted Pipeline computes them from raw test rows."""
    if not (task.get("derived") or {}).get("features"):
        return ""
    return ("\n\n# The derived features, as the fitted Pipeline's first step computes them from the raw columns:\n"
            "from dsagent.tools.derived_step import derived_values\n\n"
            "derived_values(model, X_test).head()")


def _derived_code(task: dict[str, Any]) -> str:
    """INPUTS (the raw columns the model reads) and, with derived features, DERIVED: the
    expressions the Pipeline's first step computes from those columns (tools/derived.py)."""
    from dsagent.tools.task_data import input_columns

    derived = task.get("derived")
    if not derived:
        return "INPUTS = list(FEATURES)\n"
    lines = ["# Derived features, computed inside the Pipeline from raw columns (fitted on training rows only):"]
    lines += [f"#   {f}" for f in derived["features"]]
    if derived.get("select"):
        lines.append("# Wide data: near-constant, duplicate and correlated columns (and, when 'importance' is on, low-importance"
                     " ones) are judged on the training rows and neutralised by the Pipeline's first step (tools/select_step.py).")
    # What build_pipeline reads; a Python literal (None, not null).
    if derived.get("text") == "embed":
        lines.append("# Text columns: sentence embeddings (all-MiniLM-L6-v2, loaded offline from its PyPI package), chosen"
                     " over TF-IDF by CV on the training rows (tools/text_choice.py).")
    shown = {k: derived[k] for k in ("features", "time_column", "select", "text") if k in derived}
    return ("\n".join(lines) + f"\nDERIVED = {pprint.pformat(shown, width=100)}\n"
            f"INPUTS = {json.dumps(input_columns(task))}  # the features and the columns only derived features read\n")


def _split_code(split: dict[str, Any]) -> str:
    head = ("from sklearn.model_selection import GroupShuffleSplit, train_test_split\n\n"
            "labelled = np.flatnonzero(df[TARGET].notna().to_numpy())  # rows without a target cannot be scored\n"
            "y_raw = df[TARGET].iloc[labelled]\n"
            "local = np.arange(len(labelled))\n")
    if split["kind"] == "time":
        # The same reading of times as define_task's split (tools/timestamps.py), so the rows agree.
        body = ("from dsagent.tools.timestamps import parse_times\n\n"
                f"times = parse_times(df[{split['time_column']!r}].iloc[labelled])\n"
                "order = np.argsort(times.to_numpy(), kind='stable')\n"
                f"cut = int(round(len(local) * (1 - {split['test_size']})))\n"
                "train_local, test_local = order[:cut], np.sort(order[cut:])  # training rows in time order\n")
    elif split["kind"] == "group":
        body = (f"groups = df[{split['group_column']!r}].iloc[labelled].astype(str).to_numpy()\n"
                f"splitter = GroupShuffleSplit(n_splits=1, test_size={split['test_size']}, random_state=SEED)\n"
                "train_local, test_local = next(splitter.split(local, groups=groups))\n")
    else:
        strat = "y_raw.astype(str).to_numpy()" if split["kind"] == "stratified" else "None"
        body = (f"train_local, test_local = train_test_split(local, test_size={split['test_size']}, random_state=SEED,\n"
                f"                                           stratify={strat})\n"
                "train_local, test_local = np.sort(train_local), np.sort(test_local)\n")
    tail = ("train_rows, test_rows = labelled[train_local], labelled[test_local]\n\n"
            "def encode(y):\n"
            "    \"\"\"Classes -> 0..k-1 in the order of CLASSES (for binary, the positive class is 1).\"\"\"\n"
            "    if PREDICTION == 'regression':\n        return y.to_numpy(dtype=float)\n"
            "    return y.astype(str).map({c: i for i, c in enumerate(CLASSES)}).to_numpy(dtype=int)\n\n"
            "X_train, y_train = df.iloc[train_rows][INPUTS], encode(df[TARGET].iloc[train_rows])\n"
            "X_test, y_test = df.iloc[test_rows][INPUTS], encode(df[TARGET].iloc[test_rows])\n"
            "print(f'training rows: {len(X_train)}, test rows: {len(X_test)}')")
    return head + body + tail


def _leaderboard_md(board: list[dict[str, Any]], metric: str) -> str:
    rows = [f"| {md_cell(r['name'], 40)} | {r['family']} | {_f(r['cv_mean'])} | {_f(r['cv_std'])} | {r.get('fit_s', '')} |"
            for r in board[:10]]
    return "\n".join([f"| candidate | family | CV {metric} mean | CV std | fit seconds |", "|---|---|---|---|---|", *rows])


def _choice_reason(board: list[dict[str, Any]], ev: dict[str, Any], task: dict[str, Any]) -> str:
    better = "higher" if ev["greater_is_better"] else "lower"
    chosen = next((r for r in board if r["name"] == ev["model"]), None)
    others = [r for r in board if r["name"] != ev["model"] and r["family"] != "baseline"]
    base = next((r for r in board if r["family"] == "baseline"), None)
    parts = [f"The chosen model is **{md_cell(ev['model'])}** ({ev['family']}): the best cross-validated candidate "
             f"({better} {ev['metric']} is better)."]
    if chosen and others:
        r = others[0]
        parts.append(f"The runner-up, {md_cell(r['name'])}, scored {_f(r['cv_mean'])} against {_f(chosen['cv_mean'])}; "
                     f"the fold-to-fold spread (std {_f(chosen['cv_std'])}) shows how much of that gap is noise.")
    if chosen and base:
        parts.append(f"The baseline ({'class prior' if task['task'] != 'regression' else 'training mean'}) scored "
                     f"{_f(base['cv_mean'])}: every real candidate must beat it to be worth anything.")
    params = ev.get("params") or {}
    if params:
        parts.append("Hyperparameters (everything else is the library default set in `dsagent.tools.features`): "
                     + ", ".join(f"`{k}={md_cell(v, 30)}`" for k, v in params.items()) + ".")
    else:
        parts.append("It uses the default hyperparameters of its family in `dsagent.tools.features`.")
    if chosen and chosen.get("trials"):
        parts.append(f"They come from {chosen['trials']} tuning trials scored by the same cross-validation.")
    return " ".join(parts)


def build_notebook(ctx: ToolContext, session: dict[str, Any]) -> nbformat.NotebookNode:
    task = TaskSpec.read(ctx.artifacts_dir)
    ev = Evaluation.read(ctx.artifacts_dir)
    board = Leaderboard.read(ctx.artifacts_dir)
    profile = _load_json(ctx, paths.PROFILE)
    if task is None or ev is None:
        raise ToolError("define_task and evaluate_model must run before write_notebook")
    split = task["split"]
    data_path = session.get("data_path") or (str(ctx.data_path.resolve()) if ctx.data_path else None)
    if not data_path:
        raise ToolError("the session has no data file recorded")
    goal = ctx.answers.get("goal") or f"predict `{task['target']}`"
    better = "higher" if ev["greater_is_better"] else "lower"
    metric = task["metric"]
    metric_reason = ("it was asked for" if ctx.answers.get("metric") else METRIC_REASON.get(metric, "it fits the task"))
    ci = ev.get("test_ci")
    threshold = (ev.get("threshold") or {}).get("threshold") if shape_type(task["task"]).thresholded else None
    reported = float(ev["test_score"])
    classification = shape_type(task["task"]).classification

    cells = [
        new_markdown_cell(
            f"# {md_cell(goal[:1].upper() + goal[1:], 200)}\n\n"
            f"This notebook re-creates, from the raw data, the model chosen in dsagent session "
            f"`{session.get('id', ctx.session_dir.name)}`. Run it top to bottom: it reproduces the reported test score "
            f"exactly (the last check asserts it). It needs the `dsagent` package installed in the kernel for "
            f"`dsagent.tools.data.load_table` and `dsagent.tools.features.build_pipeline`, the code that built the model.\n\n"
            f"## 1. The problem\n\n"
            f"- **Goal:** {md_cell(goal, 300)}\n"
            f"- **Target:** `{md_cell(task['target'])}`, a {task['task']} task"
            + (f" (positive class `{md_cell(task['positive_class'])}`)" if task.get("positive_class") else "") + ".\n"
            f"- **Metric:** {metric}, {better} is better. Why: {metric_reason}.\n"
            f"- **Rows:** {task['n_labelled']} with a target; {task['n_train']} to train and compare models, "
            f"{task['n_test']} held out and scored once at the end."),
        new_markdown_cell(_data_findings(profile, task)),
        new_markdown_cell(
            "## 3. Load the data and check it is the same file\n\n"
            "The file is read from the path the session recorded. Its SHA-256 must match the session's: if the file "
            "changed, no number below can be trusted, so the notebook stops here."),
        new_code_cell(
            "import hashlib\nfrom pathlib import Path\n\nimport numpy as np\nimport pandas as pd\n\n"
            "from dsagent.tools.data import load_table\n\n"
            f"DATA_PATH = Path({data_path!r})\n"
            f"EXPECTED_SHA256 = {session.get('data_sha256')!r}\n"
            f"SEED = {ctx.seed}\n\n"
            "digest = hashlib.sha256(DATA_PATH.read_bytes()).hexdigest()\n"
            "assert EXPECTED_SHA256 is None or digest == EXPECTED_SHA256, f'{DATA_PATH} changed since the session ran'\n"
            "df, info = load_table(DATA_PATH)\n"
            "print(f'{len(df)} rows x {df.shape[1]} columns, sha256 {digest[:16]}...')\n"
            "df.head()"),
        new_markdown_cell(
            "## 4. Hold out the test split before fitting anything\n\n"
            f"{int(round(split['test_size'] * 100))}% of the labelled rows are set aside with seed {split['seed']}: "
            f"{SPLIT_REASON.get(split['kind'], split['kind'])}. Model selection below only ever sees the training part."),
        new_code_cell(
            f"TARGET = {task['target']!r}\nTASK = {task['task']!r}\nCLASSES = {task['classes']!r}\n"
            # What the models output (a plugin's task type names its own task but predicts one of these shapes).
            f"PREDICTION = {prediction_of(task['task'])!r}\n"
            f"FEATURES = {json.dumps(task['features'], indent=1)}\n" + _derived_code(task) + "\n" + _split_code(split)),
        new_markdown_cell(
            "## 5. Choose a model by cross-validation on the training split\n\n"
            + _leaderboard_md(board, metric) + "\n\n" + _choice_reason(board, ev, task) + "\n\n"
            "All preprocessing (imputation with missing-value indicators, category encoding, date parts, text features) "
            "lives inside the Pipeline, so no cross-validation fold saw another fold's rows, and the saved model takes raw "
            "columns."),
        new_code_cell(
            "from dsagent.tools.features import build_pipeline\n\n" + _fit_rows_code(ev, split) +
            f"SPEC = {json.dumps({'family': ev['family'], 'params': ev['params']}, default=str)}\n"
            + _model_fit_code(ev, task)),
        new_markdown_cell(
            "## 6. Score the untouched test split once\n\n"
            f"The session reported test {metric} {_f(reported)}"
            + (f" with a 95% bootstrap interval of {_f(ci[0])} to {_f(ci[1])}" if ci else "")
            + f"; the baseline scored {_f(ev['baseline_score'])} on the same rows. The cell below recomputes it and checks "
            "that it is the same number."),
        new_code_cell(
            "from dsagent.tools.metrics import get_metric, score\n\n"
            f"metric = get_metric({metric!r}, TASK)\n"
            "if PREDICTION == 'regression':\n    proba, pred = None, model.predict(X_test)\n"
            "else:\n    proba = model.predict_proba(X_test)\n    pred = proba.argmax(axis=1)\n"
            # Label metrics of a binary model were scored at the threshold it ships with.
            + (f"    pred = (proba[:, 1] >= {threshold!r}).astype(int)  # the shipped decision threshold\n"
               if threshold is not None else "") +
            "test_score = score(metric, y_test, pred, proba)\n"
            f"REPORTED = {reported!r}\n"
            "print(f'test {metric.name}: {float(test_score)!r}')\n"
            "assert abs(test_score - REPORTED) <= 1e-9 * max(1.0, abs(REPORTED)), 'the notebook does not reproduce the run'"),
    ]
    if threshold is not None:
        th = ev["threshold"]
        cells += [
            new_markdown_cell(
                f"### Decision threshold\n\nThe model outputs P(`{md_cell(task['classes'][1])}`). A row is called positive when "
                f"that probability is at least **{threshold:.4f}**: the threshold {th['rule']} (chosen on the training "
                "split, never on the test rows)."),
            new_code_cell(
                "from sklearn.metrics import classification_report\n\n"
                f"THRESHOLD = {threshold!r}\n"
                "decision = (proba[:, 1] >= THRESHOLD).astype(int)\n"
                "print(classification_report(y_test, decision, target_names=CLASSES, digits=3))"),
        ]
    plot_code = ["%matplotlib inline", "import matplotlib.pyplot as plt", ""]
    if classification:
        plot_code += [
            "from sklearn.metrics import ConfusionMatrixDisplay" + (", RocCurveDisplay, PrecisionRecallDisplay" if threshold is not None else ""),
            "",
            (f"fig, axes = plt.subplots(1, 3, figsize=(15, 4.5))\nax_cm = axes[0]" if threshold is not None
             else f"fig, ax_cm = plt.subplots(figsize=({min(5 + 0.4 * len(task['classes']), 12)}, {min(4.5 + 0.4 * len(task['classes']), 11)}))"),
            f"labels = [str(c)[:18] for c in CLASSES]",
            ("ConfusionMatrixDisplay.from_predictions(y_test, decision, display_labels=labels, ax=ax_cm, colorbar=False,\n                                        cmap='Blues')\n"
             "ax_cm.set_title(f'Confusion matrix at threshold {THRESHOLD:.3f}')" if threshold is not None else
             "ConfusionMatrixDisplay.from_predictions(y_test, pred, display_labels=labels, ax=ax_cm, colorbar=False,\n"
             "                                        cmap='Blues', xticks_rotation=45)\nax_cm.set_title('Confusion matrix (test split)')"),
            "ax_cm.set_xlabel('predicted class'); ax_cm.set_ylabel('actual class')",
        ]
        if threshold is not None:
            plot_code += [
                "RocCurveDisplay.from_predictions(y_test, proba[:, 1], ax=axes[1], name='model', plot_chance_level=True)",
                "axes[1].set_title('ROC curve (test split)')",
                "axes[1].set_xlabel('false positive rate'); axes[1].set_ylabel('true positive rate')",
                "PrecisionRecallDisplay.from_predictions(y_test, proba[:, 1], ax=axes[2], name='model', plot_chance_level=True)",
                "axes[2].set_title('Precision-recall curve (test split)')",
                "axes[2].set_xlabel(f'recall (positive class: {CLASSES[1]})'); axes[2].set_ylabel('precision')",
            ]
    else:
        plot_code += [
            "fig, (ax_a, ax_b) = plt.subplots(1, 2, figsize=(12, 4.5))",
            "ax_a.scatter(y_test, pred, s=12, alpha=0.6)",
            "lo, hi = min(y_test.min(), pred.min()), max(y_test.max(), pred.max())",
            "ax_a.plot([lo, hi], [lo, hi], '--', color='grey', label='perfect prediction'); ax_a.legend()",
            "ax_a.set_xlabel(f'actual {TARGET}'); ax_a.set_ylabel(f'predicted {TARGET}'); ax_a.set_title('Predicted vs actual (test split)')",
            "ax_b.scatter(pred, y_test - pred, s=12, alpha=0.6); ax_b.axhline(0, ls='--', color='grey')",
            "ax_b.set_xlabel(f'predicted {TARGET}'); ax_b.set_ylabel('residual (actual - predicted)'); ax_b.set_title('Residuals (test split)')",
        ]
    plot_code += ["fig.tight_layout()", "plt.show()"]
    refit_cells = _refit_cells(ev, task, str(ctx.artifacts_dir.resolve() / paths.MODEL))  # none unless it was refitted
    cells += [
        new_markdown_cell("## 7. Where the errors are\n\n"
                          + ("Rows are actual classes, columns predicted ones; off-diagonal cells are the mistakes."
                             + (" The ROC and precision-recall curves show every threshold, not only the chosen one."
                                if threshold is not None else "") if classification else
                             "Points far from the diagonal are large errors; a funnel or curve in the residuals means the "
                             "error depends on the predicted value.")),
        new_code_cell("\n".join(plot_code)),
        *refit_cells,
        new_markdown_cell(
            f"## {9 if refit_cells else 8}. Before using the model\n\n"
            f"- Test {metric} {_f(reported)}" + (f" (95% CI {_f(ci[0])} to {_f(ci[1])})" if ci else "")
            + f" against a baseline of {_f(ev['baseline_score'])}, on {ev['n_test']} rows.\n"
            "- `report.md` has the segments where the model does worst, the trade-offs and the limitations; "
            "`model_card.md` the intended use; `monitoring.md` what to watch after launch "
            "(`dsagent monitor` applies it).\n"
            + ("- The saved model (`model/model.skops`, with `manifest.json`) is the refit of section 8; "
               if refit_cells else
               "- The saved model (`model/model.skops`, with `manifest.json`) is this same Pipeline; ") +
            "`dsagent predict` uses it on new rows."),
    ]
    nb = new_notebook(cells=cells)
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nb.metadata["dsagent"] = {"session": session.get("id", ctx.session_dir.name), "metric": metric, "reported_test_score": reported}
    return nb


def notebook_test_score(nb: nbformat.NotebookNode) -> tuple[str, float] | None:
    text = "".join(o.get("text", "") for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", [])
                   if o.get("output_type") == "stream")
    found = SCORE_LINE.search(text)
    return (found.group(1), float(found.group(2))) if found else None


def _first_error(nb: nbformat.NotebookNode) -> str:
    for i, cell in enumerate(c for c in nb.cells if c.cell_type == "code"):
        for o in cell.get("outputs", []):
            if o.get("output_type") == "error":
                return f"code cell {i + 1}: {o.get('ename')}: {str(o.get('evalue'))[:300]}"
    return ""


@tool
def write_notebook(ctx: ToolContext, execute_notebook: bool = True, timeout_s: float = 300) -> ToolOutput:
    """Write notebook.ipynb: a narrative that explains the problem, the data findings and each decision,
    loads the data (checking its sha256), recreates the split with the same seed, builds and fits the
    chosen Pipeline with its hyperparameters, scores the test split and plots — then execute it in a
    fresh kernel (per-cell and total timeouts), save it with outputs, and check that its test metric
    equals the reported one.

    Args:
        execute_notebook: run it now and save it with outputs.
        timeout_s: total seconds allowed for execution (each cell gets at most 3/4 of it).
    """
    from dsagent.tools.unsupervised import saved_record

    session = read_json(ctx.session_dir / "session.json", {})
    from dsagent.tools.cluster_report import cluster_record

    if (rec := saved_record(ctx.artifacts_dir)) is not None:  # a task that fits its own models: its notebook
        nb = get_task_type(rec["task"]).build_notebook(ctx, session, rec)
    elif not (ctx.artifacts_dir / paths.TASK).exists() and (crec := cluster_record(ctx.artifacts_dir)) is not None:
        from dsagent.tools.dask_notebook import build_cluster_notebook  # train_on_cluster's model, on a sample

        nb = build_cluster_notebook(ctx, session, crec)
    else:
        nb = build_notebook(ctx, session)
    path = artifact_path(ctx, paths.NOTEBOOK)
    reported = nb.metadata["dsagent"]["reported_test_score"]
    record: dict[str, Any] = {"path": paths.NOTEBOOK, "executed": False, "reported_test_score": reported}

    def save() -> None:
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        nbformat.write(nb, str(tmp))
        os.replace(tmp, path)

    if execute_notebook:
        ctx.report("executing the notebook in a fresh kernel", 0.3)
        t0 = time.monotonic()
        try:
            execute(nb, str(ctx.artifacts_dir), timeout_cell=max(30.0, 0.75 * timeout_s), timeout_total=timeout_s)
        except Exception as exc:
            save()  # with the outputs up to the failure: the reader sees where it stopped
            where = _first_error(nb) or f"{type(exc).__name__}: {(str(exc).strip().splitlines() or [''])[-1][:300]}"
            raise ToolError(f"the notebook failed to execute ({where}); saved as {paths.NOTEBOOK} with outputs up to "
                            "the failure") from None
        record["executed"] = True
        record["seconds"] = round(time.monotonic() - t0, 1)
        found = notebook_test_score(nb)
        if found:
            record["notebook_test_score"] = found[1]
            record["matches"] = abs(found[1] - reported) <= 1e-9 * max(1.0, abs(reported))
    save()
    return ToolOutput(summary=record, record=record, files={"notebook": paths.NOTEBOOK})
