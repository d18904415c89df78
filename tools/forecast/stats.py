"""Statistical models per series (statsmodels): ETS, Theta and ARIMA, for panels with few series.

Each is a local model: it is fit on one series' history at the moment it forecasts (in a backtest,
the past of the origin; at predict time, the saved history plus any new rows), so "fitting" stores
only the name. Configurations are chosen automatically per series by AICc on the history the fit sees
(the way statsforecast's AutoETS/AutoARIMA do, on a smaller search to keep the cost predictable):
- ETS: trend none, additive damped or additive, season additive (additive errors) or multiplicative
  (multiplicative errors, positive series only): up to six fits, the lowest AICc wins;
- ARIMA: d by a KPSS test, D = 1 when the series has a season (period 2-24, three seasons of history),
  then a stepwise search over (p, q) in 0-2 and (P, Q) in 0-1 from (1,d,1)(0,D,1): a neighbour that lowers
  the AICc becomes the centre, until none does or MAX_ARIMA_FITS fits have run;
- Theta: statsmodels' ThetaModel, deseasonalised (multiplicatively when positive) with two seasons.
A long season (weekly data, period 52) is too costly for seasonal ETS/ARIMA state spaces (statsforecast's
AutoETS refuses it too): those series are seasonally adjusted with classical decomposition, modelled
without a season, and the last season's indices are added back.

The choice is made once per series and run, on the first (oldest, shortest) history a fit sees: in a
backtest that is the first origin, so no later window's data picks the configuration; later windows,
the test window and the final model refit that configuration on their own history. At predict time
(a fresh process) it is chosen on the whole history.

`<name>_log` variants (arima_log, theta_log) model log(y) and exponentiate back, for positive series
whose seasonal swing grows with the level; whether they beat the raw models is decided by the backtest
like any other candidate, never on the test window. ETS has no log variant: its multiplicative
season is the same idea inside the model.

A fit that fails or returns a non-finite forecast falls back to the seasonal naive for that series
(counted in the model's state, said in the leaderboard), so one awkward series never stops a run.

Where series are many, per-series fits cost too much and the global model learns across them: the
statistical models run for at most MAX_SERIES series, and only when a timed trial fit says the
backtest fits the time left.
"""

from __future__ import annotations

import hashlib
import time
import warnings
from typing import Any

import numpy as np

BASE = ("ets", "theta", "arima")
LOG = ("arima_log", "theta_log")  # the positive-only variants on log(y)
NAMES = BASE + LOG
MAX_SERIES = 20
MAX_SEASON = 24  # longer seasons: adjusted by decomposition, not modelled in the state space
MAX_ARIMA_FITS = 8
SHARE_OF_BUDGET = 0.4  # at most this share of the time left goes to the statistical models' backtest

_CHOSEN: dict[tuple, tuple[Any, int]] = {}  # (model, series fingerprint, period) -> (configuration, fits it took)


def available() -> str | None:
    """None when statsmodels imports, else the reason it cannot be used."""
    try:
        import statsmodels  # noqa: F401
    except ImportError as exc:  # pragma: no cover - a core dependency; said, never a crash
        return f"statsmodels is not installed ({exc}); the statistical models are skipped"
    return None


def _aicc(result: Any) -> float:
    value = float(getattr(result, "aicc", np.nan))
    return value if np.isfinite(value) else np.inf


def _key(kind: str, y: np.ndarray, m: int) -> tuple:
    """A series is known by its first seasons: every history of it in a run starts the same way."""
    return kind, m, hashlib.sha1(np.asarray(y[: max(3 * m, 24)], dtype=float).tobytes()).hexdigest()


def _chosen(kind: str, y: np.ndarray, m: int, search) -> Any:
    """The configuration chosen for this series (searched on its first history, then reused)."""
    key = _key(kind, y, m)
    if key not in _CHOSEN:
        _CHOSEN[key] = search()
    return _CHOSEN[key][0]


def configuration(name: str, y: np.ndarray, m: int) -> Any:
    """The configuration chosen for this series (ETS: (season, trend); ARIMA: (p, d, q, P, D, Q)), or
    None before a fit has chosen one: the seasonal one when the history was long enough for a season."""
    found = _CHOSEN.get(_key(name + "1", y, m)) or _CHOSEN.get(_key(name + "0", y, m))
    return found[0] if found else None


def last_search_fits(kind: str, y: np.ndarray, m: int) -> int:
    return _CHOSEN.get(_key(kind, y, m), (None, 0))[1]


def _adjust(y: np.ndarray, m: int, h: int, positive: bool) -> tuple[np.ndarray, np.ndarray | None, bool]:
    """(the series to model, the season to put back over h steps or None, whether it is multiplicative)."""
    if m <= MAX_SEASON or len(y) < 2 * m:
        return y, None, False
    from statsmodels.tsa.seasonal import seasonal_decompose

    mult = bool(positive)
    season = np.asarray(seasonal_decompose(y, period=m, model="multiplicative" if mult else "additive",
                                           two_sided=True).seasonal, dtype=float)
    ahead = np.array([season[len(y) - m + (k % m)] for k in range(h)])
    return (y / season if mult else y - season), ahead, mult


