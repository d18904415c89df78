"""The notebook of a segmentation or an anomaly detector (write_notebook dispatches here).

Simpler than the supervised one on purpose: it loads the data (checking its sha256), rebuilds the
same features (dsagent's preprocessing, so nothing is re-typed by hand), fits the chosen estimator
with the printed hyperparameters, and checks the result against the saved model: the adjusted Rand
index between its segments and the model's (clustering), or the share of rows whose anomaly flag
agrees (anomaly). The run computed the same number when it saved the model; the notebook's must
equal it.
"""

from __future__ import annotations

from typing import Any

import nbformat
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

from dsagent.tools.markdown import md_cell
from dsagent.tools.registry import ToolContext, ToolError


def _estimator_code(rec: dict[str, Any], ctx: ToolContext) -> tuple[str, str]:
    """(imports, constructor expression) of the chosen estimator."""
    if rec["task"] == "clustering":
        from dsagent.tools.unsupervised.segment import make_clusterer

        est = make_clusterer(rec["method"], rec["k"], rec["n_rows"], ctx.seed)
        return "from sklearn.cluster import AgglomerativeClustering, HDBSCAN, KMeans\nfrom sklearn.mixture import GaussianMixture\n", repr(est)
    from dsagent.tools.unsupervised.anomaly import _detectors

    n_features = rec["n_encoded_features"]
    est = _detectors(rec["n_fit"], n_features, ctx.seed)[rec["method"]]
    return ("from sklearn.covariance import EllipticEnvelope\nfrom sklearn.ensemble import IsolationForest\n"
            "from sklearn.neighbors import LocalOutlierFactor\nfrom dsagent.tools.unsupervised.anomaly import RobustZScore\n"), repr(est)


def build_notebook(ctx: ToolContext, session: dict[str, Any], rec: dict[str, Any]) -> nbformat.NotebookNode:
    data_path = session.get("data_path") or (str(ctx.data_path.resolve()) if ctx.data_path else None)
    if not data_path:
        raise ToolError("the session has no data file to re-create the model from")
    imports, ctor = _estimator_code(rec, ctx)
    f = rec["features"]
    goal = ctx.answers.get("goal") or ("segment the rows" if rec["task"] == "clustering" else "find unusual rows")
    what = (f"{rec['k']} segments by {rec['method']}" if rec["task"] == "clustering"
            else f"anomaly scores by {rec['method']}, flagged above the threshold for an expected rate of {rec['expected_anomaly_rate']:.2%}")
    cells = [
        new_markdown_cell(f"# {md_cell(goal, 200)}\n\nThis notebook re-creates the saved model ({what}) from the raw data and "
                          "checks it against the saved one. It is shorter than a supervised notebook: the choice among "
                          "candidates is in report.md; here only the chosen estimator is refitted."),
        new_code_cell(
            "import hashlib\nfrom pathlib import Path\n\nimport numpy as np\nimport pandas as pd\n\n"
            "from dsagent.tools.data import load_table\nfrom dsagent.tools.model_io import load_model\n"
            "from dsagent.tools.serving import predict_frame\nfrom dsagent.tools.unsupervised.prep import build_preprocessor\n"
            + imports + "\n"
            f"DATA_PATH = Path({data_path!r})\nEXPECTED_SHA256 = {session.get('data_sha256')!r}\nSEED = {ctx.seed}\n\n"
            "digest = hashlib.sha256(DATA_PATH.read_bytes()).hexdigest()\n"
            "assert EXPECTED_SHA256 is None or digest == EXPECTED_SHA256, f'{DATA_PATH} changed since the session ran'\n"
            "df, info = load_table(DATA_PATH)\nprint(f'{len(df)} rows x {df.shape[1]} columns')"),
        new_markdown_cell("## Features\n\nNumbers imputed (median) and standardised; categories one-hot encoded. Identifiers, "
                          "dates, free text" + (" and the known-anomaly label" if rec.get("label") else "") + " are left out."),
        new_code_cell(f"GROUPS = {{'numeric': {f['numeric']!r}, 'categorical': {f['categorical']!r}}}\n"
                      "X = df[GROUPS['numeric'] + GROUPS['categorical']]"),
    ]
    if rec["task"] == "clustering":
        cells += [
            new_code_cell(f"pre = build_preprocessor(GROUPS).fit(X)\nZ = np.asarray(pre.transform(X), dtype=float)\n"
                          f"estimator = {ctor}\nlabels = estimator.fit_predict(Z)\n"
                          "pd.Series(labels).value_counts().rename('rows')"),
            new_markdown_cell("## Check against the saved model\n\nSegment ids may be numbered differently; the adjusted Rand "
                              "index compares the partitions themselves (1.0 = the same segments)."),
            new_code_cell("from sklearn.metrics import adjusted_rand_score\n\nmodel, manifest = load_model('model/model.skops')\n"
                          "saved = predict_frame(model, manifest, df, warn=lambda m: None)\n"
                          "print(f\"test agreement: {adjusted_rand_score(labels, saved['segment']):.12g}\")"),
        ]
    else:
        split = ("order = np.random.default_rng(SEED).permutation(len(df))\n"
                 f"fit_rows = np.sort(order[:{rec['n_fit']}])  # the seeded split of the run; the rest was held out\n"
                 if rec.get("n_holdout") else "fit_rows = np.arange(len(df))  # no label to evaluate: every row fits\n")
        cells += [
            new_code_cell(split + "pre = build_preprocessor(GROUPS).fit(X.iloc[fit_rows])\n"
                          f"estimator = {ctor}\nestimator.fit(np.asarray(pre.transform(X.iloc[fit_rows]), dtype=float))\n"
                          "scores = -estimator.score_samples(np.asarray(pre.transform(X), dtype=float))\n"
                          f"threshold = float(np.quantile(scores[fit_rows], 1 - {rec['expected_anomaly_rate']!r}))\n"
                          "flags = scores >= threshold\nprint(f'{flags.sum()} of {len(df)} rows flagged at threshold {threshold:.4g}')"),
            new_markdown_cell("## Check against the saved model\n\nThe share of rows whose flag agrees with the saved model's "
                              "(1.0 = the same flags)."),
            new_code_cell("model, manifest = load_model('model/model.skops')\n"
                          "saved = predict_frame(model, manifest, df, warn=lambda m: None)\n"
                          "print(f\"test agreement: {float(np.mean(saved['is_anomaly'].to_numpy() == flags)):.12g}\")"),
        ]
    nb = new_notebook(cells=cells)
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nb.metadata["dsagent"] = {"reported_test_score": rec["agreement"], "metric": "agreement"}
    return nb
