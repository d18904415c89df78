"""Monitoring a forecast as actuals arrive: `dsagent monitor SESSION ACTUALS.csv`.

A forecast has no feature drift to watch that matters as much as its own error, so the plan holds
the backtest's range of MASE and the interval coverage, and the check scores forecasts against the
actuals: for each series, a forecast made from the saved history up to the step before the actuals'
first timestamp (when the actuals follow the run's data, that is exactly the session's last
forecast), then, when the actuals run longer than the horizon, the next forecast from the history
plus the actuals already seen, and so on: every forecast that would have been made.

Verdicts (the plan's thresholds, written by evaluate_forecast):
- investigate (exit 3): the batch's MASE leaves the backtest's range (above its worst window and
  the test window);
- retrain (exit 4): the MASE passes `mase_retrain` (twice that range's top), or the 95% intervals
  cover fewer than `coverage_95_min` of the actuals (checked from `min_points_coverage` points on).
"""

from __future__ import annotations

from typing import Any

import pandas as pd

from dsagent.tools.forecast import backtest, covariates, intervals, models
from dsagent.tools.forecast.covariates import Covariates
from dsagent.tools.forecast.frequency import ForecastDataError, build_panel
from dsagent.tools.forecast.task import interval_scales, saved_history

COVERAGE_95_MIN = 0.75  # a well-calibrated 95% interval misses 3 of 8 points with probability < 1%
MIN_POINTS_COVERAGE = 8
RETRAIN_FACTOR = 2.0


def build_plan(spec: dict[str, Any], ev: dict[str, Any], mase_windows: list[float], retrain_every_days: float) -> dict[str, Any]:
    """monitoring.json for a forecast: the reference error and coverage, and the thresholds."""
    top = float(max([*mase_windows, ev["test_score"]]))
    return {"task": "forecast", "target": spec["target"], "time_column": spec["time_column"],
            "series_columns": list(spec.get("series_columns") or []), "horizon": spec["horizon"],
            "frequency": spec["frequency"], "model": ev["model"],
            "reference": {"backtest_mase_windows": [round(float(m), 6) for m in mase_windows],
                          "backtest_mase_range": [round(float(min(mase_windows)), 6), round(float(max(mase_windows)), 6)],
                          "test_mase": ev["test_score"], "coverage_backtest": ev["coverage_backtest"],
                          "coverage_test": ev["coverage_test"]},
            "thresholds": {"mase_investigate": round(top, 6), "mase_retrain": round(RETRAIN_FACTOR * top, 6),
                           "coverage_95_min": COVERAGE_95_MIN, "min_points_coverage": MIN_POINTS_COVERAGE},
            "schedule": {"check_every": "each batch of actuals", "retrain_every_days": retrain_every_days}}


def plan_markdown(plan: dict[str, Any]) -> str:
    r, t = plan["reference"], plan["thresholds"]
    lo, hi = r["backtest_mase_range"]
    return "\n".join([
        f"# Monitoring plan: forecast of {plan['target']} ({plan['model']})", "",
        f"Check with `dsagent monitor SESSION ACTUALS.csv`: the actuals carry the time column `{plan['time_column']}`, "
        f"the target `{plan['target']}`" + (f" and the series columns {', '.join(plan['series_columns'])}" if plan["series_columns"] else "")
        + ". Each actual is scored against the forecast made from the history before it.", "",
        f"- Reference: backtest MASE {lo:.3f} to {hi:.3f} over {len(r['backtest_mase_windows'])} windows, test MASE "
        f"{r['test_mase']:.3f}; 95% interval coverage {r['coverage_test'].get('95')} on the test window.",
        f"- Investigate (exit 3): batch MASE above {t['mase_investigate']:.3f} (outside the backtest's range).",
        f"- Retrain (exit 4): batch MASE above {t['mase_retrain']:.3f}, or 95% intervals covering under "
        f"{t['coverage_95_min']:.0%} of the actuals (with at least {t['min_points_coverage']} points).",
        f"- Retrain anyway every {plan['schedule']['retrain_every_days']:g} days.", ""])


