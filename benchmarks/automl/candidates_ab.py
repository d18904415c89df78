"""Automatic candidate features on the public suite: dsagent with `auto_features: true` against
the same run with `auto_features: false`, at one small budget, on the fixed splits of bench.py.

    .venv/bin/python benchmarks/automl/candidates_ab.py --budget 30 --datasets penguins diabetes

The two runs of a dataset start together (the same load on both: the comparison is what matters,
and a loaded 2-core machine moves absolute wall times a lot). Scores on the test split and a
paired bootstrap 95% CI of (with - without) come from bench.py's scorer. Results go to
benchmarks/results/candidates_ab.json and the table between the candidates-ab markers of
docs/BENCHMARKS.md.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from datetime import datetime, timezone
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench import DATA, DOC, METRIC, ROOT, SUITE, WORK, _predictions, _row_score, _truth, paired_bootstrap  # noqa: E402

RESULTS = ROOT / "benchmarks" / "results" / "candidates_ab.json"
# --default: the "with" arm leaves auto_features unset (the autopilot's own share rule decides), a
# side check kept out of the main table.
RESULTS_DEFAULT = ROOT / "benchmarks" / "results" / "candidates_ab_default.json"
START, END = "<!-- candidates-ab:start -->", "<!-- candidates-ab:end -->"
ARMS = {"with": True, "without": False}


def start(name: str, meta: dict, arm: str, budget: float) -> tuple[subprocess.Popen, Path, float]:
    cwd = WORK / "runs_ab" / name / arm
    subprocess.run(["rm", "-rf", str(cwd)], check=True)
    (cwd / "home").mkdir(parents=True)
    (cwd / "tmp").mkdir()
    answers = {"task": meta["task"]} | ({} if ARMS[arm] is None else {"auto_features": ARMS[arm]})
    (cwd / "answers.json").write_text(json.dumps(answers))
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ANTHROPIC_", "DSAGENT_"))}
    env.update(HOME=str(cwd / "home"), TMPDIR=str(cwd / "tmp"), MPLBACKEND="Agg", PYTHONHASHSEED="0")
    cmd = [str(ROOT / ".venv" / "bin" / "dsagent"), "run", str(DATA / name / "train.csv"), "--target", meta["target"],
           "--time-budget", str(budget), "--metric", METRIC[meta["task"]][0], "--answers", str(cwd / "answers.json"),
           "--sessions-dir", str(cwd / "sessions"), "--json", "--backend", "offline"]
    log = open(cwd / "run.log", "w")
    return subprocess.Popen(cmd, cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=log, text=True), cwd, os.getloadavg()[0]


def finish(proc: subprocess.Popen, cwd: Path, name: str, budget: float) -> dict:
    try:
        out, _ = proc.communicate(timeout=3 * budget + 180)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.communicate()
        return {"status": "timeout"}
    if proc.returncode != 0:
        return {"status": "failed"}
    result = json.loads(out)
    art = Path(result["session_dir"]) / "artifacts"
    record = json.loads((art / "derived_features.json").read_text()) if (art / "derived_features.json").exists() else {}
    auto = [r for r in record.get("features", []) if r.get("source") == "auto"]
    preds = cwd / "preds.csv"
    code = subprocess.run([str(ROOT / ".venv" / "bin" / "dsagent"), "predict", result["session_dir"],
                           str(DATA / name / "test.csv"), "-o", str(preds)], capture_output=True, cwd=cwd).returncode
    return {"status": "ok" if code == 0 else "predict_failed", "elapsed_s": result.get("elapsed_s"),
            "best_model": result.get("best_model"), "preds": str(preds),
            "kept": [f"{r['name']} = {r['expression']}" for r in auto if r["kept"]],
            "dropped": [r["name"] for r in auto if not r["kept"]], "not_reached": record.get("not_reached", []),
            "selection_dropped": len((record.get("selection") or {}).get("dropped") or {}),
            "candidates_measured_s": record.get("seconds") if auto or record.get("not_reached") else 0}


def compare(name: str, meta: dict, arms: dict[str, dict]) -> dict:
    task = meta["task"]
    y = _truth(meta)
    preds = {}
    for arm, entry in arms.items():
        if entry.get("status") == "ok":
            preds[arm] = _predictions(meta, Path(entry["preds"]))
            entry["score"] = round(_row_score(task, y, preds[arm]), 6)
    out = {"task": task, "metric": METRIC[task][0], "greater_is_better": METRIC[task][1], "arms": arms}
    if len(preds) == 2:
        lo, hi = paired_bootstrap(task, y, preds["with"], preds["without"])
        greater = METRIC[task][1]
        out["diff_ci95"] = [lo, hi]
        out["verdict"] = ("better" if (lo > 0 if greater else hi < 0) else "worse" if (hi < 0 if greater else lo > 0)
                          else "same within the CI")
    return out


def render(results: dict) -> str:
    lines = [START, "### Automatic candidate features (with vs without)", "",
             f"dsagent's autopilot with `auto_features: true` against `auto_features: false` at a {results['budget_s']:.0f} s "
             "budget on the suite's fixed splits; the two runs of a dataset ran at the same time. The difference is "
             "with - without on the test split, with a paired bootstrap 95% CI (bench.py's scorer). Candidates are "
             "decided on the training folds only; the test split is read once, by evaluate_model.", "",
             f"Machine: {results['machine']}; 1-minute load average at the starts {results['load_min']:.1f}-"
             f"{results['load_max']:.1f} (a loaded, shared machine: the autopilot's search got less time than the "
             "budget says, in both arms alike).", "",
             "| dataset | metric | without | with | with - without (95% CI) | verdict | candidates kept | dropped / not reached in time |",
             "|---|---|---|---|---|---|---|---|"]
    for name in SUITE:
        r = results["datasets"].get(name)
        if not r:
            continue
        a = r["arms"]
        kept = "; ".join(f"`{k}`" for k in a.get("with", {}).get("kept", [])) or "none"
        ci = r.get("diff_ci95")
        w = a.get("with", {})
        lines.append(f"| {name} | {r['metric']} | {a['without'].get('score', a['without'].get('status'))} | "
                     f"{w.get('score', w.get('status'))} | "
                     + (f"{ci[0]:+.4g} to {ci[1]:+.4g}" if ci else "—") + f" | {r.get('verdict', '—')} | {kept} | "
                     f"{len(w.get('dropped', []))} / {len(w.get('not_reached', []))} |")
    # A dataset where no candidate was kept ran the same features in both arms: a difference there
    # is the search time the candidates took (and the load), not what a feature did.
    def named(verdict: str, kept: bool) -> list[str]:
        return [n for n, r in results["datasets"].items() if r.get("verdict") == verdict
                and bool(r["arms"].get("with", {}).get("kept")) == kept]

    lines += ["", f"- Helped beyond the CI: {', '.join(named('better', True)) or 'none'}.",
              f"- Worse beyond the CI with a candidate kept: {', '.join(named('worse', True)) or 'none'}.",
              "- Different beyond the CI with no candidate kept (the same features in both arms: the search time "
              f"the candidates took, and the load, made the difference): better {', '.join(named('better', False)) or 'none'}; "
              f"worse {', '.join(named('worse', False)) or 'none'}.",
              f"- Generated {results['generated']}; raw figures in `benchmarks/results/candidates_ab.json`.", "",
              "Reproduce: `.venv/bin/python benchmarks/automl/candidates_ab.py --budget "
              f"{results['budget_s']:.0f}` (after bench.py's datasets.py).", END]
    return "\n".join(lines)


def write_doc(results: dict) -> None:
    """The table between its markers; the first time, right after the AutoML comparison's notes
    (before the serving benchmark's own block)."""
    text, block = DOC.read_text(), render(results)
    if START in text:
        text = text[: text.index(START)] + block + text[text.index(END) + len(END):]
    else:
        anchor = "<!-- serve-bench:start -->" if "<!-- serve-bench:start -->" in text else "## Serving latency"
        text = text.replace(anchor, block + "\n\n" + anchor, 1)
    DOC.write_text(text)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--datasets", nargs="*", default=SUITE)
    ap.add_argument("--budget", type=float, default=30)
    ap.add_argument("--render", action="store_true", help="only rewrite the table from the saved results")
    ap.add_argument("--default", action="store_true", help="the 'with' arm leaves auto_features unset (the autopilot "
                    f"decides); results to {RESULTS_DEFAULT.name}, docs untouched")
    args = ap.parse_args()
    results_path = RESULTS_DEFAULT if args.default else RESULTS
    if args.default:
        ARMS["with"] = None
    if args.render:
        write_doc(json.loads(RESULTS.read_text()))
        return
    results = json.loads(results_path.read_text()) if results_path.exists() else {"datasets": {}}
    import platform

    results.update(budget_s=args.budget, machine=f"{os.cpu_count()} cores, {platform.platform(terse=True)}")
    loads = []
    for name in args.datasets:
        meta = json.loads((DATA / name / "meta.json").read_text())
        started = {arm: start(name, meta, arm, args.budget) for arm in ARMS}
        loads += [s[2] for s in started.values()]
        arms = {arm: finish(p, cwd, name, args.budget) for arm, (p, cwd, _) in started.items()}
        results["datasets"][name] = compare(name, meta, arms)
        results["generated"] = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
        results["load_min"] = min(loads + [results.get("load_min", 1e9)])
        results["load_max"] = max(loads + [results.get("load_max", 0)])
        results_path.parent.mkdir(parents=True, exist_ok=True)
        results_path.write_text(json.dumps(results, indent=1, default=str))
        if not args.default:
            write_doc(results)
        r = results["datasets"][name]
        print(f"{name}: {r.get('verdict')} {r.get('diff_ci95')} kept={r['arms']['with'].get('kept')}", file=sys.stderr, flush=True)


if __name__ == "__main__":
    main()
