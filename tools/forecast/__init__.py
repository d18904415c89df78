"""Forecasting (issue 17): a library with no @tool, and one object, `ForecastTask` (task.py), that owns
what a TaskType owns (validation, split/backtest, candidates, evaluation, predict columns, report
section, autopilot steps). The thin tool module is tools.py; everything else is plain functions.

Modules: frequency (timestamps -> a regular panel), features (leak-free lag/rolling/calendar
features), covariates (known-future versus past-only columns), models (naive, seasonal naive, global
gradient boosting, the blend), stats (ETS, Theta, ARIMA per series, with their time cost estimate),
backtest (rolling origin, the metrics, the blend of the best), intervals (conformal, per horizon step),
profile (time-series profile), report (report section, model card, notebook), monitoring (the plan
and `dsagent monitor` on arriving actuals), task (ForecastTask).
"""

# The autopilot's workflow after profile_data when the answers say `task: forecast` (the tools of
# tools.py, in order). Here, with no import, so the agent side can read it without pandas.
AUTOPILOT_STEPS = ("define_forecast", "backtest_forecast", "evaluate_forecast", "write_forecast_report")
