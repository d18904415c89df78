"""Reading a column of times: one rule for every place that parses them (the profile, datetime
features, derived steps, time-ordered splits, the report's buckets), so they agree on each row."""

from __future__ import annotations

from typing import Any

import pandas as pd


def parse_times(values: Any) -> pd.Series:
    """Times as zone-less timestamps, NaT where a value does not read as a time.

    Zone-aware times ("2012-01-31T20:00:29Z", "+02:00") are converted to UTC and the zone dropped;
    zone-less times are kept as written. Without this, an aware column could not be subtracted from
    a naive timestamp and a column mixing offsets did not parse at all (openintro's email table:
    every candidate failed on "Cannot subtract tz-naive and tz-aware datetime-like objects" and the
    run shipped the constant baseline)."""
    series = values if isinstance(values, pd.Series) else pd.Series(values)
    return pd.to_datetime(series, errors="coerce", format="mixed", utc=True).dt.tz_convert(None)


def wall_times(values: Any) -> tuple[pd.Series, bool]:
    """Times on the clock they were recorded in, for forecasting's regular grid (NaT where a value is
    not a time), and whether the offsets changed within the column.

    One zone or one offset keeps its wall time with the zone dropped (a daily cycle stays at the
    hours it was recorded at). Offsets that change within the column (a daylight-saving change:
    +01:00, then +02:00) go to UTC, where the hours stay evenly spaced: the local clock skips or
    repeats an hour there, which no regular frequency holds, and pandas refuses such a column
    ("Mixed timezones detected") unless it is read as UTC."""
    series = values if isinstance(values, pd.Series) else pd.Series(values)
    if pd.api.types.is_datetime64_any_dtype(series):
        times = series
    else:
        try:
            times = pd.to_datetime(series, errors="coerce", format="mixed")
        except ValueError:  # offsets that change within the column
            times = None
        if times is None or not pd.api.types.is_datetime64_any_dtype(times):
            return parse_times(series), True
    return (times.dt.tz_localize(None) if getattr(times.dt, "tz", None) is not None else times), False
