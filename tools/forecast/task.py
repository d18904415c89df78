"""ForecastTask: the one object that owns what a TaskType owns for `task: forecast` (issue 16's seam):
validation of the answers and the data, the split and backtest, the candidates, the evaluation on
the untouched last horizon, the predict columns and predicting from history, and the autopilot's
steps. When the TaskType registry lands this class registers there; the tools in tools.py and the
hooks in the core (answers keys, CLI flags, the autopilot, predict) only call it.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field
from typing import Any, Callable

import numpy as np
import pandas as pd

from dsagent.tools.forecast import AUTOPILOT_STEPS, backtest, covariates, intervals, models, stats
from dsagent.tools.forecast.features import n_lags
from dsagent.tools.forecast.frequency import PREFIX, ForecastDataError, Panel, build_panel, series_ids
from dsagent.tools.timestamps import wall_times

# Steps ahead when nobody said: a season for monthly (12) and hourly (24) data, two quarters' worth of
# a year for quarterly (8), a quarter of a year for weekly (13), two weeks for daily (14).
DEFAULT_HORIZON = {12: 12, 4: 8, 52: 13, 7: 14, 24: 24, 5: 10, 1: 4}
PREDICT_COLUMNS = ("prediction", "lower_80", "upper_80", "lower_95", "upper_95")
MODEL_KIND = "dsagent-forecast"
EVALUATION_SHARE = 0.5  # of the time left: the window in which evaluate scores the candidates not chosen


@dataclass
class ForecastSpec:
    target: str
    time_column: str
    series_columns: list[str] = field(default_factory=list)
    horizon: int | None = None
    frequency: str | None = None
    known_future_columns: list[str] = field(default_factory=list)
    past_columns: list[str] | None = None  # None: every other numeric column, fixed by define()


class ForecastTask:
    name = "forecast"
    default_metric = "mase"
    greater_is_better = False
    predict_columns = PREDICT_COLUMNS
    # The autopilot's workflow after profile_data (tool names of tools.py).
    steps = AUTOPILOT_STEPS

    def __init__(self, spec: ForecastSpec):
        self.spec = spec

    @classmethod
    def from_answers(cls, answers: dict[str, Any]) -> "ForecastTask":
        target, time_column = answers.get("target"), answers.get("time_column")
        if not target:
            raise ForecastDataError("forecasting needs the column to forecast: pass --target COL or `target:` in the answers")
        if time_column in (None, "", "no"):
            raise ForecastDataError("forecasting needs the time column: put `time_column: COL` in the answers")
        return cls(ForecastSpec(target=target, time_column=time_column, series_columns=list(answers.get("series_columns") or []),
                                horizon=answers.get("horizon"), frequency=answers.get("frequency"),
                                known_future_columns=list(answers.get("known_future_columns") or [])))

    # -- validation and the panel ------------------------------------------------------------
    def panel(self, df: pd.DataFrame) -> Panel:
        s = self.spec
        notes: list[str] = []
        if s.past_columns is None:
            cov, notes = covariates.choose(df, s.target, s.time_column, s.series_columns, s.known_future_columns)
        else:
            cov = covariates.Covariates(known=list(s.known_future_columns), past=list(s.past_columns))
        panel = build_panel(df, s.time_column, s.target, s.series_columns, s.frequency, extra=cov.columns)
        panel.covariates = cov or None
        panel.notes += notes
        return panel

    def resolve_horizon(self, panel: Panel) -> tuple[int, str | None]:
        """(horizon, assumption or None). A given horizon that does not fit is refused; a default one shrinks."""
        n = len(panel.times)
        if self.spec.horizon:
            backtest.plan_windows(n, self.spec.horizon, panel.period)
            return int(self.spec.horizon), None
        h = DEFAULT_HORIZON.get(panel.period, panel.period)
        while h > 1 and (n - h - backtest.min_history(panel.period)) // h < backtest.MIN_WINDOWS:
            h -= 1
        backtest.plan_windows(n, h, panel.period)  # refuses when even one step does not fit
        return h, f"horizon = {h} steps (not given; the default for {panel.freq} data, shortened to fit the history)"

    def define(self, df: pd.DataFrame) -> tuple[dict[str, Any], Panel]:
        """task.json for a forecast, and the panel it describes."""
        panel = self.panel(df)
        self.spec.past_columns = panel.covariates.past if panel.covariates else []
        horizon, assumed = self.resolve_horizon(panel)
        self.spec.horizon = horizon
        windows = backtest.plan_windows(len(panel.times), horizon, panel.period)
        origins, test_origin = backtest.cutoffs(panel.times, horizon, windows)
        task = {"task": self.name, "target": self.spec.target, "metric": self.default_metric, "greater_is_better": False,
                **{k: v for k, v in asdict(self.spec).items() if k != "target"}, "frequency": panel.freq,
                "period": panel.period, "n_series": int(panel.frame["series"].nunique()), "n_times": len(panel.times),
                "n_rows": int(len(panel.frame)), "gaps_filled": panel.gaps_filled, "notes": panel.notes,
                "split": {"kind": "rolling_origin", "windows": windows, "origins": [str(o) for o in origins],
                          "test_origin": str(test_origin), "test_window": [str(panel.times[-horizon]), str(panel.times[-1])]},
                "assumptions": [assumed] if assumed else []}
        return task, panel

    # -- candidates, backtest, evaluation ----------------------------------------------------
    def candidates(self, panel: Panel | None = None, seconds_left: float = float("inf"),
                   only: list[str] | None = None) -> tuple[tuple[str, ...], list[str]]:
        """(the models to backtest, notes on those left out): the baselines and the global model; ETS,
        Theta and ARIMA per series where series are few and a timed trial fit says they fit the budget;
        `only` (the answers' forecast_models) narrows them, the seasonal naive always stays."""
        keep = set(only or (*models.CANDIDATES, *models.STATISTICAL)) | {"seasonal_naive"}
        base = tuple(n for n in models.CANDIDATES if n in keep)
        wanted = [n for n in models.STATISTICAL if n.removesuffix("_log") in keep]  # "arima" brings arima_log
        if panel is None or not wanted:
            return base, []
        h = int(self.spec.horizon)
        series = {s: y[: len(y) - h] for s, (_, y) in models.as_series(panel.frame).items()}  # never the test window
        windows = backtest.plan_windows(len(panel.times), h, panel.period)
        local, notes = stats.plan(series, h, panel.period, windows, seconds_left, wanted)
        return base + tuple(local), notes

    def backtest(self, panel: Panel, seed: int = 0, progress: Callable[[str], None] | None = None,
                 seconds_left: float = float("inf"), only: list[str] | None = None) -> dict[str, Any]:
        """Every candidate through the rolling-origin windows, then the blend of the best."""
        names, notes = self.candidates(panel, seconds_left, only)
        deadline = time.perf_counter() + seconds_left * stats.SHARE_OF_BUDGET if seconds_left != float("inf") else None
        results = backtest.run_backtest(panel, int(self.spec.horizon), names, seed=seed, progress=progress, deadline=deadline)
        backtest.add_blend(results)
        results["notes"] = notes + results["notes"]
        return results

    @staticmethod
    def leaderboard(results: dict[str, Any]) -> list[dict[str, Any]]:
        rows = [{"name": n, "family": models.FAMILY[n], "cv_mean": r["cv_mean"], "cv_std": r["cv_std"], "fit_s": r["fit_s"],
                 "metric": "mase", **{f"bt_{k}": v for k, v in r["metrics"].items() if k in backtest.METRICS},
                 **{k: r[k] for k in ("members", "fell_back") if k in r}}
                for n, r in results["models"].items()]
        # The blend, when there is one, comes first: it is the backtest's choice (backtest.add_blend says why)
        return sorted(rows, key=lambda r: (r["name"] != "blend", r["cv_mean"]))

    def evaluate(self, panel: Panel, results: dict[str, Any], chosen: str, seed: int = 0,
                 board: list[dict[str, Any]] | None = None, seconds_left: float = float("inf")) -> tuple[dict[str, Any], dict[str, Any]]:
        """Score every candidate of the leaderboard `board` (default: the baselines and the global model)
        once on the untouched test window (fit on everything before it), attach conformal intervals to
        the chosen one, then refit it on all the data. Returns (evaluation record, the model to save).
        The chosen model, its members and the seasonal naive are always scored; another candidate only
        when its backtest fit time (one window) still ends within half of `seconds_left`: the final fit
        and the report come after, and those test scores only inform."""
        board = board or [{"name": n} for n in models.CANDIDATES]
        members = {r["name"]: r.get("members") for r in board}
        needed = {"seasonal_naive", chosen, *(members.get(chosen) or ())}
        cost = {r["name"]: float(r.get("fit_s") or 0.0) for r in board if r["name"] != "blend"}  # a blend only averages
        optional_until = time.perf_counter() + EVALUATION_SHARE * seconds_left
        not_scored: list[str] = []
        h, times = int(self.spec.horizon), panel.times
        test_origin = times[-h - 1]
        history = backtest.cut(panel.frame, test_origin)
        scales = backtest.mase_scales(history, panel.period)
        iscales = intervals.scales(history, panel.period)
        actual = panel.frame[panel.frame["time"] > test_origin]
        q = intervals.quantiles(results["models"][chosen]["rows"], h)
        test_scores, chosen_rows, forecasts = {}, None, {}
        for name in sorted(members, key=lambda n: n == "blend"):  # a blend averages its members' forecasts
            if name not in needed and (time.perf_counter() + cost.get(name, 0.0) > optional_until
                                       or any(m not in forecasts for m in members.get(name) or ())):
                not_scored.append(name)
                continue
            if name == "blend":
                pred = forecasts[members[name][0]].copy()
                pred["yhat"] = np.mean([forecasts[m]["yhat"].to_numpy() for m in members[name]], axis=0)
            else:
                state = models.fit(name, history, h, panel.period, panel.freq, seed=seed, cov_frame=panel.frame,
                                   cov_spec=panel.covariates)
                pred = models.forecast(state, history, cov_frame=panel.frame)
            forecasts[name] = pred
            rows = backtest.score_window(pred, actual, scales)
            test_scores[name] = backtest.metrics(rows)
            if name == chosen:
                chosen_rows = intervals.apply(rows, q, iscales)
        assert chosen_rows is not None
        everything = models.as_series(panel.frame)
        final = models.fit(chosen, everything, h, panel.period, panel.freq, seed=seed, members=members.get(chosen),
                           cov_frame=panel.frame, cov_spec=panel.covariates)
        ev = {"task": self.name, "model": chosen, "metric": "mase", "greater_is_better": False,
              "test_score": test_scores[chosen]["mase"], "test_ci": None,
              "baseline_score": test_scores["seasonal_naive"]["mase"], "baseline": "seasonal_naive",
              "test_metrics": test_scores[chosen], "test_by_model": test_scores,
              "by_step": backtest.breakdown(chosen_rows, "step"), "by_series": backtest.breakdown(chosen_rows, "series"),
              "coverage_test": intervals.coverage(chosen_rows), "coverage_test_check": intervals.consistency(chosen_rows),
              "coverage_backtest": intervals.backtest_coverage(results["models"][chosen]["rows"], h),
              "interval_quantiles": q, "test_window": [str(times[-h]), str(times[-1])], "horizon": h}
        if not_scored:
            ev["not_scored_on_test"] = not_scored
        model = self.model_artifact(final, everything, backtest.mase_scales(everything, panel.period), q, panel)
        model["interval_scales"] = intervals.scales(everything, panel.period)
        return ev, {"model": model, "test_rows": chosen_rows}

    # -- the saved model: plain types plus, for gbm, a scikit-learn regressor -------------------
    def model_artifact(self, state: dict[str, Any], history: models.Series, scales: dict[str, float],
                       q: dict[str, list[float]], panel: Panel) -> dict[str, Any]:
        keep = 3 * n_lags(panel.period) + 2 * panel.period
        local = {state["name"], *(m["name"] for m in state.get("members", []))} & set(models.STATISTICAL)
        if local:  # a statistical model refits on the whole history when it forecasts: keep all of it
            keep = max(len(y) for _, y in history.values())
        cov = panel.covariates
        saved = {s: {"times": [str(t) for t in ts[-keep:]], "y": [float(v) for v in y[-keep:]]} for s, (ts, y) in history.items()}
        for s, (ts, _) in history.items():  # the covariates' recent past: past-only lags read it
            if cov:
                saved[s]["cov"] = {c: [float(v) for v in a[-keep:]] for c, a in cov.arrays(panel.frame, s, ts).items()}
        return {"kind": MODEL_KIND, "spec": asdict(self.spec), "state": state, "scales": scales, "quantiles": q,
                "freq": panel.freq, "period": panel.period, "series_values": panel.series_values, "history": saved,
                "covariates": cov.to_dict() if cov else None}


def predict_from_history(model: dict[str, Any], new_history: pd.DataFrame | None = None, horizon: int | None = None) -> pd.DataFrame:
    """One row per series and step after each series' last timestamp: the time column, the series
    columns, prediction, lower_80, upper_80, lower_95, upper_95. `new_history` (raw rows with the time,
    target and series columns) extends or replaces what the model saw; the saved history fills in. A
    model with known-future columns needs them for the horizon: rows after the history with the target
    empty and those columns filled."""
    spec = ForecastSpec(**model["spec"])
    h = int(horizon or spec.horizon)
    if h > spec.horizon:
        raise ForecastDataError(f"a horizon of {h} steps is beyond the {spec.horizon} steps the model was trained and backtested for; "
                                f"ask for at most {spec.horizon}, or re-run with horizon: {h}")
    cov = covariates.Covariates(**model["covariates"]) if model.get("covariates") else None
    if cov and cov.known and new_history is None:
        raise ForecastDataError(f"this forecast uses known-future column(s) {', '.join(cov.known)}: pass a history file with "
                                f"rows for the next {h} steps that carry them (target empty)")
    saved = saved_history(model)
    values = dict(model.get("series_values") or {})
    if new_history is not None:
        fresh, future = _split_future(new_history, spec, model["freq"], cov)
        values.update(fresh.series_values)
        saved = saved[~saved.set_index(["series", "time"]).index.isin(fresh.frame.set_index(["series", "time"]).index)]
        saved = pd.concat([saved, fresh.frame], ignore_index=True)
        regular = build_panel(saved.rename(columns={"time": "_t", "y": "_y"}), "_t", "_y", ["series"], model["freq"]).frame
        covcols = [c for c in saved.columns if c.startswith(PREFIX)]
        if covcols:  # the regular grid drops the covariate columns: bring them back, then the future rows
            regular = regular.merge(saved[["series", "time", *covcols]], on=["series", "time"], how="left")
        saved = pd.concat([regular, future], ignore_index=True)
    history = models.as_series(saved.dropna(subset=["y"]))
    if cov:
        for s, (times, _) in history.items():
            covariates.require_future(cov, saved, s, models.future_times(times, h, model["freq"]))
    pred = models.forecast(model["state"], history, h, cov_frame=saved if cov else None)
    scales = {s: model["scales"].get(s) or backtest.mase_scales({s: history[s]}, model["period"])[s] for s in history}
    pred = intervals.apply(pred, model["quantiles"], interval_scales(model, history, scales))
    out = pd.DataFrame({spec.time_column: pred["time"]})
    for i, col in enumerate(spec.series_columns):
        out[col] = [values.get(s, {}).get(col, s.split(" | ")[i] if " | " in s or i == 0 else None) for s in pred["series"]]
    out["prediction"] = pred["yhat"].to_numpy()
    for lv in intervals.LEVELS:
        out[f"lower_{lv}"] = pred[f"lower_{lv}"].to_numpy()
        out[f"upper_{lv}"] = pred[f"upper_{lv}"].to_numpy()
    return out.reset_index(drop=True)


def interval_scales(model: dict[str, Any], history: models.Series, fallback: dict[str, float]) -> dict[str, float]:
    """The scales the interval quantiles are in: the recent volatility of the history forecast from
    (a model saved before interval scales existed keeps its MASE scales, which its quantiles are in)."""
    if "interval_scales" not in model:
        return fallback
    return intervals.scales(history, model["period"])


def saved_history(model: dict[str, Any]) -> pd.DataFrame:
    """The history the model keeps (series, time, y and its covariate columns), as a long frame."""
    parts = []
    for s, v in model["history"].items():
        part = pd.DataFrame({"series": s, "time": pd.to_datetime(v["times"]), "y": v["y"]})
        for c, values in (v.get("cov") or {}).items():
            part[PREFIX + c] = values
        parts.append(part)
    return pd.concat(parts, ignore_index=True)


def _split_future(df: pd.DataFrame, spec: ForecastSpec, freq: str, cov: covariates.Covariates | None) -> tuple[Panel, pd.DataFrame]:
    """(the panel of the rows with a target, the later rows that only carry covariates, as panel rows)."""
    extra = [c for c in (cov.columns if cov else []) if c in df.columns]
    y = pd.to_numeric(df[spec.target], errors="coerce")
    if cov is None or y.notna().all():
        return build_panel(df, spec.time_column, spec.target, spec.series_columns, freq, extra=extra), pd.DataFrame()
    sid = series_ids(df, spec.series_columns)
    times, _ = wall_times(df[spec.time_column])
    last = times.where(y.notna()).groupby(sid).transform("max")
    later = (y.isna() & (times > last)).to_numpy()
    fresh = build_panel(df[~later], spec.time_column, spec.target, spec.series_columns, freq, extra=extra)
    future = build_panel(df[later], spec.time_column, spec.target, spec.series_columns, freq, extra=extra, require_target=False)
    return fresh, future.frame
