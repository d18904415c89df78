"""dsagent against FLAML, AutoGluon and plain XGBoost at the same wall-clock budget.

    bash benchmarks/automl/setup_envs.sh                                   # once: venvs under benchmarks/work/
    benchmarks/work/venv-data/bin/python benchmarks/automl/datasets.py     # once: the fixed splits
    .venv/bin/python benchmarks/automl/bench.py --budget 60                # every dataset x system
    .venv/bin/python benchmarks/automl/bench.py --datasets penguins titanic --systems dsagent xgboost

Each run gets its own working directory, HOME and TMPDIR under benchmarks/work/runs/. The wall
time of each process is measured here (a peer's own budget is not trusted: AutoGluon overran a
60 s limit by 50% on this kind of machine) and a run is killed at 3 x budget + 120 s. dsagent's
time is the whole `dsagent run` (profile to executed notebook); `dsagent predict` is timed apart.
Scores are computed here on the test split only (binary ROC-AUC, multiclass log-loss, regression
RMSE), with a paired bootstrap of dsagent's score minus each peer's. Results merge into
benchmarks/results/automl.json (re-running one dataset replaces only its entries) and the table
between the automl-bench markers of docs/BENCHMARKS.md is rewritten from that file.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import signal
import subprocess
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parent.parent.parent
WORK = ROOT / "benchmarks" / "work"
DATA = WORK / "data"
RESULTS = ROOT / "benchmarks" / "results" / "automl.json"
DOC = ROOT / "docs" / "BENCHMARKS.md"
START, END = "<!-- automl-bench:start -->", "<!-- automl-bench:end -->"
SPLIT = ROOT / "benchmarks" / "suite_split.json"
sys.path.insert(0, str(Path(__file__).resolve().parent))
from aggregate import at_least_as_good, rank_table, wall_figures, wins_ties_losses  # noqa: E402
from datasets import LARGE_DEV, SUITE as _DATASETS  # noqa: E402

SUITE = [n for n in _DATASETS if n not in LARGE_DEV]  # the 12 of ../shared/BENCHMARK-SUITE.md, then the 25 of issue 18
SYSTEMS = ["dsagent", "flaml", "autogluon", "xgboost", "hgb"]
FLOORS = ("xgboost", "hgb")  # library defaults: dsagent must never be worse beyond the paired CI
LABEL = {"dsagent": "dsagent", "flaml": "FLAML", "autogluon": "AutoGluon", "xgboost": "XGBoost", "hgb": "HGB"}
METRIC = {"binary": ("roc_auc", True), "multiclass": ("log_loss", False), "regression": ("rmse", False)}
PEER_ENV = {"flaml": "venv-flaml", "autogluon": "venv-autogluon", "xgboost": "venv-data", "hgb": "venv-data"}


def halves() -> dict[str, str]:
    """dataset -> "development" | "confirmation" (benchmarks/suite_split.json; empty before it is drawn)."""
    if not SPLIT.exists():
        return {}
    split = json.loads(SPLIT.read_text())
    return {n: h for h in ("development", "confirmation", "large_development") for n in split.get(h, {}).get("datasets", [])}


# -- running ---------------------------------------------------------------------------------
def run_process(cmd: list[str], cwd: Path, timeout: float, log: Path,
                extra_env: dict[str, str] | None = None) -> tuple[int | None, float, str]:
    """(exit code or None on timeout, wall seconds, stdout) with a private HOME and TMPDIR. The
    caller's DSAGENT_* settings never leak in; `extra_env` sets the ones an A/B arm asks for."""
    (cwd / "home").mkdir(parents=True, exist_ok=True)
    (cwd / "tmp").mkdir(parents=True, exist_ok=True)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ANTHROPIC_", "DSAGENT_"))}
    env.update(HOME=str(cwd / "home"), TMPDIR=str(cwd / "tmp"), MPLBACKEND="Agg", PYTHONHASHSEED="0", **(extra_env or {}))
    started = time.time()
    with open(log, "w") as err:
        proc = subprocess.Popen(cmd, cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=err, text=True,
                                start_new_session=True)
        try:
            out, _ = proc.communicate(timeout=timeout)
            return proc.returncode, time.time() - started, out
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.communicate()
            return None, time.time() - started, ""


