"""Monitoring: the plan has concrete numbers; `dsagent monitor` flags a shift in two named columns
and stays quiet on unshifted data (exit codes 0 ok / 3 investigate / 4 retrain / 2 bad input)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from dsagent.cli import main
from dsagent.tools.drift import psi
from dsagent.tools.monitor import VERDICT_EXIT, apply_plan, build_plan, plan_markdown

ROOT = Path(__file__).resolve().parent.parent


def _artifacts(result) -> Path:
    return Path(result.session_dir) / "artifacts"


def _held_out(result) -> pd.DataFrame:
    task = json.loads((_artifacts(result) / "task.json").read_text())
    return pd.read_csv(ROOT / "examples" / "penguins.csv").iloc[task["test_rows"]].reset_index(drop=True)


def test_psi_is_zero_for_identical_distributions_and_large_for_a_shift():
    assert psi([0.25] * 4, [0.25] * 4) == pytest.approx(0.0)
    assert psi([0.25] * 4, [0.7, 0.1, 0.1, 0.1]) > 0.25


def test_plan_files_have_concrete_numbers(offline_run):
    art = _artifacts(offline_run)
    plan = json.loads((art / "monitoring.json").read_text())
    ev = json.loads((art / "evaluation.json").read_text())
    assert set(plan["features"]) == set(json.loads((art / "task.json").read_text())["features"])
    assert plan["performance"]["floor"] == pytest.approx(ev["test_ci"][1])  # log_loss: the CI's upper bound
    assert plan["thresholds"]["psi_alert"] == 0.25 and plan["thresholds"]["p_value"] == 0.01
    md = (art / "monitoring.md").read_text()
    for needle in (f"{plan['performance']['floor']:.4f}", "exit codes", "**3** investigate", "**4** retrain",
                   "Rollout advice", "shadow", "canary", "every 90 days"):
        assert needle.lower() in md.lower(), needle


def test_monitor_quiet_on_held_out_rows_and_flags_two_shifted_columns(offline_run, tmp_path, capsys):
    held = _held_out(offline_run)
    clean, shifted = tmp_path / "clean.csv", tmp_path / "shifted.csv"
    held.to_csv(clean, index=False)
    moved = held.copy()
    moved["bill_depth_mm"] = moved["bill_depth_mm"] + 2 * held["bill_depth_mm"].std()
    moved["island"] = "Torgersen"
    moved.to_csv(shifted, index=False)

    assert main(["monitor", offline_run.session_dir, str(clean), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["verdict"] == "ok" and report["drifted"] == [], report["reasons"]
    assert report["performance"]["past_floor"] is False

    code = main(["monitor", offline_run.session_dir, str(shifted), "--json"])
    report = json.loads(capsys.readouterr().out)
    assert code in (3, 4) and code == VERDICT_EXIT[report["verdict"]]
    assert sorted(report["drifted"]) == ["bill_depth_mm", "island"]
    assert all(report["features"][c]["status"] != "alert" for c in ("bill_length_mm", "year", "sex"))

    code = main(["monitor", offline_run.session_dir, str(shifted)])  # the human-readable table
    out = capsys.readouterr().out
    assert "verdict:" in out and "bill_depth_mm" in out and code in (3, 4)


def test_monitor_missing_column_is_bad_input(offline_run, tmp_path, capsys):
    p = tmp_path / "partial.csv"
    _held_out(offline_run).drop(columns=["island"]).to_csv(p, index=False)
    assert main(["monitor", offline_run.session_dir, str(p)]) == 2
    err = capsys.readouterr().err
    assert "island" in err and "Traceback" not in err and len(err.strip().splitlines()) == 1


@pytest.fixture(scope="module")
def synthetic_model(tmp_path_factory):
    """A larger synthetic reference (no agent run): 4,000 rows, so batch sizes can be realistic."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline

    from dsagent.tools.features import build_preprocessor, split_columns
    from dsagent.tools.model_io import input_schema, save_model

    rng = np.random.default_rng(0)
    n = 6000
    frame = pd.DataFrame({"income": rng.lognormal(10, 0.5, n), "age": rng.integers(18, 80, n).astype(float),
                          "score": rng.normal(0, 1, n), "region": rng.choice(["north", "south", "east", "west"], n, p=[.4, .3, .2, .1]),
                          "channel": rng.choice(["web", "shop", "phone"], n)})
    y = (frame["score"] + (frame["region"] == "north") + rng.normal(0, 1, n) > 0.8).astype(int).to_numpy()
    kinds = {"income": "numeric", "age": "numeric", "score": "numeric", "region": "categorical", "channel": "categorical"}
    ref, new = frame.iloc[:4000], frame.iloc[4000:].reset_index(drop=True)
    pre = build_preprocessor(split_columns(kinds, ref), linear=True, task="binary")
    model = make_pipeline(pre, LogisticRegression(max_iter=500)).fit(ref, y[:4000])
    art = tmp_path_factory.mktemp("synthetic") / "artifacts"
    task = {"target": "label", "task": "binary", "classes": ["0", "1"]}
    save_model(model, art / "model" / "model.skops", {"task": "binary", "classes": ["0", "1"], "threshold": 0.5,
                                                      "target": "label", "input_schema": input_schema(ref)})
    from dsagent.tools.monitor import _prediction_reference

    proba = model.predict_proba(ref)
    ev = {"metric": "roc_auc", "greater_is_better": True, "test_score": 0.8, "test_ci": [0.78, 0.82], "n_test": 1000}
    plan = build_plan(ref, kinds, task, ev, _prediction_reference(task, proba.argmax(1), proba), important=["score"])
    (art / "monitoring.json").write_text(json.dumps(plan))
    assert "0.7800" in plan_markdown(plan)
    return art, new


