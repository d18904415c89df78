"""`dsagent monitor SESSION batch.csv` as a new user runs it (once in a subprocess, the real exit
code; the other batches through the CLI's main in this process, which returns the same code
without paying a Python start each), on batches cut from the test split of three small models
trained once for this module:

- a binary model (~12% positives, default metric PR-AUC): every label inverted -> 4 (retrain);
  labels alone moving to ~40% positives -> at least 3; drift on >= 30% of the features -> 4;
  the test split itself -> 0 (PR-AUC moves with the base rate, so it cannot catch these alone);
- the same data with costs and metric F1: the headline score, its CI and the monitoring floor are
  the metric at the threshold the model ships with, not at 0.5;
- a regression model: unshifted -> 0, target shift -> at least 3, collapse -> 4, drift -> 4.

Exit codes: 0 ok, 3 investigate, 4 retrain.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from quick import QUICK_FAMILIES

ROOT = Path(__file__).resolve().parent.parent


def _frames(n: int = 1000) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Binary (churn, ~12.8% "yes") and regression (price) frames; c and d are noise columns."""
    rng = np.random.default_rng(7)
    f = pd.DataFrame({"a": rng.normal(0, 1, n), "b": rng.normal(5, 2, n), "c": rng.uniform(0, 10, n),
                      "d": rng.normal(0, 1, n), "plan": rng.choice(["basic", "plus", "pro"], n, p=[.5, .3, .2])})
    logit = -2.9 + 1.6 * f["a"] + 0.35 * (f["b"] - 5) + 0.8 * (f["plan"] == "pro")
    binary = f.assign(churn=np.where(rng.random(n) < 1 / (1 + np.exp(-logit)), "yes", "no"))
    price = 3 * f["a"] + 0.5 * f["b"] + 2 * (f["plan"] == "pro") + rng.normal(0, 0.5, n)
    return binary, f.assign(price=price)


def _env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if not k.startswith("ANTHROPIC_")}


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """The three `dsagent run`s, started together (each mostly waits on its own budget and kernel)."""
    d = tmp_path_factory.mktemp("monitor-cli")
    binary, regression = _frames()
    binary.to_csv(d / "churn.csv", index=False)
    regression.to_csv(d / "price.csv", index=False)
    (d / "costs.yaml").write_text(QUICK_FAMILIES + "cost_fp: 1\ncost_fn: 8\n")
    (d / "quick.yaml").write_text(QUICK_FAMILIES)
    specs = {"binary": ["churn.csv", "--target", "churn", "--answers", str(d / "quick.yaml")],
             "f1": ["churn.csv", "--target", "churn", "--metric", "f1", "--answers", str(d / "costs.yaml")],
             "regression": ["price.csv", "--target", "price", "--answers", str(d / "quick.yaml")]}
    procs = {}
    for name, (data, *rest) in specs.items():
        cmd = [sys.executable, "-m", "dsagent.cli", "run", str(d / data), *rest, "--backend", "offline", "--time-budget", "15",
               "--max-trials", "1", "--sessions-dir", str(d / "sessions"), "--json"]
        procs[name] = subprocess.Popen(cmd, cwd=ROOT, env=_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    out = {}
    for name, proc in procs.items():
        stdout, stderr = proc.communicate(timeout=300)
        assert proc.returncode == 0, stderr[-3000:]
        session = Path(json.loads(stdout)["session_dir"])
        frame = binary if name != "regression" else regression
        test_rows = json.loads((session / "artifacts" / "task.json").read_text())["test_rows"]
        out[name] = (session, frame.iloc[test_rows].reset_index(drop=True))
    return out


def _in_a_process(*args) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "dsagent.cli", *map(str, args)], cwd=ROOT, env=_env(), capture_output=True,
                          text=True, timeout=120)


def _monitor(cli, session: Path, batch: pd.DataFrame, tmp_path: Path, name: str) -> tuple[int, dict]:
    path = tmp_path / f"{name}.csv"
    batch.to_csv(path, index=False)
    proc = cli("monitor", session, path, "--json")
    assert proc.returncode in (0, 3, 4), proc.stderr[-2000:]
    report = json.loads(proc.stdout)
    assert report["exit_code"] == proc.returncode
    return proc.returncode, report


def _drift(batch: pd.DataFrame, columns=("c", "d")) -> pd.DataFrame:
    """Two of the five features (40%, past the 30% retrain share) moved by three standard deviations;
    no labels, so only drift can decide."""
    moved = batch.copy()
    for c in columns:
        moved[c] = moved[c] + 3 * moved[c].std()
    return moved


# -- binary, PR-AUC ---------------------------------------------------------------------------
def test_binary_unshifted_batch_is_ok_with_every_label_check_passing(runs, tmp_path, dsagent_main):
    session, test = runs["binary"]
    code, report = _monitor(dsagent_main, session, test, tmp_path, "unshifted")
    assert code == 0, report["reasons"]
    assert report["labels"]["status"] == "ok" and report["decisions"]["status"] == "ok"
    checks = {c["metric"]: c for c in report["performance"]["checks"]}
    assert set(checks) == {"pr_auc", "roc_auc", "log_loss"}
    assert all(c["ci"] and not c["past_floor"] for c in checks.values())


