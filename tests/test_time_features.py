"""Time-aware classification and regression (issue 17): under a time-ordered split the time column
yields calendar features of the row's own timestamp (kept only when they help in CV), and the
report scores the test split period by period."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd

from dsagent.tools.candidates import calendar
from dsagent.tools.derived_step import DerivedFeatures
from dsagent.tools.registry import ToolContext, all_tools
from dsagent.tools.report_time import performance_over_time, section


def _names(texts: list[str]) -> list[str]:
    return [t.split("=", 1)[0].strip() for t in texts]


def test_calendar_features_follow_the_resolution_of_the_timestamps():
    daily = pd.Series(pd.date_range("2023-11-01", periods=120, freq="D").strftime("%Y-%m-%d"))
    monthly = pd.Series(pd.date_range("2019-01-01", periods=40, freq="MS").astype(str))
    hourly = pd.Series(pd.date_range("2024-01-01", periods=72, freq="h").astype(str))
    assert _names(calendar(daily, "when")) == ["when_year", "when_quarter", "when_month", "when_dayofweek", "when_is_month_end"]
    assert _names(calendar(monthly, "when")) == ["when_year", "when_quarter", "when_month"]  # no weekday of a month stamp
    assert "when_hour" in _names(calendar(hourly, "when")) and "when_year" not in _names(calendar(hourly, "when"))
    assert calendar(daily, "when", ["when_month = month(when)"]) == [t for t in calendar(daily, "when") if "month(" not in t]
    assert calendar(daily, "year")[0] == "year_year = year(`year`)"  # a column named like a function is backquoted

    # the features read the row's own timestamp only; a missing one stays missing (the imputer fills it)
    rows = pd.DataFrame({"when": ["2024-01-31", "2024-02-03 14:00", None]})
    out = DerivedFeatures(calendar(daily, "when") + ["when_hour = hour(when)"]).fit(rows).transform(rows)
    assert out.loc[0, ["when_dayofweek", "when_is_month_end", "when_quarter"]].tolist() == [2.0, 1.0, 1.0]
    assert out.loc[1, ["when_dayofweek", "when_is_month_end", "when_hour"]].tolist() == [5.0, 0.0, 14.0]
    assert out.iloc[2][["when_year", "when_is_month_end", "when_hour"]].isna().all()


def _weekly_pattern(n: int = 280, seed: int = 0) -> pd.DataFrame:
    """Daily rows whose target jumps at weekends: only a calendar feature of `date` can see it."""
    rng = np.random.default_rng(seed)
    dates = pd.date_range("2021-01-01", periods=n, freq="D")
    x = rng.normal(size=n)
    y = 2 * x + 6 * (dates.day_of_week >= 5) + rng.normal(0, 0.5, n)
    return pd.DataFrame({"date": dates.strftime("%Y-%m-%d"), "x": x, "y": y.round(4)}).sample(frac=1.0, random_state=1)


def test_a_calendar_feature_that_helps_is_kept_and_the_report_scores_each_period(tmp_path):
    session = tmp_path / "s"
    (session / "artifacts").mkdir(parents=True)
    data = session / "data.csv"
    _weekly_pattern().to_csv(data, index=False)
    ctx = ToolContext(session_dir=session, artifacts_dir=session / "artifacts", data_path=data, seed=0, answers={},
                      roots=[str(session)])
    tools = all_tools()
    tools["define_task"].invoke(ctx, {"target": "y", "time_column": "date", "metric": "mae"})
    tools["engineer_features"].invoke(ctx, {"auto": True, "time_budget_s": 60})
    record = json.loads((ctx.artifacts_dir / "derived_features.json").read_text())
    calendar_rows = {r["name"]: r for r in record["features"] if r["source"] == "calendar"}
    assert calendar_rows["date_dayofweek"]["kept"] and calendar_rows["date_dayofweek"]["cv_change"] < -1.0
    task = json.loads((ctx.artifacts_dir / "task.json").read_text())
    assert "date_dayofweek = dayofweek(date)" in task["derived"]["features"] and "date" in task["derived"]["inputs"]
    assert "date" not in task["features"]  # the time column orders the split; only its calendar parts are features

    # the report's section, on the held-out rows in time order, with a model that drifts late in the window
    test = pd.read_csv(data).iloc[task["test_rows"]].reset_index(drop=True)
    order = pd.to_datetime(test["date"]).rank(method="first").to_numpy()
    y = test["y"].to_numpy()
    pred = y - 0.05 * order  # later rows: larger errors
    rows = performance_over_time(test, y, pred, None, task, "mae")
    assert len(rows) == 2 and rows[0]["to"] < rows[1]["from"] and sum(r["n"] for r in rows) == len(test)
    assert rows[1]["mae"] > rows[0]["mae"] and rows[1]["mean_residual"] > rows[0]["mean_residual"] > 0
    lines = section(rows, "mae", 1.0, ctx.artifacts_dir / "over_time.png", "plots/over_time.png")
    assert lines[0] == "## Performance over time" and (ctx.artifacts_dir / "over_time.png").stat().st_size > 5000
    assert performance_over_time(test, y, pred, None, {**task, "split": {**task["split"], "kind": "random"}}, "mae") == []


def test_performance_over_time_for_a_classifier_says_na_where_the_metric_is_undefined(tmp_path):
    """Buckets hold equal row counts in time order (rows at one time stay together); a period with one
    class only has no ROC AUC (None, shown n/a) instead of failing the report."""
    n = 60
    frame = pd.DataFrame({"t": pd.date_range("2024-01-01", periods=n, freq="h").astype(str)}).sample(frac=1.0, random_state=0)
    order = pd.to_datetime(frame["t"]).rank(method="first").to_numpy()
    y = np.where(order > 20, (order % 2).astype(int), 0)  # the first 20 hours: one class only
    p1 = np.clip(0.5 + 0.4 * np.where(y == 1, 1, -1) * (order % 3 > 0), 0, 1)
    proba = np.column_stack([1 - p1, p1])
    task = {"task": "binary", "split": {"kind": "time", "time_column": "t"}}
    rows = performance_over_time(frame, y, (p1 >= 0.5).astype(int), proba, task, "roc_auc")
    assert [r["n"] for r in rows] == [20, 20, 20] and rows[0]["from"] == "2024-01-01 00:00"
    assert rows[0]["roc_auc"] is None and all(0.5 < r["roc_auc"] <= 1.0 for r in rows[1:])
    lines = section(rows, "roc_auc", 0.8, tmp_path / "over_time.png", "plots/over_time.png")
    assert lines[6].startswith("| 2024-01-01 00:00 | 2024-01-01 19:00 | 20 | n/a |") and (tmp_path / "over_time.png").is_file()


def test_times_with_zones_offsets_or_none_read_alike_everywhere():
    """One rule for every place that reads times: zone-aware values go to UTC without their zone,
    zone-less ones stay as written, a column mixing the two (or offsets) parses, junk is NaT."""
    from dsagent.tools.features import DatetimeParts
    from dsagent.tools.timestamps import parse_times

    mixed = pd.Series(["2012-01-31T20:00:29Z", "2012-02-01 10:00", "2012-03-01T00:00:00+02:00", "not a time", None])
    got = parse_times(mixed)
    assert got.dt.tz is None
    assert got.iloc[:3].tolist() == [pd.Timestamp("2012-01-31 20:00:29"), pd.Timestamp("2012-02-01 10:00"),
                                     pd.Timestamp("2012-02-29 22:00")]
    assert got.iloc[3:].isna().all()
    parts = DatetimeParts().fit(mixed.to_frame("sent")).transform(mixed.to_frame("sent"))
    assert parts[0].tolist()[:4] == [2012.0, 1.0, 1.0, 20.0]  # year, month, day of week (Tuesday), hour in UTC
    assert np.isnan(parts[3]).all()


def test_a_zone_aware_time_column_trains_real_models(tmp_path):
    """openintro's email table carries "2012-01-31T20:00:29Z": every candidate failed on
    "Cannot subtract tz-naive and tz-aware" and the run shipped the constant baseline."""
    rng = np.random.default_rng(3)
    n = 160
    x = rng.normal(size=n)
    sent = pd.date_range("2012-01-01", periods=n, freq="7h", tz="UTC").strftime("%Y-%m-%dT%H:%M:%SZ")
    session = tmp_path / "s"
    (session / "artifacts").mkdir(parents=True)
    data = session / "data.csv"
    pd.DataFrame({"x": x, "sent": sent, "y": np.where(x + rng.normal(scale=0.5, size=n) > 0, "yes", "no")}).to_csv(data, index=False)
    ctx = ToolContext(session_dir=session, artifacts_dir=session / "artifacts", data_path=data, seed=0, answers={},
                      roots=[str(session)])
    tools = all_tools()
    tools["define_task"].invoke(ctx, {"target": "y", "metric": "roc_auc"})
    out = tools["train_models"].invoke(ctx, {"models": ["linear", "hist_gb_default"], "time_budget_s": 30})
    assert not [s for s in out.summary["skipped"] if "failed" in s]
    assert out.summary["best"] in {"linear", "hist_gb_default"}
