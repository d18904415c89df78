"""What a user takes away from a run: report with readable plots, model card, a notebook that
re-executes from a fresh kernel to the same test metric, and the monitoring plan."""

from __future__ import annotations

import json
import re
import struct
import time
from pathlib import Path

import nbformat
import pytest

from dsagent.tools.notebook import notebook_test_score
from dsagent.tools.notebook_kernel import execute

ROOT = Path(__file__).resolve().parent.parent


def _art(result) -> Path:
    return Path(result.session_dir) / "artifacts"


def _png_size(path: Path) -> tuple[int, int]:
    head = path.read_bytes()[:24]
    assert head[:8] == b"\x89PNG\r\n\x1a\n", path
    return struct.unpack(">II", head[16:24])


@pytest.fixture(scope="module")
def binary_run(tmp_path_factory):
    """The one extra small run of these tests: a binary target with a sensitive column."""
    from dsagent.answers import Answers
    from dsagent.runtime import Run, RunOptions

    opts = RunOptions(data=ROOT / "examples" / "penguins.csv", target="sex",
                      answers=Answers(sensitive_columns=["species"], cost_fp=1.0, cost_fn=3.0, model_families=["linear", "hist_gb"]),
                      time_budget=20, backend="offline", sessions_dir=tmp_path_factory.mktemp("binary"), max_trials=2)
    result = Run(opts).run()
    assert result.status == "completed", result.error
    return result


def _check_report(art: Path, needles: list[str]) -> str:
    report = (art / "report.md").read_text()
    for section in ("## Summary", "## Business framing", "## Data quality findings", "## Models compared",
                    "## Test results", "95% bootstrap CI", "## What drives the predictions", "## Where the model fails",
                    "## Trade-offs", "## Limitations and assumptions", "## Reproducibility", "sha256:", "versions:",
                    *needles):
        assert section in report, section
    images = re.findall(r"!\[[^\]]+\]\(([^)]+)\)", report)
    assert images and all(not Path(i).is_absolute() for i in images)
    for rel in images:
        w, h = _png_size(art / rel)
        assert w >= 500 and h >= 250, (rel, w, h)  # legible at 110 dpi
    assert "<script" not in report
    return report


def test_report_and_card_multiclass(offline_run):
    art = _art(offline_run)
    report = _check_report(art, ["plots/confusion_matrix.png", "plots/multiclass_curves.png", "## Performance across segments",
                                 "### `island`", "plots/segments_island.png"])
    assert "log_loss (optimised)" in report
    # Stacking was tried on the candidates' out-of-fold predictions (or said why not), and the report says so.
    stacking = json.loads((art / "stacking.json").read_text())
    assert ("Stacking of " if stacking["tried"] else "Stacking (a level-2 model") in report and stacking["reason"] in report
    # Partial dependence of the top columns (issue 22): one probability per class at each grid value.
    pdp = json.loads((art / "explanation.json").read_text())["partial_dependence"]
    important = [r["feature"] for r in json.loads((art / "explanation.json").read_text())["permutation_importance"]]
    assert "plots/partial_dependence.png" in report and pdp["features"] and set(pdp["features"]) <= set(important[:5])
    for panel in pdp["panels"]:
        assert set(panel["average"]) == {"Adelie", "Chinstrap", "Gentoo"}
        sums = [sum(v[i] for v in panel["average"].values()) for i in range(len(panel["grid"]))]
        assert sums == pytest.approx([1.0] * len(sums), abs=1e-5)  # each value rounded to 6 places
    card = (art / "model_card.md").read_text()
    assert re.search(r"## Latency\n\n- One row at a time .* p50 [0-9.]+ ms, p95 [0-9.]+ ms, p99 [0-9.]+ ms", card)
    for section in ("## Intended use", "## Out-of-scope use", "## Training data", "## Metrics", "95% bootstrap CI",
                    "## Performance across segments", "`island`", "## Caveats",
                    "`sex` — sensitive attribute"):  # sex looks sensitive: offered and audited by default (issue 19)
        assert section in card, section


def test_notebook_saved_with_outputs_and_matching_metric(offline_run):
    art = _art(offline_run)
    nb = nbformat.read(art / "notebook.ipynb", as_version=4)
    nbformat.validate(nb)
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert all(c.get("outputs") is not None and c.execution_count for c in code)
    assert not [o for c in code for o in c.outputs if o.output_type == "error"]
    assert any("image/png" in o.get("data", {}) for c in code for o in c.outputs)
    md = "\n".join(c.source for c in nb.cells if c.cell_type == "markdown")
    for needle in ("## 1. The problem", "What the data showed", "Why:", "sha256".upper()[:3], "chosen model is", "seed"):
        assert needle.lower() in md.lower(), needle
    ev = json.loads((art / "evaluation.json").read_text())
    metric, value = notebook_test_score(nb)
    assert metric == ev["metric"] and value == pytest.approx(ev["test_score"], abs=1e-9)
    assert value == pytest.approx(offline_run.test_score, abs=1e-9)


def test_notebook_reexecutes_from_a_fresh_kernel(offline_run, tmp_path):
    art = _art(offline_run)
    nb = nbformat.read(art / "notebook.ipynb", as_version=4)
    for cell in nb.cells:
        if cell.cell_type == "code":
            cell.outputs, cell.execution_count = [], None
    execute(nb, str(tmp_path), timeout_cell=180, timeout_total=240)
    metric, value = notebook_test_score(nb)
    assert value == pytest.approx(json.loads((art / "evaluation.json").read_text())["test_score"], abs=1e-9)


def test_notebook_total_timeout_stops_a_hung_cell(tmp_path):
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("x = 1"), nbformat.v4.new_code_cell("import time; time.sleep(60)")])
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    t0 = time.monotonic()
    with pytest.raises(Exception, match="(?i)timed out|timeout|exceeded"):
        execute(nb, str(tmp_path), timeout_cell=60, timeout_total=4)
    assert time.monotonic() - t0 < 45


def test_binary_deliverables(binary_run, tmp_path):
    art = _art(binary_run)
    report = _check_report(art, ["plots/roc_pr.png", "plots/calibration.png", "Decision threshold",
                                 "What it means in practice", "### `species` (sensitive attribute)", "true positive rate",
                                 "plots/partial_dependence.png", "Partial dependence of probability of class"])
    assert "a false positive costs 1.0, a missed positive 3.0" in report
    card = (art / "model_card.md").read_text()
    assert "fairness" in card.lower() and "sensitive attribute" in card and "equalised odds" in card
    nb = nbformat.read(art / "notebook.ipynb", as_version=4)
    assert "THRESHOLD" in "\n".join(c.source for c in nb.cells)
    assert notebook_test_score(nb)[1] == pytest.approx(binary_run.test_score, abs=1e-9)

    from dsagent.cli import main
    out = tmp_path / "p.csv"
    assert main(["predict", binary_run.session_dir, str(ROOT / "examples" / "penguins.csv"), "-o", str(out)]) == 0
    import pandas as pd
    preds = pd.read_csv(out)
    assert list(preds.columns) == ["prediction", "proba_male", "proba_female"] and len(preds) == 344
