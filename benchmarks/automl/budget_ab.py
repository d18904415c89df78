"""Issue 18's stacking and budget use, A/B on one half of the wider suite: dsagent as it is against
the same code with the changes switched on by their environment variables (both opt-in until this decides).

    .venv/bin/python benchmarks/automl/budget_ab.py --budget 60                 # development half, 2 arms
    .venv/bin/python benchmarks/automl/budget_ab.py --arms before after no_stacking --datasets iris hsb2

Arms (environment of the `dsagent run` process; bench.py strips every other DSAGENT_* setting):
  before       DSAGENT_STACKING=0 DSAGENT_FULL_BUDGET=0   (the defaults: no stacking, the old time plan)
  after        DSAGENT_STACKING=1 DSAGENT_FULL_BUDGET=1   (stacking tried, the smaller reserve, leftover to the search)
  no_stacking  DSAGENT_STACKING=0 DSAGENT_FULL_BUDGET=1   (isolates the time plan)
  no_budget    DSAGENT_STACKING=1 DSAGENT_FULL_BUDGET=0   (isolates stacking)
  no_look      the defaults with DSAGENT_SECOND_LOOK=0    (the subsample's CV alone picks the family;
                                                          only runs searched on a subsample differ)
  bagged       the defaults with DSAGENT_BAGGED=1         (the final model: the chosen candidate fitted on
                                                          each of 5 folds and averaged, instead of one refit,
                                                          when ~4 refits fit the final fit's time; since
                                                          2026-12-03 13:00 without a time limit on the one fit)
  paced        the defaults with DSAGENT_PACED_RESERVE=1  (the deliverables' reserve measured on the reference
                                                          machine and stretched by this one's pace; the
                                                          default since 2026-12-04)
  fixed_reserve  the defaults with DSAGENT_PACED_RESERVE=0  (the reserve before: 14 fixed seconds)
  refit_all    the defaults with DSAGENT_REFIT_ALL=1      (after the test split is scored, the shipped model is
                                                          refitted on every labelled row, test rows included;
                                                          the default since 2026-12-04 22:50)
  no_refit_all  the defaults with DSAGENT_REFIT_ALL=0     (the scored model ships, as before)
  blend_room   the defaults with DSAGENT_BLEND_ROOM=1     (the blend's refit capped to leave the refit on
                                                          every labelled row its room)
  profile_pace  the defaults with DSAGENT_PROFILE_PACE=1   (the paced reserve stretched by the pace of the run's own
                                                          profile_data call, not by tools/slowdown.pace's loop;
                                                          the default since 2026-12-05 01:20)
  yardstick_pace  the defaults with DSAGENT_PROFILE_PACE=0  (the paced reserve stretched by tools/slowdown.pace)
  coded_levels  the defaults with DSAGENT_CODED_LEVELS=1  (linear models and the MLP also get one-hot columns of
                                                          numeric columns holding 3-12 integer codes)
  lean_cells   the defaults with DSAGENT_LEAN_CELLS_RESERVE=1  (the deliverables' reserve keeps 11 s per 2M test
                                                          cells instead of 16: only large test splits differ;
                                                          the default since 2026-12-05 07:35)
  wide_cells   the defaults with DSAGENT_LEAN_CELLS_RESERVE=0  (the reserve's 16 s per 2M test cells, as before)
  trial_blend  the defaults with DSAGENT_TRIAL_BLEND=1     (each tuning call's two next-best trials join the
                                                          leaderboard with their out-of-fold predictions, for the blend)
  catboost_labels  the defaults with DSAGENT_CATBOOST_LABELS=1  (CatBoost reads categoricals as labels through
                                                          its cat_features instead of ordinal codes)
  subsampled_cap  the defaults with DSAGENT_SUBSAMPLED_CAP=1  (on a search run on a subsample, the final fit's
                                                          room is capped at a third of the search's time)
  blend_all_rounds  the defaults with DSAGENT_BLEND_ALL_ROUNDS=1  (the greedy blend runs all its rounds and keeps
                                                          the best blend seen, instead of stopping at a plateau)
  old_start    the defaults as a run started before 2026-12-03: one slowdown sample (DSAGENT_SLOWDOWN_SAMPLES=1)
               and no tool catalogue (DSAGENT_CACHE_DIR under /dev/null: the CLI imports every tool module)

The arms of a dataset run one after the other (never together: wall time is half of what is
measured), each through bench.py's run_system (the CLI as a user runs it, then `dsagent predict`
on the test split). Each arm is compared with `before` on the test split by a paired bootstrap
95% CI (bench.py's scorer). Results: benchmarks/results/issue18_ab_<half>.json and the table
between the issue18-ab-<half> markers of docs/BENCHMARKS.md. Decide on the development half (the default);
claim only with the confirmation half's figures beside it (`--half confirmation`).
`--adopt before --half confirmation` then makes an arm's runs dsagent's row of the AutoML table.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
from datetime import datetime, timezone
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench import DATA, DOC, METRIC, ROOT, WORK, _predictions, _row_score, _truth, halves, paired_bootstrap, run_system  # noqa: E402



def results_path(half: str, tag: str = "") -> Path:
    return ROOT / "benchmarks" / "results" / f"issue18_ab_{half}{'_' + tag if tag else ''}.json"


def markers(half: str, tag: str = "") -> tuple[str, str]:
    key = f"{half}-{tag}" if tag else half
    return f"<!-- issue18-ab-{key}:start -->", f"<!-- issue18-ab-{key}:end -->"
ARMS = {"before": {"DSAGENT_STACKING": "0", "DSAGENT_FULL_BUDGET": "0"},
        "after": {"DSAGENT_STACKING": "1", "DSAGENT_FULL_BUDGET": "1"},
        "no_stacking": {"DSAGENT_STACKING": "0", "DSAGENT_FULL_BUDGET": "1"},
        "no_budget": {"DSAGENT_STACKING": "1", "DSAGENT_FULL_BUDGET": "0"},
        "no_look": {"DSAGENT_STACKING": "0", "DSAGENT_FULL_BUDGET": "0", "DSAGENT_SECOND_LOOK": "0"},
        "bagged": {"DSAGENT_STACKING": "0", "DSAGENT_FULL_BUDGET": "0", "DSAGENT_BAGGED": "1"},
        # The start of a run as it was before 2026-12-03: one slowdown sample, and the CLI process
        # importing every tool module (no catalogue can be written under /dev/null).
        "old_start": {"DSAGENT_STACKING": "0", "DSAGENT_FULL_BUDGET": "0", "DSAGENT_SLOWDOWN_SAMPLES": "1",
                      "DSAGENT_CACHE_DIR": "/dev/null/dsagent-cache"},
        # Without the LightGBM and CatBoost families (issue 18's "before" for them): every other built-in
        # candidate family, through the answers key model_families.
        "no_lgbm_catboost": {"DSAGENT_STACKING": "0", "DSAGENT_FULL_BUDGET": "0"},
        # Without the strong defaults (hist_gb_default, xgboost_default): their before/after line.
        "no_defaults": {"DSAGENT_STACKING": "0", "DSAGENT_FULL_BUDGET": "0", "DSAGENT_STRONG_DEFAULTS": "0"},
        # Tuning starts from the portfolio learned on the development half (tools/portfolio.py)
        # instead of each family's hand-picked warm starts.
        "portfolio": {"DSAGENT_STACKING": "0", "DSAGENT_FULL_BUDGET": "0", "DSAGENT_PORTFOLIO": "1"},
        # The deliverables' reserve in seconds of the reference machine, stretched by this machine's
        # pace (agent/backends/time_plan.paced_reserve), instead of 14 fixed seconds.
        "paced": {"DSAGENT_STACKING": "0", "DSAGENT_FULL_BUDGET": "0", "DSAGENT_PACED_RESERVE": "1"},
        # The reserve before the paced one (the default since 2026-12-04): 14 fixed seconds.
        "fixed_reserve": {"DSAGENT_STACKING": "0", "DSAGENT_FULL_BUDGET": "0", "DSAGENT_PACED_RESERVE": "0"},
        # The shipped model refitted on every labelled row once the test split is scored (tools/refit_all.py).
        "refit_all": {"DSAGENT_STACKING": "0", "DSAGENT_FULL_BUDGET": "0", "DSAGENT_REFIT_ALL": "1"},
        "no_refit_all": {"DSAGENT_STACKING": "0", "DSAGENT_FULL_BUDGET": "0", "DSAGENT_REFIT_ALL": "0"},
        "blend_room": {"DSAGENT_STACKING": "0", "DSAGENT_FULL_BUDGET": "0", "DSAGENT_BLEND_ROOM": "1"},
        # The machine's pace read from the run's own profile_data call (agent/backends/time_plan.stretch).
        "profile_pace": {"DSAGENT_STACKING": "0", "DSAGENT_FULL_BUDGET": "0", "DSAGENT_PROFILE_PACE": "1"},
        "yardstick_pace": {"DSAGENT_STACKING": "0", "DSAGENT_FULL_BUDGET": "0", "DSAGENT_PROFILE_PACE": "0"},
        # LightGBM right after the XGBoost candidates on training splits of 10,000 rows or more (tools/train.py).
        "large_lightgbm": {"DSAGENT_STACKING": "0", "DSAGENT_FULL_BUDGET": "0", "DSAGENT_LARGE_LIGHTGBM": "1"},
        "late_lightgbm": {"DSAGENT_STACKING": "0", "DSAGENT_FULL_BUDGET": "0", "DSAGENT_LARGE_LIGHTGBM": "0"},
        # No room kept for the refit on every labelled row when the search ran on a subsample (the
        # default since `s16room`); subsampled_room keeps it, as before.
        "no_subsampled_room": {"DSAGENT_STACKING": "0", "DSAGENT_FULL_BUDGET": "0", "DSAGENT_SUBSAMPLED_REFIT_ROOM": "0"},
        "subsampled_room": {"DSAGENT_STACKING": "0", "DSAGENT_FULL_BUDGET": "0", "DSAGENT_SUBSAMPLED_REFIT_ROOM": "1"},
        # A converged MLP's refit estimated with rows ** 0.7 instead of linear in rows (tools/cv.py).
        "converged_exponent": {"DSAGENT_STACKING": "0", "DSAGENT_FULL_BUDGET": "0", "DSAGENT_CONVERGED_EXPONENT": "1"},
        "coded_levels": {"DSAGENT_STACKING": "0", "DSAGENT_FULL_BUDGET": "0", "DSAGENT_CODED_LEVELS": "1"},
        "lean_cells": {"DSAGENT_STACKING": "0", "DSAGENT_FULL_BUDGET": "0", "DSAGENT_LEAN_CELLS_RESERVE": "1"},
        "wide_cells": {"DSAGENT_STACKING": "0", "DSAGENT_FULL_BUDGET": "0", "DSAGENT_LEAN_CELLS_RESERVE": "0"},
        # The next-best trials of each tuning call as blend candidates (tools/tune.py _runner_ups).
        "trial_blend": {"DSAGENT_STACKING": "0", "DSAGENT_FULL_BUDGET": "0", "DSAGENT_TRIAL_BLEND": "1"},
        "catboost_labels": {"DSAGENT_STACKING": "0", "DSAGENT_FULL_BUDGET": "0", "DSAGENT_CATBOOST_LABELS": "1"},
        "subsampled_cap": {"DSAGENT_STACKING": "0", "DSAGENT_FULL_BUDGET": "0", "DSAGENT_SUBSAMPLED_CAP": "1"},
        "blend_all_rounds": {"DSAGENT_STACKING": "0", "DSAGENT_FULL_BUDGET": "0", "DSAGENT_BLEND_ALL_ROUNDS": "1"}}
# Answers an arm adds to the run's answers file (beside its task).
ARM_ANSWERS = {"no_lgbm_catboost": {"model_families": ["linear", "xgboost", "extra_trees", "random_forest", "hist_gb", "mlp"]}}


def session_facts(session_dir: str | None) -> dict:
    """What the run did with stacking and the leftover: stacking.json, and whether the autopilot
    resumed tuning after the blend (its auto-tune-more call)."""
    if not session_dir:
        return {}
    art = Path(session_dir) / "artifacts"
    facts: dict = {}
    if (art / "stacking.json").exists():
        st = json.loads((art / "stacking.json").read_text())
        facts["stacking"] = {k: st.get(k) for k in ("tried", "kept", "stack_cv", "best_single_cv", "blend_cv", "reason")}
    transcript = Path(session_dir) / "transcript.jsonl"
    if transcript.exists():
        events = [json.loads(line) for line in transcript.read_text().splitlines() if line.strip()]
        calls = [(e["t"], c) for e in events for c in (e.get("tool_calls") or [])]
        facts["leftover_tuning"] = any(c.get("id") == "auto-tune-more" for _, c in calls)
        # The deliverables: from the evaluate call to the last record (evaluate, explain, report,
        # monitoring, notebook), against what the time plan kept for them (session.json time_plan).
        at_eval = next((t for t, c in calls if c.get("id") == "auto-eval"), None)
        if at_eval is not None:
            facts["deliverables_s"] = round(events[-1]["t"] - at_eval, 2)
        # Each call's seconds, to the record after it: what the reserve's terms are fitted to.
        facts["steps_s"] = {c["id"]: round(events[min(i + 1, len(events) - 1)]["t"] - e["t"], 2)
                            for i, e in enumerate(events) for c in (e.get("tool_calls") or [])}
    evaluation = art / "evaluation.json"
    if evaluation.exists():
        ev = json.loads(evaluation.read_text())
        facts["final_fit"] = {k: ev.get(k) for k in ("family", "fit_s", "fit_rows", "n_train", "n_test")}
    model_dir = art / "model"
    if model_dir.is_dir():
        facts["model_mb"] = round(sum(f.stat().st_size for f in model_dir.iterdir()) / 1e6, 2)
    meta = Path(session_dir) / "session.json"
    plan = json.loads(meta.read_text()).get("time_plan") if meta.exists() else None
    if plan:
        # The fixed reserve plus the final fit, which evaluate_model and the notebook each pay once.
        facts["reserve_s"] = round(plan.get("reserve_s", 0.0) + 2.3 * plan.get("final_fit_s_est", 0.0), 2)
        facts["seconds_left_at_deliverables"] = plan.get("seconds_left_at_deliverables")
        facts["stretch"] = plan.get("slowdown")  # what the reserve's fixed part was multiplied by
        facts["test_cells"] = plan.get("test_cells")
    return facts


def compare(name: str, meta: dict, arms: dict[str, dict]) -> dict:
    task = meta["task"]
    greater = METRIC[task][1]
    y = _truth(meta)
    preds = {}
    for arm, entry in arms.items():
        if entry.get("status") == "ok":
            preds[arm] = _predictions(meta, ROOT / entry["preds"])
            entry["score"] = round(_row_score(task, y, preds[arm]), 6)
    for arm in [a for a in preds if a != "before" and "before" in preds]:
        lo, hi = paired_bootstrap(task, y, preds[arm], preds["before"])
        arms[arm]["vs_before_ci95"] = [lo, hi]
        arms[arm]["verdict"] = ("better" if (lo > 0 if greater else hi < 0) else "worse" if (hi < 0 if greater else lo > 0)
                                else "same")
    return {"task": task, "metric": METRIC[task][0], "greater_is_better": greater, "arms": arms}


def _median(values: list[float]) -> float | None:
    return round(statistics.median(values), 3) if values else None


def summary(results: dict, arm: str) -> dict:
    """Wins/ties/losses against `before` (by the paired CI) and the wall-time figures of one arm."""
    budget = results["budget_s"]
    entries = [d["arms"][arm] for d in results["datasets"].values() if arm in d["arms"]]
    walls = [e["wall_s"] / budget for e in entries if e.get("wall_s")]
    verdicts = [e.get("verdict") for e in entries if e.get("verdict")]
    return {"n": len(entries), "better": verdicts.count("better"), "same": verdicts.count("same"),
            "worse": verdicts.count("worse"), "median_wall": _median(walls),
            "max_wall": round(max(walls), 3) if walls else None,
            "within_0.9_1.1": sum(0.9 <= w <= 1.1 for w in walls), "over_1.15": sum(w > 1.15 for w in walls),
            "stack_kept": sum(bool((e.get("stacking") or {}).get("kept")) for e in entries),
            # How conservative the reserve is: what the deliverables took over what the plan kept.
            "deliverables_over_reserve": _median([e["deliverables_s"] / e["reserve_s"] for e in entries
                                                  if e.get("deliverables_s") and e.get("reserve_s")]),
            "leftover_tuning": sum(bool(e.get("leftover_tuning")) for e in entries)}


def render(results: dict) -> str:
    arms = results["arms"]
    others = [a for a in arms if a != "before"]
    start, end = markers(results["half"], results.get("tag", ""))
    title = results.get("title") or "stacking and using the budget"
    lines = [start, f"### Issue 18: {title} (A/B, {results['half']} half)", "",
             f"dsagent at a {results['budget_s']:.0f} s budget on the {results['half']} half, arms run one after the "
             "other: " + "; ".join(f"`{a}` = {' '.join(f'{k}={v}' for k, v in ARMS[a].items()) or 'defaults'}"
                                   + (f" + answers {json.dumps(ARM_ANSWERS[a])}" if a in ARM_ANSWERS else "") for a in arms)
             + ". Each arm against `before` on the test split: paired bootstrap 95% CI (bench.py's scorer). Wall time is "
             "the whole `dsagent run` process over the budget.", "",
             f"Machine: {results['machine']}; 1-minute load average at the starts {results['load_min']:.1f}-"
             f"{results['load_max']:.1f}.", "",
             "| dataset | metric | " + " | ".join([f"{a} score (wall/budget)" for a in arms]
                                                  + [f"{a} - before (95% CI)" for a in others]) + " | stack kept (after) |",
             "|---|---|" + "---|" * (len(arms) + len(others) + 1)]
    for name, d in results["datasets"].items():
        cells = []
        for a in arms:
            e = d["arms"].get(a, {})
            wall = f" ({e['wall_s'] / results['budget_s']:.2f})" if e.get("wall_s") else ""
            cells.append(f"{e.get('score', e.get('status', '—'))}{wall}")
        for a in others:
            ci = d["arms"].get(a, {}).get("vs_before_ci95")
            cells.append(f"{ci[0]:+.4g} to {ci[1]:+.4g} ({d['arms'][a]['verdict']})" if ci else "—")
        st = (d["arms"].get("after", {}).get("stacking") or {})
        cells.append("yes" if st.get("kept") else "no" if st.get("tried") else "not tried")
        lines.append(f"| {name} | {d['metric']} | " + " | ".join(cells) + " |")
    lines.append("")
    for a in arms:
        s = summary(results, a)
        vs = f"against before: {s['better']} better, {s['same']} same, {s['worse']} worse beyond the CI; " if a != "before" else ""
        lines.append(f"- **{a}** ({s['n']} datasets): {vs}median wall {s['median_wall']} x budget, longest "
                     f"{s['max_wall']}, {s['within_0.9_1.1']} within [0.9, 1.1], {s['over_1.15']} over 1.15; stack kept "
                     f"on {s['stack_kept']}, leftover tuning on {s['leftover_tuning']}; the deliverables took "
                     f"{s['deliverables_over_reserve']} x the reserve kept for them (median).")
    tag = results.get("tag", "")
    lines += ["", f"Generated {results['generated']}; raw figures in `{results_path(results['half'], tag).relative_to(ROOT)}`. "
              "Reproduce: "
              f"`.venv/bin/python benchmarks/automl/budget_ab.py --budget {results['budget_s']:.0f} --half {results['half']} "
              f"--arms {' '.join(arms)}" + (f" --tag {tag} --datasets {' '.join(results['datasets'])}" if tag else "") + "`.", end]
    return "\n".join(lines)


def write_doc(results: dict) -> None:
    text, block = DOC.read_text(), render(results)
    start, end = markers(results["half"], results.get("tag", ""))
    if start in text:
        text = text[: text.index(start)] + block + text[text.index(end) + len(end):]
    else:  # first time: before the next section after issue 18's notes
        anchor = "### Where dsagent stands, and where it falls short"
        text = text.replace(anchor, block + "\n\n" + anchor, 1) if anchor in text else text.rstrip("\n") + "\n\n" + block + "\n"
    DOC.write_text(text)


def adopt(results: dict, arm: str) -> None:
    """The arm's runs become dsagent's row of the AutoML table: the same process (`dsagent run`, then
    `dsagent predict` on the test split) bench.py runs, so an A/B of the current defaults need not
    be run a second time to update the table. Peers are re-scored from their predictions on disk,
    or keep their stored score (then without a paired interval)."""
    import bench

    table = json.loads(bench.RESULTS.read_text())
    for name, d in results["datasets"].items():
        entry = d["arms"].get(arm)
        if not entry or name not in table["datasets"]:
            continue
        meta = json.loads((DATA / name / "meta.json").read_text())
        systems = dict(table["datasets"][name]["systems"])
        systems["dsagent"] = {k: v for k, v in entry.items() if k not in ("vs_before_ci95", "verdict")}
        systems["dsagent"]["adopted_from"] = f"budget_ab.py --half {results['half']}, arm {arm} ({results['generated']})"
        for e in systems.values():
            e.pop("vs", None)
        table["datasets"][name] = bench.score_dataset(name, meta, systems)
    table["generated"] = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    bench.RESULTS.write_text(json.dumps(table, indent=1, default=str))
    bench.write_doc(table)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--half", choices=["development", "confirmation", "large_development"], default="development")
    ap.add_argument("--datasets", nargs="*", help="default: every dataset of the half")
    ap.add_argument("--arms", nargs="*", default=["before", "after"], choices=list(ARMS))
    ap.add_argument("--budget", type=float, default=60)
    ap.add_argument("--tag", default="", help="a name for this A/B (its results file, table and run folders), so "
                    "that a run on a few datasets of a half does not replace the half's own A/B")
    ap.add_argument("--title", default="", help="the table's heading (default: stacking and using the budget)")
    ap.add_argument("--render", action="store_true", help="only rewrite the table from the saved results")
    ap.add_argument("--adopt", choices=list(ARMS), help="make this arm's runs the dsagent entries of the AutoML "
                    "table (benchmarks/results/automl.json), re-scored against the peers' predictions on disk")
    args = ap.parse_args()
    if args.render:
        write_doc(json.loads(results_path(args.half, args.tag).read_text()))
        return
    if args.adopt:
        adopt(json.loads(results_path(args.half, args.tag).read_text()), args.adopt)
        return
    if "before" not in args.arms:
        ap.error("--arms must include before (every arm is compared with it)")
    names = args.datasets or [n for n, h in halves().items() if h == args.half]
    if not names:
        ap.error("no datasets: benchmarks/suite_split.json is missing or the half is empty")
    results = {"datasets": {}, "budget_s": args.budget, "half": args.half, "arms": args.arms, "tag": args.tag,
               "title": args.title,
               "machine": f"{os.cpu_count()} cores, {platform.platform(terse=True)}, Python {platform.python_version()}"}
    loads = []
    for name in names:
        meta_path = DATA / name / "meta.json"
        if not meta_path.exists():
            print(f"{name}: no prepared split (run datasets.py first)", file=sys.stderr)
            continue
        meta = json.loads(meta_path.read_text())
        arms = {}
        for arm in args.arms:
            loads.append(os.getloadavg()[0])
            entry = run_system("dsagent", name, meta, args.budget, "", ARMS[arm], WORK / "runs_issue18" / args.tag / arm,
                               ARM_ANSWERS.get(arm))
            entry.update(session_facts(entry.get("session_dir")))
            arms[arm] = entry
            print(f"{name}/{arm}: {entry.get('status')} in {entry.get('wall_s')} s", file=sys.stderr, flush=True)
        results["datasets"][name] = compare(name, meta, arms)
        results.update(generated=datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"), load_min=min(loads),
                       load_max=max(loads))
        results_path(args.half, args.tag).parent.mkdir(parents=True, exist_ok=True)
        results_path(args.half, args.tag).write_text(json.dumps(results, indent=1, default=str))
        write_doc(results)


if __name__ == "__main__":
    main()