@pytest.mark.parametrize("seed", range(4))
def test_synthetic_unshifted_batches_are_quiet(synthetic_model, seed):
    art, new = synthetic_model
    batch = new.sample(1000, random_state=seed)
    report = apply_plan(art, batch)
    assert report["verdict"] == "ok", report["reasons"]
    assert all(f["psi"] < 0.1 for f in report["features"].values())


def test_synthetic_shift_in_two_named_columns_is_flagged(synthetic_model):
    art, new = synthetic_model
    batch = new.sample(1000, random_state=0).copy()
    batch["income"] = batch["income"] * 1.8
    batch["channel"] = np.where(np.arange(len(batch)) % 4 == 0, "web", "phone")
    report = apply_plan(art, batch)
    assert sorted(report["drifted"]) == ["channel", "income"]
    assert report["verdict"] in ("investigate", "retrain")
    assert report["features"]["age"]["status"] == report["features"]["score"]["status"] == "ok"


def test_monitor_checks_the_class_distribution_of_multiclass_labels(offline_run, tmp_path, capsys):
    held = _held_out(offline_run)
    plan = json.loads((_artifacts(offline_run) / "monitoring.json").read_text())
    assert sorted(plan["labels"]["categories"]) == sorted(plan["classes"])
    assert [c["metric"] for c in plan["performance"]["checks"]] == ["roc_auc_ovr"]  # log_loss is the main metric
    clean, one_class = tmp_path / "clean.csv", tmp_path / "adelie.csv"
    held.to_csv(clean, index=False)
    held[held["species"] == "Adelie"].to_csv(one_class, index=False)  # every class but one gone from the labels

    assert main(["monitor", offline_run.session_dir, str(clean), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["labels"]["status"] == "ok"
    code = main(["monitor", offline_run.session_dir, str(one_class), "--json"])
    report = json.loads(capsys.readouterr().out)
    assert code >= 3 and report["labels"]["status"] == "alert", report["reasons"]
    assert any("distribution of species moved" in r and "Adelie" in r for r in report["reasons"])
