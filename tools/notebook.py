"""write_notebook: a clean narrative notebook that re-creates the chosen model, executed with
nbclient and saved with its outputs. Its test metric must equal the run's reported metric."""

from __future__ import annotations

import json
import os
import re
import time
from typing import Any

import nbformat
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

from tools import paths
from tools.registry import ToolContext, ToolError, ToolOutput, artifact_path, tool


def _load_json(ctx: ToolContext, name: str) -> dict[str, Any]:
    p = ctx.artifacts_dir / name
    return json.loads(p.read_text()) if p.exists() else {}


def build_notebook(ctx: ToolContext, session: dict[str, Any]) -> nbformat.NotebookNode:
    task = _load_json(ctx, paths.TASK)
    evaluation = _load_json(ctx, paths.EVALUATION)
    board = json.loads((ctx.artifacts_dir / paths.LEADERBOARD).read_text())
    if not task or not evaluation:
        raise ToolError("define_task and evaluate_model must run before write_notebook")
    split = task["split"]
    spec = {"family": evaluation["family"], "params": evaluation["params"]}
    goal = ctx.answers.get("goal") or f"predict `{task['target']}`"
    dropped = ", ".join(f"`{d['column']}` ({d['reason']})" for d in task["dropped"]) or "none"
    board_md = "\n".join(f"| {r['name']} | {r['cv_mean']:.4f} | {r['cv_std']:.4f} | {r['fit_s']} |" for r in board[:8])
    cells = [
        new_markdown_cell(
            f"# {goal[:1].upper() + goal[1:]}\n\n"
            f"This notebook re-creates the model chosen in dsagent session `{session.get('id', ctx.session_dir.name)}` "
            f"from the raw data, step by step. Running it top to bottom reproduces the reported test score.\n\n"
            f"- **Target:** `{task['target']}` ({task['task']})\n- **Metric:** {task['metric']} "
            f"({'higher' if task['greater_is_better'] else 'lower'} is better)\n"
            f"- **Rows:** {task['n_labelled']} labelled; {task['n_train']} for training and {task['n_test']} held out for the final test"),
        new_markdown_cell("## 1. Load the data\nThe notebook reads the same file as the session and checks its SHA-256, "
                          "so a changed file is caught before any number is trusted."),
        new_code_cell(
            "import hashlib, json\nimport numpy as np\nimport pandas as pd\nfrom tools.data import load_table\n\n"
            f"DATA_PATH = {str(ctx.data_path.resolve()) if ctx.data_path else None!r}\nEXPECTED_SHA256 = {session.get('data_sha256')!r}\nSEED = {ctx.seed}\n\n"
            "digest = hashlib.sha256(open(DATA_PATH, 'rb').read()).hexdigest()\n"
            "assert EXPECTED_SHA256 is None or digest == EXPECTED_SHA256, 'the data file changed since the session ran'\n"
            "df, info = load_table(DATA_PATH)\nprint(df.shape)\ndf.head()"),
        new_markdown_cell(
            "## 2. Hold out the test split first\n"
            f"Before anything is fitted, {int(split['test_size'] * 100)}% of the labelled rows are set aside "
            f"({split['kind']} split, seed {split['seed']}). Rows without a target are dropped. "
            f"Columns left out of the features: {dropped}."),
        new_code_cell(
            "from sklearn.model_selection import GroupShuffleSplit, train_test_split\n\n"
            f"TARGET = {task['target']!r}\nTASK = {task['task']!r}\nCLASSES = {task['classes']!r}\n"
            f"FEATURES = {task['features']!r}\n\n"
            "labelled = np.flatnonzero(df[TARGET].notna().to_numpy())\n"
            "y_raw = df[TARGET].iloc[labelled]\nlocal = np.arange(len(labelled))\n"
            + (f"order = np.argsort(pd.to_datetime(df[{split['time_column']!r}].iloc[labelled], errors='coerce', format='mixed').to_numpy(), kind='stable')\n"
               f"cut = int(round(len(local) * (1 - {split['test_size']})))\ntrain_local, test_local = np.sort(order[:cut]), np.sort(order[cut:])\n"
               if split["kind"] == "time" else
               f"groups = df[{split['group_column']!r}].iloc[labelled].astype(str).to_numpy()\n"
               f"train_local, test_local = next(GroupShuffleSplit(n_splits=1, test_size={split['test_size']}, random_state=SEED).split(local, groups=groups))\n"
               if split["kind"] == "group" else
               f"stratify = y_raw.astype(str).to_numpy() if {split['kind'] == 'stratified'} else None\n"
               f"train_local, test_local = train_test_split(local, test_size={split['test_size']}, random_state=SEED, stratify=stratify)\n"
               "train_local, test_local = np.sort(train_local), np.sort(test_local)\n")
            + "train_rows, test_rows = labelled[train_local], labelled[test_local]\n\n"
            "def encode(y):\n    if TASK == 'regression':\n        return y.to_numpy(dtype=float)\n"
            "    return y.astype(str).map({c: i for i, c in enumerate(CLASSES)}).to_numpy(dtype=int)\n\n"
            "X_train, y_train = df.iloc[train_rows][list(FEATURES)], encode(df[TARGET].iloc[train_rows])\n"
            "X_test, y_test = df.iloc[test_rows][list(FEATURES)], encode(df[TARGET].iloc[test_rows])\n"
            "print(f'train: {len(X_train)} rows, test: {len(X_test)} rows')"),
        new_markdown_cell(
            "## 3. Candidates compared by cross-validation (training split only)\n\n"
            "| model | CV mean | CV std | fit s |\n|---|---|---|---|\n" + board_md + "\n\n"
            f"The chosen model is **{evaluation['model']}**: the best cross-validated candidate. "
            "All preprocessing (imputation with missing-value indicators, encoding of categories, date parts, text "
            "features) sits inside the Pipeline, so cross-validation folds never saw each other's rows and the saved model "
            "accepts raw columns."),
        new_code_cell(
            "from tools.features import build_pipeline\n\n"
            f"SPEC = {json.dumps(spec)}\n"
            f"model = build_pipeline(SPEC, FEATURES, X_train, TASK, SEED, {len(task['classes'] or [])})\n"
            "model.fit(X_train, y_train)\nmodel"),
        new_markdown_cell("## 4. Score the untouched test split once"),
        new_code_cell(
            "from tools.metrics import get_metric, score\n\n"
            f"metric = get_metric({task['metric']!r}, TASK)\n"
            "if TASK == 'regression':\n    pred, proba = model.predict(X_test), None\nelse:\n"
            "    proba = model.predict_proba(X_test)\n    pred = proba.argmax(axis=1)\n"
            "test_score = score(metric, y_test, pred, proba)\n"
            f"print(f'test {{metric.name}}: {{test_score:.10f}}')\n"
            f"print('reported by the session: {evaluation['test_score']:.10f}')"),
        new_code_cell(
            "import matplotlib.pyplot as plt\n"
            "if TASK == 'regression':\n"
            "    fig, ax = plt.subplots(figsize=(5, 4.5))\n    ax.scatter(y_test, pred, s=8, alpha=0.5)\n"
            "    ax.set_xlabel(f'actual {TARGET}'); ax.set_ylabel(f'predicted {TARGET}'); ax.set_title('Predicted vs actual (test)')\n"
            "else:\n    from sklearn.metrics import ConfusionMatrixDisplay\n"
            "    ConfusionMatrixDisplay.from_predictions(y_test, pred, display_labels=CLASSES, xticks_rotation=45)\n"
            "    plt.title('Confusion matrix (test, argmax)')\nplt.tight_layout(); plt.show()"),
        new_markdown_cell(
            "## 5. Read this before using the model\n"
            f"- Test {task['metric']}: {evaluation['test_score']:.4f} "
            + (f"(95% bootstrap CI {evaluation['test_ci'][0]:.4f} to {evaluation['test_ci'][1]:.4f}); "
               if evaluation.get("test_ci") else "")
            + f"baseline {evaluation['baseline_score']:.4f}.\n"
            "- See report.md for segments, errors, trade-offs and limitations, model_card.md for intended use, and "
            "monitoring.md for what to watch after launch."),
    ]
    nb = new_notebook(cells=cells)
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    return nb


