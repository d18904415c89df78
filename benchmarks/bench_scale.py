"""Beyond one machine (issue 23): a table larger than a Dask worker's memory, trained on the cluster.

    .venv/bin/python benchmarks/bench_scale.py                      # 10M x 30, local:2, 600 s budget
    .venv/bin/python benchmarks/bench_scale.py --rows 200000 --no-write   # a smoke run
    .venv/bin/python benchmarks/bench_scale.py --tuning              # + trials/minute, 1 and 2 workers, PostgreSQL
    .venv/bin/python benchmarks/bench_scale.py --tuning-only         # only those, added to the last results

What it does:
1. Writes a synthetic classification table (`--rows` x 30: 24 numeric, 4 integer, 1 boolean
   feature, a row key and the target) as Parquet parts under benchmarks/work/scale/ (kept between runs).
2. Starts a LocalCluster of `--workers` processes, each with a memory limit BELOW the table's
   in-memory size (`--worker-memory`, default 60% of it), and runs `dsagent run DIR --target y --cluster
   tcp://... --time-budget B --json`: the autopilot profiles with Dask, trains with train_on_cluster
   (xgboost.dask on every training row, the other families on a sample, scores partition by partition)
   and writes the report and model card.
3. Records the wall time against the budget (+15%), the peak RSS of each Dask worker, of the tool
   worker (this process's children) and of this process; and, in a child process, the same table in
   one process: pandas loads it whole and XGBoost trains the cluster run's number of rounds, with its
   times and peak RSS against one worker's memory limit ("one process").
4. With --tuning: trials per minute with 1 and 2 workers against a throwaway PostgreSQL server
   (tests/pg_server.py; needs Debian's postgresql, which .ci/setup installs).

Raw figures go to benchmarks/results/scale.json; the section between the scale-bench markers of
docs/BENCHMARKS.md is rewritten unless --no-write.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parent.parent
WORK = ROOT / "benchmarks" / "work" / "scale"
RESULTS = ROOT / "benchmarks" / "results" / "scale.json"
DOC = ROOT / "docs" / "BENCHMARKS.md"
START, END = "<!-- scale-bench:start -->", "<!-- scale-bench:end -->"
N_FEATURES = 29  # + the row key and the target: 31 columns, 30 of them data


def write_table(rows: int, part_rows: int, seed: int = 0) -> Path:
    """The Parquet parts (re-used when a previous run wrote the same size)."""
    folder = WORK / f"rows{rows}"
    done = folder / "_done"
    if done.exists():
        return folder
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    weights = rng.normal(size=24)
    start = 0
    for i in range(0, (rows + part_rows - 1) // part_rows):
        n = min(part_rows, rows - start)
        X = rng.normal(size=(n, 24)).astype("float64")
        ints = rng.integers(0, 50, size=(n, 4))
        flag = rng.random(n) < 0.3
        logit = X @ weights * 0.4 + 0.05 * ints[:, 0] - 1.0 + 0.8 * flag
        y = rng.random(n) < 1 / (1 + np.exp(-logit))
        frame = pd.DataFrame(X, columns=[f"x{j:02d}" for j in range(24)])
        for j in range(4):
            frame[f"n{j}"] = ints[:, j]
        frame["flag"] = flag
        frame.insert(0, "row_id", np.arange(start, start + n, dtype="int64"))
        frame["y"] = np.where(y, "yes", "no")
        frame.to_parquet(folder / f"part-{i:04d}.parquet", index=False)
        start += n
    done.touch()
    return folder


def table_bytes(folder: Path) -> int:
    """In-memory size of the table as pandas holds it (from one part, scaled)."""
    parts = sorted(folder.glob("part-*.parquet"))
    one = pd.read_parquet(parts[0])
    rows = sum(pd.read_parquet(p, columns=["row_id"]).shape[0] for p in parts)
    return int(one.memory_usage(deep=True).sum() * rows / len(one))


def one_process(folder: Path, limit_bytes: int, rounds: int) -> dict:
    """The same table in one process (a child): pandas loads it whole, then XGBoost (`hist`, every
    core) trains the cluster run's number of rounds on the same training share (~80%: row_id % 5 != 0,
    not the hash split), with its load and training time and peak RSS, and whether that peak fits one
    Dask worker's memory limit. (No RLIMIT_AS: Arrow's thread pools reserve virtual memory far beyond
    what they use, so an address-space cap fails for the wrong reason.)"""
    code = ("import resource,time,json,pandas as pd,xgboost as xgb\n"
            "t=time.time()\n"
            f"df=pd.read_parquet({str(folder)!r})\n"
            "load=time.time()-t\n"
            "df=df[df.row_id % 5 != 0]\n"
            "X=df.drop(columns=['row_id','y']); y=(df.y=='yes').astype('int8')\n"
            "t=time.time()\n"
            "d=xgb.QuantileDMatrix(X,y)\n"
            f"b=xgb.train({{'tree_method':'hist','max_depth':6,'learning_rate':0.1,'objective':'binary:logistic'}},d,{int(rounds)})\n"
            "fit=time.time()-t\n"
            "print(json.dumps({'rows':len(df),'load_s':round(load,1),'train_s':round(fit,1),"
            f"'rounds':{int(rounds)},'seconds_per_round':round(fit/max({int(rounds)},1),4),"
            "'peak_rss_mb':resource.getrusage(resource.RUSAGE_SELF).ru_maxrss//1024}))\n")
    t = time.time()
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    if done.returncode == 0:
        out = json.loads(done.stdout.strip().splitlines()[-1])
        return {"ok": True, **out, "seconds": round(time.time() - t, 1),
                "fits_one_worker": out["peak_rss_mb"] * 2**20 <= limit_bytes}
    last = (done.stderr.strip().splitlines() or ["?"])[-1]
    return {"ok": False, "error": last[:200], "seconds": round(time.time() - t, 1)}


def peak_rss_mb() -> float:
    import resource as r

    return r.getrusage(r.RUSAGE_SELF).ru_maxrss / 1024


def run_training(folder: Path, workers: int, worker_memory: int, budget: float, sessions: Path) -> dict:
    """`dsagent run DIR --target y --cluster tcp://... --time-budget B --json` (the autopilot's cluster
    workflow: Dask profile, train_on_cluster, report) against a LocalCluster whose workers are each
    limited below the table's in-memory size."""
    from distributed import Client, LocalCluster

    t0 = time.time()
    with LocalCluster(n_workers=workers, threads_per_worker=1, processes=True, host="127.0.0.1",
                      dashboard_address=None, memory_limit=worker_memory) as lc, Client(lc) as client:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("ANTHROPIC_", "DSAGENT_CLUSTER"))}
        done = subprocess.run([sys.executable, "-m", "dsagent.cli", "run", str(folder), "--target", "y", "--backend",
                               "offline", "--cluster", lc.scheduler_address, "--time-budget", str(budget),
                               "--sessions-dir", str(sessions), "--json"],
                              capture_output=True, text=True, env=env, timeout=budget * 3)
        worker_rss = client.run(peak_rss_mb)
    seconds = time.time() - t0
    result = json.loads(done.stdout) if done.stdout.strip().startswith("{") else {}
    out = {"seconds": round(seconds, 1), "ok": done.returncode == 0 and result.get("status") == "completed",
           "error": result.get("error") or (done.stderr[-500:] if done.returncode else None),
           "peak_rss_mb": {"dask_workers": {k: round(v) for k, v in worker_rss.items()},
                           "dsagent_run_and_its_tool_worker": round(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024),
                           "this_process": round(peak_rss_mb())}}
    if out["ok"]:
        art = Path(result["session_dir"]) / "artifacts"
        record = json.loads((art / "cluster_training.json").read_text())
        out.update(scores=record["scores"], shipped=record["best"], rows_seen={k: v["rows"] for k, v in record["rows_seen"].items()},
                   xgboost=record["rows_seen"]["xgboost_dask"], partitions=record["partitions"],
                   deliverables=sorted(k for k, v in result["artifacts"].items() if v))
    return out


