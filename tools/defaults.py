"""Strong defaults (issue 18): HistGradientBoosting and XGBoost with their libraries' default
settings are candidates in every supervised run, cross-validated right after the baseline and the linear model.

On 15 datasets dsagent was never tuned on, its shipped model lost to one of these two plain
defaults on 5; fitted early (they are cheap: 100 rounds, no search), they put a floor under the
leaderboard that tuning and blending can only improve on. When the model that ships is worse
than them on CV anyway (named explicitly, left out for latency, ...), `floor_check` says why,
and the report prints it.

No ML library is imported here: the specs are plain dicts read by train_models and the report.
"""

from __future__ import annotations

from typing import Any, Iterable

# The libraries' own defaults, spelled out: the families' builders otherwise apply dsagent's
# (hist_gb: 300 iterations at 0.06; xgboost: 400 early-stopped rounds at 0.05, subsampled). A fixed
# n_estimators keeps XGBoost from early-stopping, as the library default would not either. HGB gets
# ordinal codes, not its native categories (the library's default given pandas categories): a fitted
# native HGB holds a functools.partial, which the model file's trusted list rightly refuses.
STRONG_DEFAULTS: dict[str, dict[str, Any]] = {
    "hist_gb_default": {"family": "hist_gb", "params": {
        "max_iter": 100, "learning_rate": 0.1, "max_leaf_nodes": 31, "min_samples_leaf": 20,
        "l2_regularization": 0.0, "early_stopping": "auto"}},
    "xgboost_default": {"family": "xgboost", "params": {
        "n_estimators": 100, "learning_rate": 0.3, "max_depth": 6, "min_child_weight": 1.0, "subsample": 1.0,
        "colsample_bytree": 1.0, "reg_lambda": 1.0, "reg_alpha": 0.0}},
}


def strong_default_specs(supported) -> dict[str, dict[str, Any]]:
    """The strong defaults whose family `supported(family_name)` accepts (copies: callers may edit)."""
    return {name: {"family": s["family"], "params": dict(s["params"])}
            for name, s in STRONG_DEFAULTS.items() if supported(s["family"])}


def floor_check(board: list[dict[str, Any]], chosen: str, greater_is_better: bool,
                latency_excluded: list[dict[str, Any]] | None = None, skipped: list[str] | None = None,
                names: Iterable[str] = tuple(STRONG_DEFAULTS), chosen_why: str | None = None) -> dict[str, Any]:
    """How the shipped model's CV score stands against the strong defaults (`names`: the tabular
    ones, or another task's, such as ranking's default rankers): {"defaults": {name: cv_mean},
    "worse_than": [names], "why": text}. `why` explains a shipped model worse than a default on CV
    (`chosen_why`: the reason it was chosen, when not by name), or a default that was not fitted."""
    rows = {r["name"]: r for r in board if "cv_mean" in r}
    mine = rows.get(chosen)
    out: dict[str, Any] = {"defaults": {}, "worse_than": [], "why": ""}
    reasons = []
    slow = {e["name"] for e in latency_excluded or []}
    for name in names:
        row = rows.get(name)
        if row is None:
            why = next((s for s in skipped or [] if s.startswith(name + " ")), None)
            reasons.append(f"{name} was not fitted" + (f" ({why[len(name) + 1:].strip('()')})" if why else ""))
            continue
        out["defaults"][name] = row["cv_mean"]
        if mine is None or name == chosen:
            continue
        if (mine["cv_mean"] < row["cv_mean"]) if greater_is_better else (mine["cv_mean"] > row["cv_mean"]):
            out["worse_than"].append(name)
            if name in slow:
                reasons.append(f"{name} is better on CV but was left out: its prediction time exceeds the stated latency")
            else:
                reasons.append(f"{name} is better on CV ({row['cv_mean']:.5g} against {mine['cv_mean']:.5g}); {chosen} was "
                               + (f"chosen: {chosen_why}" if chosen_why else
                                  "chosen by name over the CV ranking (for example for interpretability)"))
    out["why"] = "; ".join(reasons)
    return out


def floor_markdown(check: dict[str, Any] | None, chosen: str) -> list[str]:
    """The report's lines on the strong defaults (empty when the check was not recorded)."""
    if not check:
        return []
    scores = ", ".join(f"{n} {v:.5g}" for n, v in check["defaults"].items())
    head = f"Strong defaults (library settings, fitted in every run): {scores or 'none fitted'}. "
    if check["worse_than"]:
        head += f"**{chosen} is worse than {' and '.join(check['worse_than'])} on CV**: "
    elif check["defaults"]:
        head += f"{chosen} is at least as good as each on CV. "
    return [head + (check["why"] + "." if check["why"] else ""), ""]
