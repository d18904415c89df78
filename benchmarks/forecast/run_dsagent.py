"""dsagent (offline autopilot, `task: forecast`) and the seasonal naive on the benchmark's collections:
for each, train on all but the last horizon, `dsagent run --time-budget BUDGET`, `dsagent predict`, score
the held-out horizon. Runs in dsagent's own venv.
    .venv/bin/python benchmarks/forecast/run_dsagent.py DATA_DIR OUT.json [--budget 60] [--only NAME ...]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd

sys.path.insert(0, str(Path(__file__).parent))
from scoring import score, seasonal_naive, split  # noqa: E402


def run_one(name: str, meta: dict, data_dir: Path, work: Path, budget: float) -> dict:
    df = pd.read_csv(data_dir / f"{name}.csv", parse_dates=["time"])
    h, m = meta["horizon"], meta["season_length"]
    train, test = split(df, h)
    work.mkdir(parents=True, exist_ok=True)
    train_csv, answers, out_csv = work / f"{name}.csv", work / f"{name}.yaml", work / f"{name}_forecast.csv"
    train.to_csv(train_csv, index=False)
    answers.write_text(f"task: forecast\ntarget: y\ntime_column: time\nseries_columns: [series]\nhorizon: {h}\n"
                       f"frequency: {meta['freq']}\n")
    cmd = [sys.executable, "-m", "dsagent.cli"]
    started = time.perf_counter()
    run = subprocess.run(cmd + ["run", str(train_csv), "--answers", str(answers), "--json", "--backend", "offline",
                                "--time-budget", str(budget), "--sessions-dir", str(work / "sessions")],
                         capture_output=True, text=True)
    wall = time.perf_counter() - started
    row = {"dataset": name, "budget_s": budget, "wall_s": round(wall, 1), "within_budget_15pct": wall <= 1.15 * budget}
    if run.returncode != 0:
        return row | {"error": run.stderr.strip().splitlines()[-1] if run.stderr.strip() else f"exit {run.returncode}"}
    result = json.loads(run.stdout)
    pred = subprocess.run(cmd + ["predict", result["session_dir"], "-o", str(out_csv)], capture_output=True, text=True)
    if pred.returncode != 0:
        return row | {"error": pred.stderr.strip().splitlines()[-1]}
    got = pd.read_csv(out_csv, parse_dates=["time"]).rename(columns={"prediction": "yhat"})
    got["series"] = got["series"].astype(str)
    test = test.assign(series=test["series"].astype(str))
    scored = test.merge(got, on=["series", "time"], how="left")
    if scored["yhat"].isna().any():
        return row | {"error": f"{int(scored['yhat'].isna().sum())} held-out points without a forecast"}
    snaive = score(train, seasonal_naive(train, test, m), m)
    leaderboard = [{"name": r["name"], "cv_mean": r.get("cv_mean")} for r in result.get("leaderboard") or []]
    return row | {"model": result.get("best_model"), "dsagent": score(train, scored, m), "seasonal_naive": snaive,
                  "leaderboard": leaderboard}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("data_dir", type=Path)
    ap.add_argument("out", type=Path)
    ap.add_argument("--budget", type=float, default=60.0)
    ap.add_argument("--only", nargs="*")
    args = ap.parse_args()
    meta = json.loads((args.data_dir / "datasets.json").read_text())
    rows = []
    for name in args.only or list(meta):
        row = run_one(name, meta[name], args.data_dir, args.out.parent / "dsagent-work", args.budget)
        print(json.dumps(row), flush=True)
        rows.append(row)
    args.out.write_text(json.dumps(rows, indent=1))


if __name__ == "__main__":
    main()
