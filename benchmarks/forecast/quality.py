"""The forecasting quality of dsagent's candidates without the wall-clock budget: for each collection,
ForecastTask backtests every candidate (the statistical ones always, whatever the machine's load),
chooses by backtest MASE, and scores it once on the held-out last horizon, with its 95% coverage there
and on the backtests. On a loaded shared machine the 60 s budget of run_dsagent.py is mostly spent
starting Python, so the statistical models get skipped there and the budgeted run says little about
their quality; this script isolates that. Prints one JSON line per collection.
    .venv/bin/python benchmarks/forecast/quality.py DATA_DIR [NAME ...]
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import pandas as pd

from dsagent.tools.forecast.task import ForecastSpec, ForecastTask


def one(name: str, meta: dict, data_dir: Path) -> dict:
    df = pd.read_csv(data_dir / f"{name}.csv")
    task = ForecastTask(ForecastSpec("y", "time", ["series"], horizon=meta["horizon"], frequency=meta["freq"]))
    started = time.perf_counter()
    _, panel = task.define(df)  # its test window is the last horizon: the one run_dsagent.py holds out
    results = task.backtest(panel)
    board = task.leaderboard(results)
    ev, _ = task.evaluate(panel, results, board[0]["name"], board=board)
    return {"dataset": name, "chosen": board[0]["name"], "mase": round(ev["test_score"], 3),
            "smape": round(ev["test_metrics"]["smape"], 2), "seasonal_naive": round(ev["baseline_score"], 3),
            "coverage_95": ev["coverage_test"]["95"], "coverage_95_backtest": round(ev["coverage_backtest"]["95"], 3),
            "points": ev["coverage_test_check"]["n"], "coverage_95_p": round(ev["coverage_test_check"]["95"]["p_value"], 3),
            "members": board[0].get("members"),
            "by_model": {n: round(m["mase"], 3) for n, m in ev["test_by_model"].items()},
            "seconds": round(time.perf_counter() - started, 1)}


if __name__ == "__main__":
    data = Path(sys.argv[1])
    meta = json.loads((data / "datasets.json").read_text())
    for name in sys.argv[2:] or list(meta):
        print(json.dumps(one(name, meta[name], data)), flush=True)
