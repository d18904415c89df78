"""Forecasting (issue 17): a library with no @tool, and one object, `ForecastTask` (task.py), that owns
what a TaskType owns (validation, split/backtest, candidates, evaluation, predict columns, report
section, autopilot steps). The thin tool module is tools.py; everything else is plain functions.

Modules: frequency (timestamps -> a regular panel), features (leak-free lag/rolling/calendar
features), models (naive, seasonal naive, global gradient boosting), backtest (rolling origin and
the metrics), intervals (conformal, per horizon step), profile (time-series profile), report
(report section, model card, notebook), task (ForecastTask).
"""