def tuning_rate(workers: int, trials: int, sessions: Path) -> dict:
    """Trials per minute of tune_model (XGBoost on examples/penguins.csv: small, so the figure is the
    per-trial overhead plus a short CV) on `workers` workers into one PostgreSQL study."""
    sys.path.insert(0, str(ROOT / "tests"))
    import pg_server

    from dsagent.answers import Answers
    from dsagent.tasks import DirectSession

    data = ROOT / "examples" / "penguins.csv"
    with pg_server.postgres() as url:
        ds = DirectSession(sessions, data, roots=[data.parent], time_budget=600,
                           answers=Answers(target="species", cluster=f"local:{workers}", tuning_storage=url))
        try:
            ds.call("define_task", {"target": "species"})
            t = time.time()
            result = ds.call("tune_model", {"family": "xgboost", "n_trials": trials})
            seconds = time.time() - t
        finally:
            ds.close()
    return {"workers": workers, "trials": trials, "seconds": round(seconds, 1), "ok": result["ok"],
            "trials_per_minute": round(trials / seconds * 60, 1)}


def write_doc(res: dict) -> None:
    t = res["training"]
    lines = [START, "",
             f"Measured {res['when']} on {res['machine']} (`benchmarks/bench_scale.py`): {res['rows']:,} rows x 30 "
             f"columns in {res['parts']} Parquet parts, {res['table_mb']:,} MB in memory; `local:{res['workers']}` with "
             f"{res['worker_memory_mb']:,} MB per worker.", "",
             "| what | figure |", "|---|---|",
             f"| `dsagent run DIR --cluster` (profile, train_on_cluster, notebook, report) | {t['seconds']} s (budget {res['budget']} s + 15%: "
             f"{'within' if t['ok'] and t['seconds'] <= res['budget'] * 1.15 else 'NOT within'}) |",
             f"| scores | {json.dumps(t.get('scores'))} |",
             f"| shipped model (chosen on validation rows) | {t.get('shipped')} |",
             f"| xgboost.dask | {json.dumps(t.get('xgboost'))} |",
             f"| deliverables | {', '.join(t.get('deliverables') or [])} |",
             f"| rows seen | {json.dumps(t.get('rows_seen'))} |",
             f"| peak RSS, MB | {json.dumps(t['peak_rss_mb'])} |",
             f"| one process: pandas loads the whole table, XGBoost `hist` trains the same rounds | {json.dumps(res['one_process'])} |"]
    one, per_round = res["one_process"], (t.get("xgboost") or {}).get("seconds_per_round")
    if one.get("ok") and per_round:
        lines.append(f"| one process vs the cluster | peak RSS {one['peak_rss_mb']:,} MB ("
                     f"{'fits' if one['fits_one_worker'] else 'does not fit'} one worker's {res['worker_memory_mb']:,} MB); "
                     f"{one['seconds_per_round']} s per boosting round vs {per_round} s on the cluster |")
    for r in res.get("tuning", []):
        lines.append(f"| tuning, {r['workers']} worker(s), PostgreSQL | {r['trials_per_minute']} trials/min "
                     f"({r['trials']} trials in {r['seconds']} s) |")
    lines += ["", END]
    text = DOC.read_text()
    block = "\n".join(lines)
    if START in text:
        text = text[:text.index(START)] + block + text[text.index(END) + len(END):]
    else:
        text += "\n## Scale: a table larger than a worker's memory (issue 23)\n\n" + block + "\n"
    DOC.write_text(text)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--rows", type=int, default=10_000_000)
    ap.add_argument("--part-rows", type=int, default=500_000)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--worker-memory", type=float, default=0.6, help="each worker's memory limit, as a share of the table's size")
    ap.add_argument("--budget", type=float, default=600)
    ap.add_argument("--tuning", action="store_true", help="also trials/minute with 1 and 2 workers against PostgreSQL")
    ap.add_argument("--tuning-only", action="store_true",
                    help="only the tuning figures, added to the last results/scale.json (a second, shorter job)")
    ap.add_argument("--trials", type=int, default=16, help="tuning trials per measurement")
    ap.add_argument("--keep-one-process", action="store_true",
                    help="keep the one-process figures of the last results/scale.json for the same rows (a shorter re-run)")
    ap.add_argument("--no-write", action="store_true")
    args = ap.parse_args()
    if args.tuning_only:
        res = json.loads(RESULTS.read_text()) if RESULTS.is_file() else {}
        res["tuning"] = [tuning_rate(w, args.trials, WORK / "sessions") for w in (1, 2)]
        print(json.dumps(res["tuning"], indent=1))
        if not args.no_write:
            RESULTS.write_text(json.dumps(res, indent=1) + "\n")
            if "training" in res:  # the doc's table needs the 10M-row run's figures too
                write_doc(res)
        return

    folder = write_table(args.rows, args.part_rows)
    size = table_bytes(folder)
    # A Dask worker process idles at ~200 MB: below ~500 MB the nanny restarts it forever (small smoke runs).
    limit = max(int(size * args.worker_memory), 500 * 2**20)
    sessions = WORK / "sessions"
    res = {"when": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
           "machine": f"{platform.machine()}, {os.cpu_count()} CPU(s)", "rows": args.rows,
           "parts": len(list(folder.glob("part-*.parquet"))), "table_mb": size // 2**20,
           "workers": args.workers, "worker_memory_mb": limit // 2**20, "budget": args.budget}
    print(f"table: {res['rows']:,} rows, {res['table_mb']:,} MB in memory; workers: {args.workers} x {res['worker_memory_mb']:,} MB",
          file=sys.stderr)
    res["training"] = run_training(folder, args.workers, limit, args.budget, sessions)
    print(json.dumps(res["training"], indent=1), file=sys.stderr)
    rounds = (res["training"].get("xgboost") or {}).get("rounds_allowed") or 50
    before = json.loads(RESULTS.read_text()) if RESULTS.is_file() else {}
    if args.keep_one_process and before.get("one_process", {}).get("ok") and before.get("rows") == args.rows:
        res["one_process"] = before["one_process"] | {"measured": before["when"]}  # its seconds per round still compare
    else:
        res["one_process"] = one_process(folder, limit, rounds)
    if args.tuning:
        res["tuning"] = [tuning_rate(w, args.trials, sessions) for w in (1, 2)]
    elif RESULTS.is_file() and "tuning" in (before := json.loads(RESULTS.read_text())):
        res["tuning"] = before["tuning"]  # measured by an earlier --tuning-only job: kept
    print(json.dumps(res, indent=1))
    if not args.no_write:
        RESULTS.write_text(json.dumps(res, indent=1) + "\n")
        write_doc(res)


if __name__ == "__main__":
    main()
