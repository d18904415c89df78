"""Forecasting's time column across time zones: one zone keeps its wall clock, offsets that change
within the data (daylight saving) are read as UTC instead of failing (pandas refuses such a column
unless told to read it as UTC)."""

from __future__ import annotations

import pandas as pd

from dsagent.tools.forecast.frequency import build_panel
from dsagent.tools.timestamps import wall_times


def _hourly(stamps: list[str]) -> pd.DataFrame:
    return pd.DataFrame({"when": stamps, "load": range(len(stamps))})


def test_one_zone_keeps_its_wall_clock():
    times, in_utc = wall_times(pd.Series(["2024-01-05T08:00:00+01:00", "2024-01-05T09:00:00+01:00"]))
    assert not in_utc and times.dt.hour.tolist() == [8, 9] and times.dt.tz is None


def test_a_daylight_saving_change_is_read_as_utc_on_an_even_hourly_grid():
    # Europe's spring change: 01:00 +01:00, then the clock jumps to 03:00 +02:00 (one hour later).
    stamps = ["2024-03-31T00:00:00+01:00", "2024-03-31T01:00:00+01:00", "2024-03-31T03:00:00+02:00",
              "2024-03-31T04:00:00+02:00", "2024-03-31T05:00:00+02:00"]
    times, in_utc = wall_times(pd.Series(stamps))
    assert in_utc and times.dt.hour.tolist() == [23, 0, 1, 2, 3]  # UTC, evenly spaced
    panel = build_panel(_hourly(stamps), "when", "load")
    assert panel.freq == "h" and len(panel.frame) == 5 and panel.gaps_filled == 0
    assert any("daylight saving" in n and "UTC" in n for n in panel.notes)


def test_naive_and_junk_values():
    times, in_utc = wall_times(pd.Series(["2024-01-01 10:00", "not a time"]))
    assert not in_utc and times.iloc[0] == pd.Timestamp("2024-01-01 10:00") and pd.isna(times.iloc[1])