def _ets(y: np.ndarray, h: int, m: int) -> np.ndarray:
    from statsmodels.tsa.exponential_smoothing.ets import ETSModel

    positive = bool((y > 0).all())
    z, ahead, mult = _adjust(y, m, h, positive)
    seasonal = m > 1 and ahead is None and len(y) >= 2 * m + 2
    seasons = (["add", "mul"] if positive else ["add"]) if seasonal else [None]
    # trend none, additive damped, additive: without the undamped trend a steadily trending series got no
    # trend at all (AICc preferred none to a damped one on 36 points) and a flat forecast (statsforecast's
    # AutoETS searches all three too)
    configs = [(s, trend) for s in seasons for trend in (None, "damped", "add")]

    def model(cfg):
        season, trend = cfg
        return ETSModel(z, error="mul" if season == "mul" else "add", trend="add" if trend else None,
                        damped_trend=trend == "damped", seasonal=season, seasonal_periods=m if season else None)

    def search():
        scored = []
        for cfg in configs:
            try:
                scored.append((_aicc(model(cfg).fit(disp=False)), cfg))
            except Exception:  # noqa: BLE001 - a configuration that cannot fit is just not a candidate
                continue
        return (min(scored, key=lambda t: t[0])[1] if scored else configs[0]), len(configs)

    fc = np.asarray(model(_chosen(f"ets{int(seasonal)}", y, m, search)).fit(disp=False).forecast(h), dtype=float)
    return fc if ahead is None else (fc * ahead if mult else fc + ahead)


def _theta(y: np.ndarray, h: int, m: int) -> np.ndarray:
    from statsmodels.tsa.forecasting.theta import ThetaModel

    season = m > 1 and len(y) >= 2 * m
    method = "multiplicative" if (y > 0).all() else "additive"
    return np.asarray(ThetaModel(y, period=m if season else 1, deseasonalize=season, method=method).fit().forecast(h),
                      dtype=float)


def _diffs(y: np.ndarray) -> int:
    """d from a KPSS test (level-stationary at 5%: d = 0, else difference and test again, at most 2)."""
    from statsmodels.tsa.stattools import kpss

    d, z = 0, y
    while d < 2 and len(z) > 10:
        try:
            p = kpss(z, regression="c", nlags="auto")[1]
        except Exception:  # noqa: BLE001 - a degenerate series: one difference is the usual answer
            return 1
        if p >= 0.05:
            break
        d, z = d + 1, np.diff(z)
    return d


def _arima(y: np.ndarray, h: int, m: int) -> np.ndarray:
    from statsmodels.tsa.statespace.sarimax import SARIMAX

    z, ahead, mult = _adjust(y, m, h, bool((y > 0).all()))
    seasonal = 1 < m <= MAX_SEASON and ahead is None and len(y) >= 3 * m + 2

    def model(cfg):
        p, d, q, P, D, Q = cfg
        trend = "c" if d + D == 0 else None
        return SARIMAX(z, order=(p, d, q), seasonal_order=(P, D, Q, m) if seasonal else (0, 0, 0, 0), trend=trend)

    def search():
        D = 1 if seasonal else 0
        d = _diffs(np.diff(z, m) if D else z)
        seen: dict[tuple, float] = {}

        def score(cfg):
            if cfg not in seen and len(seen) < MAX_ARIMA_FITS:
                try:
                    seen[cfg] = _aicc(model(cfg).fit(disp=False))
                except Exception:  # noqa: BLE001
                    seen[cfg] = np.inf
            return seen.get(cfg, np.inf)

        best = (1, d, 1, 0, D, 1 if seasonal else 0)
        score(best)
        while len(seen) < MAX_ARIMA_FITS:
            p, _, q, P, _, Q = best
            steps = [(p + a, d, q + b, P + c, D, Q + e) for a, b, c, e in
                     ((1, 0, 0, 0), (-1, 0, 0, 0), (0, 1, 0, 0), (0, -1, 0, 0), (1, 1, 0, 0), (-1, -1, 0, 0),
                      (0, 0, 1, 0), (0, 0, -1, 0), (0, 0, 0, 1), (0, 0, 0, -1))]
            steps = [s for s in steps if 0 <= s[0] <= 2 and 0 <= s[2] <= 2 and 0 <= s[3] <= int(seasonal)
                     and 0 <= s[5] <= int(seasonal) and s not in seen]
            moved = False
            for cfg in steps:
                if score(cfg) < seen[best]:
                    best, moved = cfg, True
                    break
            if not moved:
                break
        return best, len(seen)

    fc = np.asarray(model(_chosen(f"arima{int(seasonal)}", y, m, search)).fit(disp=False).forecast(h), dtype=float)
    return fc if ahead is None else (fc * ahead if mult else fc + ahead)