def run_system(system: str, name: str, meta: dict, budget: float, python: str, extra_env: dict[str, str] | None = None,
               runs_dir: Path | None = None, extra_answers: dict | None = None) -> dict:
    data = DATA / name
    cwd = (runs_dir or WORK / "runs") / name / system
    if cwd.exists():
        subprocess.run(["rm", "-rf", str(cwd)], check=True)
    cwd.mkdir(parents=True)
    preds = cwd / "preds.csv"
    hard = 3 * budget + 120
    entry: dict = {"system": system, "budget_s": budget, "started": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M"),
                   "load_1m": round(os.getloadavg()[0], 2)}
    if system == "dsagent":
        metric = METRIC[meta["task"]][0]
        answers = cwd / "answers.json"
        answers.write_text(json.dumps({"task": meta["task"], **(extra_answers or {})}))
        dsagent = str(ROOT / ".venv" / "bin" / "dsagent")
        cmd = [dsagent, "run", str(data / "train.csv"), "--target", meta["target"], "--time-budget", str(budget),
               "--metric", metric, "--answers", str(answers), "--sessions-dir", str(cwd / "sessions"), "--json",
               "--backend", "offline"]
        code, wall, out = run_process(cmd, cwd, hard, cwd / "run.log", extra_env)
        entry.update(wall_s=round(wall, 1), exit=code)
        if code != 0:
            entry["status"] = "timeout" if code is None else "failed"
            return entry
        result = json.loads(out)
        entry["session_dir"] = result.get("session_dir")
        entry.update(best_model=result.get("best_model"), cv_leaderboard=result.get("leaderboard"),
                     reported_test_score=result.get("test_score"), elapsed_s=result.get("elapsed_s"))
        pcode, pwall, _ = run_process([dsagent, "predict", result["session_dir"], str(data / "test.csv"), "-o", str(preds)],
                                      cwd, 600, cwd / "predict.log")
        entry["predict_wall_s"] = round(pwall, 1)
        if pcode != 0:
            entry["status"] = "predict_failed"
            return entry
    else:
        cmd = [python, str(Path(__file__).with_name("run_peer.py")), "--system", system, "--data", str(data),
               "--budget", str(budget), "--out", str(preds)]
        code, wall, out = run_process(cmd, cwd, hard, cwd / "run.log")
        entry.update(wall_s=round(wall, 1), exit=code)
        if code != 0:
            entry["status"] = "timeout" if code is None else "failed"
            return entry
        try:
            entry["info"] = json.loads(out.strip().splitlines()[-1])
        except (ValueError, IndexError):
            pass
    entry["status"] = "ok"
    entry["preds"] = str(preds.relative_to(ROOT))
    return entry


# -- scoring ---------------------------------------------------------------------------------
def _truth(meta: dict) -> np.ndarray:
    y = pd.read_csv(DATA / meta["name"] / "test.csv")[meta["target"]]
    if meta["task"] == "regression":
        return y.to_numpy(dtype=float)
    lookup = {c: i for i, c in enumerate(meta["classes"])}
    return y.astype(str).map(lookup).to_numpy(dtype=int)


def _predictions(meta: dict, path: Path) -> np.ndarray:
    frame = pd.read_csv(path)
    if meta["task"] == "regression":
        return frame["prediction"].to_numpy(dtype=float)
    proba = frame[[f"proba_{c}" for c in meta["classes"]]].to_numpy(dtype=float)
    proba = np.clip(proba, 0, None)
    return proba / np.clip(proba.sum(axis=1, keepdims=True), 1e-15, None)


def _row_score(task: str, y: np.ndarray, p: np.ndarray, idx: np.ndarray | None = None) -> float:
    from sklearn import metrics as skm

    if idx is not None:
        y, p = y[idx], p[idx]
    if task == "binary":
        return float(skm.roc_auc_score(y, p[:, 1]))
    if task == "multiclass":
        return float(skm.log_loss(y, p, labels=np.arange(p.shape[1])))
    return float(np.sqrt(np.mean((y - p) ** 2)))


