"""What the business answers decide: each answers key below changes one decision, and each
decision says how, in a line the report and the RunResult carry.

latency_ms                  -> candidates slower per row than it are left out of "best"
prediction_volume           -> batch or online scoring, with a throughput check
retrain_every_days          -> the monitoring schedule (tools/monitor.py reads it)
min_useful_score            -> go / no-go against the test score's confidence interval
current_baseline            -> is the model better than what is in use today
features_at_prediction_time -> columns not known when a prediction is made are left out

Stdlib only: agent/runtime.py reads the verdict without importing an ML library.
"""

from __future__ import annotations

from typing import Any

ONLINE_LATENCY_MS = 1000.0  # a stated per-prediction latency at or under a second means someone waits on it
BATCH_VOLUME = 100_000  # rows a day from which one scheduled batch is cheaper than a service


def _number(v: Any) -> bool:
    """A stated positive number (an answer left to judgement is a phrase, not a number)."""
    return isinstance(v, (int, float)) and not isinstance(v, bool) and v > 0


def per_row_ms(row: dict[str, Any]) -> float | None:
    """Measured prediction time per row of a leaderboard row (batches of the CV folds)."""
    v = row.get("predict_ms_per_1k")
    return None if v in (None, "") else float(v) / 1000.0


def within_latency(board: list[dict[str, Any]], latency_ms: float | None) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """(candidates kept, candidates left out with their per-row time). The baseline is always kept
    (it is the yardstick); when every other candidate is too slow, the fastest stays, so there is
    still a model to ship, and the report says it misses the requirement."""
    if not _number(latency_ms):
        return board, []
    kept, out = [], []
    for r in board:
        ms = per_row_ms(r)
        (out if r.get("family") != "baseline" and ms is not None and ms > latency_ms else kept).append(r)
    if out and not [r for r in kept if r.get("family") != "baseline"]:
        fastest = min(out, key=lambda r: per_row_ms(r) or 0.0)
        out.remove(fastest)
        kept.append(fastest)
    return kept, [{"name": r["name"], "per_row_ms": round(per_row_ms(r) or 0.0, 4)} for r in out]


def serving_mode(volume: float | None, latency_ms: float | None, latency: dict[str, Any]) -> dict[str, Any] | None:
    """Batch or online, from rows a day and the latency requirement, and whether one core keeps up
    (measured batch time per row x rows a day)."""
    if not _number(volume):
        return None
    latency_ms = latency_ms if _number(latency_ms) else None
    batch_ms, batch_rows = latency.get("batch_ms"), latency.get("batch_rows") or 0
    core_s = volume * batch_ms / batch_rows / 1000.0 if batch_ms and batch_rows else None
    if latency_ms and latency_ms <= ONLINE_LATENCY_MS:
        mode, why = "online", f"a prediction must come back within {latency_ms:g} ms, so someone waits on it"
    elif volume >= BATCH_VOLUME:
        mode, why = "batch", f"{volume:,.0f} rows a day and no one waits on a single prediction: score them on a schedule"
    else:
        mode, why = "online", f"{volume:,.0f} rows a day is light enough to serve one request at a time"
    out = {"mode": mode, "why": why, "rows_per_day": volume, "core_seconds_per_day": round(core_s, 2) if core_s else None}
    if core_s is not None:
        out["throughput_ok"] = core_s < 86_400
        out["throughput"] = (f"at the measured {batch_ms / batch_rows:.4g} ms per row in batches, {volume:,.0f} rows take "
                             f"{core_s:,.1f} core-seconds a day ({core_s / 864:.2g}% of one core)")
    return out


def verdict(min_useful: float | None, score: float, ci: list[float] | tuple[float, float] | None,
            greater_is_better: bool) -> dict[str, Any] | None:
    """Go when the whole 95% CI clears the minimum useful score, no-go when none of it does,
    uncertain when the CI straddles it (more test data, or a pilot, decides)."""
    if not isinstance(min_useful, (int, float)):
        return None
    lo, hi = (ci[0], ci[1]) if ci else (score, score)
    good = (lambda v: v >= min_useful) if greater_is_better else (lambda v: v <= min_useful)
    worst, best = (lo, hi) if greater_is_better else (hi, lo)
    if good(worst):
        decision, why = "go", "the whole 95% CI clears"
    elif not good(best):
        decision, why = "no-go", "the whole 95% CI falls short of"
    else:
        decision, why = "uncertain", "the 95% CI straddles"
    return {"decision": decision, "min_useful_score": min_useful, "test_score": score, "test_ci": [lo, hi],
            "reason": f"{decision}: test score {score:.4g} (95% CI {lo:.4g} to {hi:.4g}); {why} the minimum useful "
                      f"score {min_useful:g}"}


def against_current(current: float | None, score: float, ci: list[float] | tuple[float, float] | None,
                    greater_is_better: bool) -> dict[str, Any] | None:
    """The model against the score of what is in use today. A number given for today's system has
    no per-row predictions to pair with, so the comparison is the model's CI against that number:
    better only when the whole CI is on the right side of it."""
    if not isinstance(current, (int, float)):
        return None
    lo, hi = (ci[0], ci[1]) if ci else (score, score)
    beats = lo > current if greater_is_better else hi < current
    worse = hi < current if greater_is_better else lo > current
    outcome = "better" if beats else "worse" if worse else "not distinguishable"
    return {"current_baseline": current, "outcome": outcome, "difference": score - current,
            "reason": f"{outcome} than what is in use today ({current:g}): test score {score:.4g}, 95% CI {lo:.4g} to "
                      f"{hi:.4g} (unpaired: today's per-row predictions are not available)"}


def unknown_at_prediction(columns: list[str], known: list[str] | str | None, keep: list[str]) -> list[str]:
    """Columns to leave out: every column not listed as known when a prediction is made ("all" or
    nothing listed: none), except `keep` (the target and the split columns, which the task needs)."""
    if not known or known == "all":
        return []
    known_set = set(known)
    return [c for c in columns if c not in known_set and c not in keep]


def use_lines(answers: dict[str, Any], ev: dict[str, Any]) -> list[str]:
    """Report lines: what each of these answers changed (markdown bullets)."""
    out = []
    single = (ev.get("latency") or {}).get("single_row_ms") or {}
    if single:
        out.append(f"- **Latency of the shipped model** (single row, this machine): p50 {single.get('p50')} ms, "
                   f"p95 {single.get('p95')} ms, p99 {single.get('p99')} ms.")
    if ev.get("latency_excluded"):
        out.append(f"- **Left out for latency** (over {answers.get('latency_ms')} ms per row): "
                   + ", ".join(f"{r['name']} ({r['per_row_ms']:g} ms)" for r in ev["latency_excluded"]) + ".")
    mode = serving_mode(answers.get("prediction_volume"), answers.get("latency_ms"), ev.get("latency") or {})
    if mode:
        out.append(f"- **Serving:** {mode['mode']} scoring recommended: {mode['why']}."
                   + (f" Throughput: {mode['throughput']}." if mode.get("throughput") else ""))
    if ev.get("verdict"):
        out.append(f"- **Go / no-go:** {ev['verdict']['reason']}.")
    if ev.get("current_comparison"):
        out.append(f"- **Against today's system:** {ev['current_comparison']['reason']}.")
    if _number(answers.get("retrain_every_days")):
        out.append(f"- **Retraining:** every {answers['retrain_every_days']:g} days at the latest (monitoring.md).")
    return out