def score_actuals(model: dict[str, Any], data: pd.DataFrame) -> tuple[pd.DataFrame, list[str]]:
    """Every forecast the model would have made before each actual, scored: rows series, step, time,
    y, yhat, scale, lower_/upper_; plus notes (series not scored)."""
    spec = model["spec"]
    missing = [c for c in [spec["time_column"], spec["target"], *spec["series_columns"]] if c not in data.columns]
    if missing:
        raise ForecastDataError(f"the actuals lack column(s) {', '.join(map(repr, missing))}; they need the time column, "
                                "the target and the series columns")
    if data[spec["target"]].isna().all():
        raise ForecastDataError(f"the actuals have no value of the target {spec['target']!r}; monitor scores forecasts "
                                "against actuals, so they must carry it")
    cov = Covariates(**model["covariates"]) if model.get("covariates") else None
    extra = [c for c in (cov.columns if cov else []) if c in data.columns]
    actual = build_panel(data, spec["time_column"], spec["target"], spec["series_columns"], model["freq"], extra=extra).frame
    saved, h, step = saved_history(model), int(spec["horizon"]), pd.tseries.frequencies.to_offset(model["freq"])
    parts, notes = [], []
    for s, got in actual.groupby("series", sort=True):
        past = saved[(saved["series"] == s) & (saved["time"] < got["time"].iloc[0])]
        if past.empty:
            notes.append(f"series {s!r} has no history before {got['time'].iloc[0].date()} in the model: not scored")
            continue
        if past["time"].iloc[-1] + step != got["time"].iloc[0]:
            raise ForecastDataError(
                f"the actuals of series {s!r} start at {got['time'].iloc[0]}, but the model's history ends at "
                f"{past['time'].iloc[-1]}: the steps between are missing; include them in the actuals file")
        known = past
        for start in range(0, len(got), h):
            chunk = got.iloc[start:start + h]
            history = models.as_series(known)
            frame = pd.concat([known, chunk], ignore_index=True)  # known-future covariates at the forecast times
            if cov:
                covariates.require_future(cov, frame, s, pd.DatetimeIndex(chunk["time"]))
            pred = models.forecast(model["state"], history, len(chunk), cov_frame=frame if cov else None)
            scales = {s: model["scales"].get(s) or backtest.mase_scales(history, model["period"])[s]}
            rows = backtest.score_window(pred, chunk, scales)
            width = interval_scales(model, history, scales)
            parts.append(intervals.apply(rows, model["quantiles"], width).assign(origin=known["time"].iloc[-1]))
            known = pd.concat([known, chunk], ignore_index=True)
    if not parts:
        raise ForecastDataError("none of the actuals' series is one the model forecasts; check the series columns' values")
    return pd.concat(parts, ignore_index=True), notes


def apply(plan: dict[str, Any], model: dict[str, Any], manifest: dict[str, Any], data: pd.DataFrame) -> dict[str, Any]:
    """The forecast's monitoring report (the shape `dsagent monitor` prints): verdict ok/investigate/retrain."""
    from dsagent.tools.drift import VERDICT_EXIT, worse

    rows, notes = score_actuals(model, data)
    t, ref = plan["thresholds"], plan["reference"]
    m, cov = backtest.metrics(rows), intervals.coverage(rows)
    lines = [f"MASE {m['mase']:.3f} on {len(rows)} actuals (backtest range {ref['backtest_mase_range'][0]:.3f} to "
             f"{ref['backtest_mase_range'][1]:.3f}, test {ref['test_mase']:.3f}; investigate above {t['mase_investigate']:.3f}, "
             f"retrain above {t['mase_retrain']:.3f})",
             "interval coverage: " + ", ".join(f"{lv}% {cov[str(lv)]:.0%}" for lv in intervals.LEVELS)
             + f" (retrain when 95% is under {t['coverage_95_min']:.0%})"]
    verdict, reasons = "ok", []
    lo, hi = ref["backtest_mase_range"]
    if m["mase"] > t["mase_investigate"]:
        verdict = "investigate"
        reasons.append(f"MASE {m['mase']:.3f} on {len(rows)} actuals is outside the backtest's range ({lo:.3f} to {hi:.3f}, "
                       f"test {ref['test_mase']:.3f})")
    if m["mase"] > t["mase_retrain"]:
        verdict = worse(verdict, "retrain")
        reasons.append(f"MASE {m['mase']:.3f} is past the retrain threshold {t['mase_retrain']:.3f}")
    if len(rows) >= t["min_points_coverage"] and cov["95"] < t["coverage_95_min"]:
        verdict = worse(verdict, "retrain")
        reasons.append(f"the 95% intervals cover {cov['95']:.0%} of the actuals (threshold {t['coverage_95_min']:.0%})")
    elif len(rows) < t["min_points_coverage"]:
        notes.append(f"only {len(rows)} actuals: coverage is checked from {t['min_points_coverage']} on")
    by_series = backtest.breakdown(rows, "series")
    worst = sorted(by_series, key=lambda r: -r["mase"])[:5]
    return {"task": "forecast", "rows": int(len(rows)), "features": {}, "quality": [], "reasons": reasons, "notes": notes,
            "metrics": m, "coverage": cov, "summary_lines": lines,
            "forecasts": int(rows.groupby(["series", "origin"]).ngroups),
            "worst_series": [{"series": r["series"], "n": r["n"], "mase": r["mase"]} for r in worst],
            "by_step": [{"step": r["step"], "n": r["n"], "mase": r["mase"]} for r in backtest.breakdown(rows, "step")],
            "verdict": verdict, "exit_code": VERDICT_EXIT[verdict], "drifted": []}


def write_plan(artifacts_dir, spec: dict[str, Any], ev: dict[str, Any], mase_windows: list[float],
               retrain_every_days: float) -> dict[str, Any]:
    import json

    from dsagent.tools import paths

    plan = build_plan(spec, ev, mase_windows, retrain_every_days)
    (artifacts_dir / paths.MONITORING).write_text(json.dumps(plan, indent=1, default=str))
    (artifacts_dir / paths.MONITORING_MD).write_text(plan_markdown(plan), encoding="utf-8")
    return plan