def test_binary_batch_with_every_label_inverted_asks_for_retraining(runs, tmp_path):
    session, test = runs["binary"]
    flipped = test.assign(churn=np.where(test["churn"] == "yes", "no", "yes"))
    code, report = _monitor(_in_a_process, session, flipped, tmp_path, "flipped")
    assert code == 4, report["reasons"]
    checks = {c["metric"]: c for c in report["performance"]["checks"]}
    # The trap this closes: PR-AUC rises with the base rate and alone would have said "ok".
    assert checks["pr_auc"]["past_floor"] is False
    assert checks["roc_auc"]["decides"] == "retrain" and checks["roc_auc"]["ci"][1] < checks["roc_auc"]["floor"]
    assert report["labels"]["status"] == "alert"
    assert any("distribution of churn moved" in r for r in report["reasons"])


def test_binary_label_prior_shift_alone_is_flagged(runs, tmp_path, dsagent_main):
    session, test = runs["binary"]
    moved = test.copy()
    negatives = np.flatnonzero(moved["churn"] == "no")
    moved.loc[np.random.default_rng(0).choice(negatives, int(0.35 * len(negatives)), replace=False), "churn"] = "yes"
    code, report = _monitor(dsagent_main, session, moved, tmp_path, "prior")  # features untouched: ~13% -> ~43% positives
    assert code >= 3, report["reasons"]
    assert report["labels"]["status"] == "alert" and report["drifted"] == []


def test_binary_drift_on_the_stated_share_of_features_asks_for_retraining(runs, tmp_path, dsagent_main):
    session, test = runs["binary"]
    code, report = _monitor(dsagent_main, session, _drift(test.drop(columns=["churn"])), tmp_path, "drift")
    assert code == 4, report["reasons"]
    assert sorted(report["drifted"]) == ["c", "d"]
    assert any("2 of 5 features drifted" in r for r in report["reasons"])
    assert report["decisions"]["status"] == "ok"  # noise columns moved: the predicted-positive rate did not


def test_monitoring_plan_states_the_label_checks(runs):
    art = runs["binary"][0] / "artifacts"
    plan = json.loads((art / "monitoring.json").read_text())
    assert plan["labels"]["categories"] == ["no", "yes"] and plan["labels"]["proportions"][1] == pytest.approx(0.128, abs=0.01)
    assert [c["metric"] for c in plan["performance"]["checks"]] == ["roc_auc", "log_loss"]
    md = (art / "monitoring.md").read_text()
    roc = plan["performance"]["checks"][0]
    for needle in ("Label distribution", "Predicted-positive rate", f"floor {roc['floor']:.4f}", "whole 95% CI"):
        assert needle in md, needle


# -- binary, F1 with costs: scored at the shipped threshold ------------------------------------
def test_f1_is_scored_reported_and_monitored_at_the_shipped_threshold(runs, tmp_path, dsagent_main):
    from sklearn.metrics import f1_score

    from dsagent.tools.metrics import METRICS, bootstrap_ci

    session, test = runs["f1"]
    art = session / "artifacts"
    ev = json.loads((art / "evaluation.json").read_text())
    threshold = ev["threshold"]["threshold"]
    y = (test["churn"] == "yes").astype(int).to_numpy()
    p_yes = np.load(art / "test_predictions.npz")["proba"][:, 1]
    at_threshold = (p_yes >= threshold).astype(int)
    assert f1_score(y, p_yes >= 0.5) != pytest.approx(f1_score(y, at_threshold))  # the two cut-offs differ here
    assert ev["test_score"] == pytest.approx(f1_score(y, at_threshold), abs=1e-12)
    seed = json.loads((art / "task.json").read_text())["split"]["seed"]
    assert ev["test_ci"] == pytest.approx(list(bootstrap_ci(METRICS["f1"], y, at_threshold, None, seed=seed)))
    assert f"f1 at the shipped threshold {threshold:.4g}" in (art / "report.md").read_text()

    plan = json.loads((art / "monitoring.json").read_text())
    assert plan["performance"]["floor"] == pytest.approx(ev["test_ci"][0])
    code, report = _monitor(dsagent_main, session, test, tmp_path, "f1-test-split")
    assert report["performance"]["metric"] == "f1"
    assert report["performance"]["value"] == pytest.approx(ev["test_score"], abs=1e-5)  # the same cut-off
    assert code == 0, report["reasons"]


# -- regression -------------------------------------------------------------------------------
def test_regression_batches(runs, tmp_path, dsagent_main):
    session, test = runs["regression"]
    code, report = _monitor(dsagent_main, session, test, tmp_path, "reg-unshifted")
    assert code == 0 and report["labels"]["status"] == "ok", report["reasons"]

    code, report = _monitor(dsagent_main, session, test.assign(price=test["price"] + 2 * test["price"].std()), tmp_path, "reg-target")
    assert code >= 3 and report["labels"]["status"] == "alert", report["reasons"]

    shuffled = test.assign(price=np.random.default_rng(0).permutation(test["price"].to_numpy()))
    code, report = _monitor(dsagent_main, session, shuffled, tmp_path, "reg-collapse")  # same labels, wrong rows
    assert code == 4 and report["labels"]["status"] == "ok", report["reasons"]
    assert report["performance"]["decides"] == "retrain"

    code, report = _monitor(dsagent_main, session, _drift(test.drop(columns=["price"])), tmp_path, "reg-drift")
    assert code == 4 and sorted(report["drifted"]) == ["c", "d"], report["reasons"]
