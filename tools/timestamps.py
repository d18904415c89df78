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