def execute(nb: nbformat.NotebookNode, cwd: str, timeout_cell: int, timeout_total: float) -> None:
    from jupyter_client.manager import KernelManager
    from nbclient import NotebookClient

    transport = os.environ.get("DSAGENT_KERNEL_TRANSPORT", "tcp")
    km = KernelManager(kernel_name="python3", transport=transport)
    if transport == "ipc":
        km.ip = os.path.join(cwd, ".kernel-ipc")
    client = NotebookClient(nb, km=km, timeout=timeout_cell, resources={"metadata": {"path": cwd}}, allow_errors=False)
    started = time.monotonic()

    def too_long(**_):
        if time.monotonic() - started > timeout_total:
            raise TimeoutError(f"notebook execution exceeded {timeout_total:.0f}s")

    client.on_cell_start = too_long
    client.execute()


@tool
def write_notebook(ctx: ToolContext, execute_notebook: bool = True, timeout_s: float = 300) -> ToolOutput:
    """Write notebook.ipynb: a narrative that loads the data, recreates the split with the same seed,
    builds and fits the chosen Pipeline, and scores the test split — then execute it with nbclient
    and check that its test metric equals the reported one.

    Args:
        execute_notebook: run it now and save it with outputs.
        timeout_s: total seconds allowed for execution.
    """
    session = json.loads((ctx.session_dir / "session.json").read_text()) if (ctx.session_dir / "session.json").exists() else {}
    nb = build_notebook(ctx, session)
    path = artifact_path(ctx, paths.NOTEBOOK)
    record: dict[str, Any] = {"path": paths.NOTEBOOK, "executed": False}
    if execute_notebook:
        ctx.report("executing the notebook", 0.3)
        t0 = time.monotonic()
        try:
            execute(nb, str(ctx.artifacts_dir), timeout_cell=int(max(30, timeout_s)), timeout_total=timeout_s)
        except Exception as exc:
            nbformat.write(nb, str(path))
            raise ToolError(f"the notebook failed to execute: {type(exc).__name__}: {str(exc).splitlines()[-1][:300] if str(exc) else ''}"
                            " (saved unexecuted as notebook.ipynb)") from None
        record["executed"] = True
        record["seconds"] = round(time.monotonic() - t0, 1)
        text = "".join(o.get("text", "") for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", []))
        found = re.search(r"test (\w+): (-?[0-9.]+(?:e-?\d+)?)", text)
        evaluation = _load_json(ctx, paths.EVALUATION)
        if found:
            record["notebook_test_score"] = float(found.group(2))
            record["reported_test_score"] = evaluation.get("test_score")
            record["matches"] = abs(float(found.group(2)) - float(evaluation.get("test_score", 0))) < 1e-6
    tmp = path.with_name(".notebook.tmp")
    nbformat.write(nb, str(tmp))
    tmp.replace(path)
    return ToolOutput(summary=record, record=record, files={"notebook": paths.NOTEBOOK})
