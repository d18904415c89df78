"""Scores shared by every runner of the forecasting benchmark (numpy and pandas only, so each venv can
import it): the last `horizon` steps of each series are held out; MASE is scaled by the in-sample
seasonal-naive MAE of the training part of the same series; sMAPE in percent; coverage of the 95%
interval over all held-out points."""

from __future__ import annotations

import numpy as np
import pandas as pd


def split(df: pd.DataFrame, horizon: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(train, test): the last `horizon` rows of each series are the test."""
    df = df.sort_values(["series", "time"])
    rank = df.groupby("series").cumcount(ascending=False)
    return df[rank >= horizon].reset_index(drop=True), df[rank < horizon].reset_index(drop=True)


def seasonal_naive(train: pd.DataFrame, test: pd.DataFrame, m: int) -> pd.DataFrame:
    out = []
    for s, g in test.groupby("series"):
        y = train[train["series"] == s]["y"].to_numpy()
        last = y[-m:]
        out.append(g.assign(yhat=[last[k % m] for k in range(len(g))]))
    return pd.concat(out, ignore_index=True)


def score(train: pd.DataFrame, scored: pd.DataFrame, m: int) -> dict[str, float | None]:
    """scored: test rows (series, time, y) with yhat and, when given, lower_95 / upper_95."""
    mase, smape = [], []
    for s, g in scored.groupby("series"):
        y = train[train["series"] == s]["y"].to_numpy()
        lag = m if len(y) > m else 1
        scale = np.mean(np.abs(y[lag:] - y[:-lag])) or 1.0
        e = g["y"].to_numpy() - g["yhat"].to_numpy()
        mase.append(np.mean(np.abs(e)) / scale)
        denom = np.abs(g["y"].to_numpy()) + np.abs(g["yhat"].to_numpy())
        smape.append(np.mean(np.where(denom > 0, 2 * np.abs(e) / np.where(denom > 0, denom, 1), 0.0)) * 100)
    out: dict[str, float | None] = {"mase": float(np.mean(mase)), "smape": float(np.mean(smape)), "coverage_95": None}
    if "lower_95" in scored:
        inside = (scored["y"] >= scored["lower_95"]) & (scored["y"] <= scored["upper_95"])
        out["coverage_95"] = float(inside.mean())
        out["points"] = int(len(inside))  # 8 or 18 points allow only coarse shares: report.py weighs them
    return out