def paired_bootstrap(task: str, y: np.ndarray, a: np.ndarray, b: np.ndarray, n: int = 300, seed: int = 0):
    """95% percentile interval of score(a) - score(b) over resamples of the test rows."""
    rng = np.random.default_rng(seed)
    diffs = []
    for _ in range(n):
        idx = rng.integers(0, len(y), len(y))
        try:
            diffs.append(_row_score(task, y, a, idx) - _row_score(task, y, b, idx))
        except ValueError:
            continue
    lo, hi = np.quantile(diffs, [0.025, 0.975])
    # Significant digits, not decimals: near-perfect AUCs differ by 1e-7, and a bound rounded to
    # -0.0 would hide that one system is (slightly) worse on every resample.
    return [float(f"{lo:.4g}"), float(f"{hi:.4g}")]


def score_dataset(name: str, meta: dict, runs: dict[str, dict]) -> dict:
    task = meta["task"]
    metric, greater = METRIC[task]
    y = _truth(meta)
    preds = {}
    for system, entry in runs.items():
        if entry.get("status") != "ok":
            continue
        if not (ROOT / entry["preds"]).exists():
            # benchmarks/work/ is git-ignored: on a fresh checkout a peer's stored score stands, but
            # without its predictions there is no paired interval against it until it is re-run.
            print(f"{name}/{system}: predictions not on disk, keeping the stored score", file=sys.stderr)
            continue
        preds[system] = _predictions(meta, ROOT / entry["preds"])
        entry["score"] = round(_row_score(task, y, preds[system]), 6)
    if "dsagent" in preds:
        for peer in [s for s in preds if s != "dsagent"]:
            ds, ps = runs["dsagent"]["score"], runs[peer]["score"]
            runs["dsagent"].setdefault("vs", {})[peer] = {
                "ratio": round(ds / ps, 4) if ps else None,  # dsagent / peer, in the metric's own units
                "better_or_equal": bool(ds >= ps if greater else ds <= ps),
                "diff_ci95": paired_bootstrap(task, y, preds["dsagent"], preds[peer]),
            }
    return {"name": name, "task": task, "metric": metric, "greater_is_better": greater, "rows": meta["rows"],
            "n_train": meta["n_train"], "n_test": meta["n_test"], "systems": runs}


# -- reporting -------------------------------------------------------------------------------
def _fmt(entry: dict | None, key: str = "score") -> str:
    if not entry:
        return "—"
    if entry.get("status") != "ok":
        return entry.get("status", "—")
    v = entry.get(key)
    if isinstance(v, float) and 0.999 < v < 1.0:  # a near-perfect AUC: four decimals would print 1.0000
        return f"{v:.6f}"
    return f"{v:.4f}" if isinstance(v, float) else str(v)


def _when(results: dict) -> str:
    """When the figures were taken and how busy the machine was (1-minute load average at each start)."""
    entries = [e for d in results["datasets"].values() for e in d["systems"].values() if e.get("started")]
    if not entries:
        return ""
    days = sorted({e["started"][:10] for e in entries})
    loads = [e["load_1m"] for e in entries if e.get("load_1m") is not None]
    text = f"Runs dated {days[0]}" + (f" to {days[-1]}" if len(days) > 1 else "")
    if loads:
        text += f"; 1-minute load average at the start of a run {min(loads):.1f}-{max(loads):.1f} (2 cores)"
    return text + "."