FITTERS = {"ets": _ets, "theta": _theta, "arima": _arima}
MODULES = {"ets": "statsmodels.tsa.exponential_smoothing.ets", "theta": "statsmodels.tsa.forecasting.theta",
           "arima": "statsmodels.tsa.statespace.sarimax"}


def _import(name: str) -> None:
    import importlib

    importlib.import_module(MODULES[name.removesuffix("_log")])


def forecast_one(name: str, y: np.ndarray, h: int, m: int) -> np.ndarray | None:
    """h forecasts of one series, or None when the model cannot fit it (the caller falls back)."""
    if len(y) < max(2 * m, 8) if m > 1 else len(y) < 8:
        return None
    y = np.asarray(y, dtype=float)
    log = name.endswith("_log")
    if log and not (y > 0).all():
        return None  # log needs a positive series: the seasonal naive stands in, counted as a fallback
    from threadpoolctl import threadpool_limits

    try:  # BLAS on one thread: these fits are tiny, and on a shared 2-core machine more threads made an
        # ARIMA search 14x slower (measured: 10.5 s with the default threads, 0.7 s with one)
        with warnings.catch_warnings(), np.errstate(all="ignore"), threadpool_limits(1):
            warnings.simplefilter("ignore")  # convergence chatter on short series: the fallback handles failures
            out = FITTERS[name.removesuffix("_log")](np.log(y) if log else y, h, m)
            if log:
                out = np.exp(out)
    except Exception:  # noqa: BLE001 - any statsmodels failure means "this series: use the fallback"
        return None
    return out if len(out) == h and np.isfinite(out).all() and plausible(out, y) else None


def plausible(yhat: np.ndarray, y: np.ndarray) -> bool:
    """Whether a forecast stays within the history's range widened by that range on each side. Beyond
    it the fit failed rather than found a trend: on canadian_gas (values 1-20) an ARIMA whose optimiser
    diverged forecast -53 for a whole window (MASE 131 there, 26.6 over the backtest). Such a series
    falls back to the seasonal naive, counted like any failed fit."""
    lo, hi = float(np.min(y)), float(np.max(y))
    span = (hi - lo) or abs(hi) or 1.0
    return bool(np.all(yhat >= lo - span) and np.all(yhat <= hi + span))


def estimate_seconds(name: str, series: dict[str, np.ndarray], horizon: int, period: int, fits: int) -> float:
    """The cost estimate the budget check reads: one timed forecast on the longest series (its
    configuration search included), then per series one search plus `fits - 1` refits of the chosen
    configuration (the backtest windows, the test window and the final model), a refit costing the
    search's time divided by the configurations it tried."""
    longest = max(series.values(), key=len)
    _import(name)  # the first import of statsmodels takes seconds: not a cost of every fit
    started = time.perf_counter()
    y = np.log(longest) if name.endswith("_log") and (longest > 0).all() else longest
    forecast_one(name, longest, horizon, period)
    first = time.perf_counter() - started
    base = name.removesuffix("_log")
    tried = max(last_search_fits(base + "1", y, period), last_search_fits(base + "0", y, period), 1)
    return first * len(series) * (1 + (fits - 1) / tried)


def plan(series: dict[str, np.ndarray], horizon: int, period: int, windows: int, seconds_left: float,
         names: list[str] | tuple[str, ...] = NAMES) -> tuple[list[str], list[str]]:
    """(the statistical models among `names` to backtest, notes on those left out and why)."""
    reason = available()
    if reason:
        return [], [reason]
    if len(series) > MAX_SERIES:
        return [], [f"statistical models (ETS, Theta, ARIMA) skipped: {len(series)} series (they run per series up to "
                    f"{MAX_SERIES}); the global model learns across series instead"]
    chosen, notes, budget = [], [], SHARE_OF_BUDGET * seconds_left
    positive = all((y > 0).all() for y in series.values())
    # The trial fit sees what the first backtest origin sees, so the configuration it chooses (and
    # caches) is the one that origin would choose: no later backtest window's data picks it.
    first = {s: y[: max(len(y) - windows * horizon, 1)] for s, y in series.items()}
    for name in names:
        if name in LOG and not positive:
            notes.append(f"{name} skipped: a log transform needs every value positive")
            continue
        cost = estimate_seconds(name, first, horizon, period, windows + 2)
        if cost > budget:
            notes.append(f"{name} skipped: an estimated {cost:.0f} s for {len(series)} series x {windows + 2} fits, more than "
                         f"the {budget:.0f} s it may use of the time left")
            continue
        chosen.append(name)
        budget -= cost
    return chosen, notes


def forecast_series(name: str, history: dict[str, Any], horizon: int, period: int) -> tuple[dict[str, np.ndarray], int]:
    """Per series id: h forecasts (seasonal naive where the model failed); and how many fell back."""
    from dsagent.tools.forecast.naive import baseline

    out, fell_back = {}, 0
    for s, (_, y) in history.items():
        yhat = forecast_one(name, y, horizon, period)
        if yhat is None:
            fell_back += 1
            yhat = baseline("seasonal_naive", y, horizon, period)
        out[s] = yhat
    return out, fell_back