def render(results: dict) -> str:
    lines = [START, "## AutoML comparison", "",
             f"dsagent's offline autopilot against FLAML, AutoGluon (`autogluon.tabular` with lightgbm/xgboost/catboost, "
             f"default presets, no torch) and plain XGBoost and HistGradientBoosting (HGB) defaults, each at a "
             f"{results['budget_s']:.0f} s budget on the same fixed split (25% test, `random_state=0`, stratified for "
             "classification) of the public offline suite (../shared/BENCHMARK-SUITE.md) and the 25 further datasets of "
             "benchmarks/SUITE-WIDE.md. The column `half` says which half of the recorded split "
             "(benchmarks/suite_split.json: dev = development, con = confirmation) a dataset is in. Scores on the test split: binary ROC-AUC (higher is better), "
             "multiclass log-loss and regression RMSE (lower is better). Wall time is measured by the harness for the "
             "whole process (dsagent: the whole `dsagent run`, profile to executed notebook).",
             "",
             f"Machine: {results['machine']}. {_when(results)} The harness runs one process at a time; a dataset's "
             "entry for one system is replaced whenever that system is re-run. Wall times are noisy.",
             "",
             "| dataset | half | task | metric | " + " | ".join(LABEL[k] for k in SYSTEMS) + " | "
             + " | ".join(f"{LABEL[k]} s" for k in SYSTEMS) + " | dsagent model |",
             "|---|---|---|---|" + "---|" * (2 * len(SYSTEMS) + 1)]
    half_of = halves()
    wins = {"flaml": 0, "autogluon": 0}
    played = {"flaml": 0, "autogluon": 0}
    worse_than_floor, over_budget, n = [], [], 0
    point_only: set[str] = set()
    unjudged: list[str] = []
    for name in SUITE:
        r = results["datasets"].get(name)
        if not r:
            continue
        n += 1
        s = r["systems"]
        ds = s.get("dsagent", {})
        lines.append(f"| {name} | {half_of.get(name, '—')[:3]} | {r['task']} | {r['metric']} | " + " | ".join(_fmt(s.get(k)) for k in SYSTEMS) + " | "
                     + " | ".join(str(s.get(k, {}).get("wall_s", "—")) for k in SYSTEMS) + f" | {ds.get('best_model', '—')} |")
        for peer in ("flaml", "autogluon"):
            v = ds.get("vs", {}).get(peer)
            if v:
                played[peer] += 1
                wins[peer] += v["better_or_equal"]
            elif ds.get("score") is not None and s.get(peer, {}).get("score") is not None:
                # The peer's predictions are not on disk (its venv was not re-run here): no paired
                # bootstrap, so the point scores decide, and the summary says so.
                played[peer] += 1
                point_only.add(peer)
                mine, theirs = ds["score"], s[peer]["score"]
                wins[peer] += int(at_least_as_good(mine, theirs, r["greater_is_better"]))
        for peer in FLOORS:
            floor = ds.get("vs", {}).get(peer)
            if not floor and s.get(peer) and ds.get("score") is not None:
                unjudged.append(f"{name}/{peer}")
            if floor:
                lo, hi = floor["diff_ci95"]
                if (r["greater_is_better"] and hi < 0) or (not r["greater_is_better"] and lo > 0):
                    worse_than_floor.append(f"{name} ({LABEL[peer]})")
        if ds.get("wall_s") and ds["wall_s"] > 1.15 * results["budget_s"]:
            over_budget.append(f"{name} ({ds['wall_s']} s)")
    lines += ["",
              f"- dsagent >= FLAML on {wins['flaml']} of {played['flaml']} datasets; >= AutoGluon on "
              f"{wins['autogluon']} of {played['autogluon']} (of {n} run)"
              + (f"; point scores only against {' and '.join(sorted(point_only))} (their predictions were not on "
                 "disk for a paired bootstrap)." if point_only else "."),
              f"- Worse than XGBoost or HGB defaults beyond the paired bootstrap 95% CI: "
              f"{', '.join(worse_than_floor) or 'none'}"
              + (f" (not judged for {len(unjudged)} dataset/floor pair(s) whose predictions were not on disk)."
                 if unjudged else "."),
              f"- dsagent runs over budget + 15%: {', '.join(over_budget) or 'none'}.",
              *aggregate_lines(results, half_of),
              f"- Generated {results['generated']}; raw figures (paired bootstrap CIs of the score differences, "
              "leaderboards, wall times) in `benchmarks/results/automl.json`.",
              "",
              "Reproduce:",
              "",
              "```",
              "bash benchmarks/automl/setup_envs.sh",
              "benchmarks/work/venv-data/bin/python benchmarks/automl/datasets.py",
              "benchmarks/work/venv-data/bin/python benchmarks/automl/suite_split.py  # already recorded; re-checks it",
              f".venv/bin/python benchmarks/automl/bench.py --budget {results['budget_s']:.0f}",
              "```",
              END]
    return "\n".join(lines)


def aggregate_lines(results: dict, half_of: dict[str, str]) -> list[str]:
    """Per half of the suite (development first, then confirmation): mean rank and mean normalised
    score of every system over the datasets all of them ran, and dsagent's wins/ties/losses
    against each peer by the paired bootstrap CI."""
    lines: list[str] = []
    groups = [(h, [n for n in SUITE if half_of.get(n) == h]) for h in ("development", "confirmation")] if half_of \
        else [("all", SUITE)]
    for half, names in groups:
        names = [n for n in names if n in results["datasets"]]
        if not names:
            continue
        table = rank_table(results["datasets"], names, SYSTEMS)
        if table["datasets"]:
            lines.append(f"- {half} half, {len(table['datasets'])} dataset(s) every system ran: mean rank "
                         + ", ".join(f"{LABEL[s]} {table['mean_rank'][s]}" for s in SYSTEMS)
                         + "; mean normalised score (1 best, 0 worst) "
                         + ", ".join(f"{LABEL[s]} {table['mean_normalised'][s]}" for s in SYSTEMS) + ".")
        wtl = []
        for peer in SYSTEMS[1:]:
            w = wins_ties_losses(results["datasets"], names, peer)
            if w["played"]:
                wtl.append(f"{LABEL[peer]} {len(w['wins'])}/{len(w['ties'])}/{len(w['losses'])}"
                           f" (>= on {w['at_least_as_good']} of {w['played']}"
                           + (f"; {len(w['point_only'])} by point score only" if w["point_only"] else "") + ")")
        if wtl:
            lines.append(f"- {half} half, dsagent wins/ties/losses by the paired bootstrap 95% CI: " + "; ".join(wtl) + ".")
        wall = wall_figures(results["datasets"], names, results["budget_s"])
        if wall["runs"]:
            lines.append(f"- {half} half, dsagent's wall time over the budget ({wall['runs']} runs): median "
                         f"{wall['median']}, longest {wall['longest']}; {wall['within']} within [0.9, 1.1], "
                         f"{wall['over_1_15']} past 1.15.")
    return lines


def write_doc(results: dict) -> None:
    block = render(results)
    text = DOC.read_text() if DOC.exists() else "# Benchmarks\n"
    if START in text and END in text:
        text = text[: text.index(START)] + block + text[text.index(END) + len(END):]
    else:
        text = text.rstrip("\n") + "\n\n" + block + "\n"
    DOC.parent.mkdir(parents=True, exist_ok=True)
    DOC.write_text(text)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--datasets", nargs="*", default=SUITE)
    ap.add_argument("--systems", nargs="*", default=SYSTEMS)
    ap.add_argument("--budget", type=float, default=60)
    ap.add_argument("--rescore", action="store_true", help="only re-score saved predictions and rewrite the table")
    args = ap.parse_args()
    results = json.loads(RESULTS.read_text()) if RESULTS.exists() else {"datasets": {}}
    results.update(budget_s=args.budget, machine=f"{os.cpu_count()} cores, {platform.platform(terse=True)}, "
                                                   f"Python {platform.python_version()}")
    for name in args.datasets:
        meta_path = DATA / name / "meta.json"
        if not meta_path.exists():
            print(f"{name}: no prepared split (run datasets.py first)", file=sys.stderr)
            continue
        meta = json.loads(meta_path.read_text())
        runs = dict(results["datasets"].get(name, {}).get("systems", {}))
        if not args.rescore:
            for system in args.systems:
                python = str(WORK / PEER_ENV[system] / "bin" / "python") if system != "dsagent" else ""
                if system != "dsagent" and not Path(python).exists():
                    print(f"{name}/{system}: environment missing (run setup_envs.sh)", file=sys.stderr)
                    continue
                print(f"{name}/{system} ...", file=sys.stderr, flush=True)
                runs[system] = run_system(system, name, meta, args.budget, python)
                print(f"{name}/{system}: {runs[system].get('status')} in {runs[system].get('wall_s')} s", file=sys.stderr,
                      flush=True)
        # Re-read before writing: another bench.py (other systems) may have saved meanwhile.
        latest = json.loads(RESULTS.read_text()) if RESULTS.exists() else {"datasets": {}}
        merged = dict(latest["datasets"].get(name, {}).get("systems", {}))
        merged.update({k: v for k, v in runs.items() if args.rescore or k in args.systems})
        for entry in merged.values():
            entry.pop("vs", None)
        results["datasets"] = {**latest["datasets"], name: score_dataset(name, meta, merged)}
        results["generated"] = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
        results["load_average_at_end"] = os.getloadavg()[0]
        RESULTS.parent.mkdir(parents=True, exist_ok=True)
        RESULTS.write_text(json.dumps(results, indent=1, default=str))
        write_doc(results)
        summary = {s: (e.get("score"), e.get("wall_s")) for s, e in results["datasets"][name]["systems"].items()}
        print(f"{name}: {summary}", file=sys.stderr, flush=True)


if __name__ == "__main__":
    main()
