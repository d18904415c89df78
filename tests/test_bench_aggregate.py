"""The benchmark report's aggregate figures (issue 18): mean rank with shared ranks for ties, a
normalised score per dataset, and wins/ties/losses judged by the paired bootstrap CI."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "benchmarks" / "automl"))
from aggregate import rank_table, wall_figures, wins_ties_losses  # noqa: E402


def _entry(greater: bool, scores: dict, cis: dict | None = None) -> dict:
    systems = {s: {"status": "ok", "score": v} for s, v in scores.items()}
    if cis:
        systems["dsagent"]["vs"] = {p: {"diff_ci95": ci} for p, ci in cis.items()}
    return {"greater_is_better": greater, "systems": systems}


def test_ranks_ties_and_normalised_scores():
    data = {"auc": _entry(True, {"dsagent": 0.9, "flaml": 0.8, "hgb": 0.9}),
            "rmse": _entry(False, {"dsagent": 2.0, "flaml": 1.0, "hgb": 3.0}),
            "partial": _entry(True, {"dsagent": 0.5, "flaml": 0.6})}  # hgb missing: left out
    table = rank_table(data, ["auc", "rmse", "partial"], ["dsagent", "flaml", "hgb"])
    assert table["datasets"] == ["auc", "rmse"] and table["left_out"] == ["partial"]
    assert table["mean_rank"] == {"dsagent": 1.75, "flaml": 2.0, "hgb": 2.25}  # auc: 1.5/3/1.5, rmse: 2/1/3
    assert table["mean_normalised"] == {"dsagent": 0.75, "flaml": 0.5, "hgb": 0.5}


def test_wins_ties_losses_follow_the_sign_of_the_interval():
    data = {"a": _entry(True, {"dsagent": 0.9, "flaml": 0.8}, {"flaml": [0.01, 0.2]}),   # win
            "b": _entry(False, {"dsagent": 2.0, "flaml": 1.0}, {"flaml": [0.5, 1.5]}),  # loss (rmse higher)
            "c": _entry(True, {"dsagent": 0.8, "flaml": 0.81}, {"flaml": [-0.05, 0.03]}),  # tie
            "d": _entry(True, {"dsagent": 0.7, "flaml": 0.6})}  # no CI: point score only
    w = wins_ties_losses(data, ["a", "b", "c", "d"], "flaml")
    assert (w["wins"], w["losses"], w["ties"], w["point_only"]) == (["a"], ["b"], ["c"], ["d"])
    assert w["played"] == 4 and w["at_least_as_good"] == 2


def test_wall_figures_count_the_runs_that_used_the_budget():
    def run(wall):
        return {"systems": {"dsagent": {"wall_s": wall}, "flaml": {"wall_s": 1.0}}}
    data = {"a": run(48.0), "b": run(57.0), "c": run(63.0), "d": run(70.0), "e": {"systems": {}}}
    w = wall_figures(data, ["a", "b", "c", "d", "e"], 60.0)
    assert w == {"runs": 4, "median": 1.0, "longest": 1.167, "within": 2, "over_1_15": 1}
    assert wall_figures(data, ["e"], 60.0) == {"runs": 0}


def test_several_sittings_are_judged_on_each_systems_mean_score():
    from sittings import goal_counts, mean_sitting

    def sitting(ds_auc, flaml_auc, ds_rmse):
        auc = _entry(True, {"dsagent": ds_auc, "flaml": flaml_auc, "autogluon": 0.8})
        auc["metric"] = "roc_auc"
        rmse = _entry(False, {"dsagent": ds_rmse, "flaml": 2.0, "autogluon": 2.0})
        rmse["metric"] = "rmse"
        return {"datasets": {"auc": auc, "rmse": rmse}}

    # dsagent is behind FLAML on "auc" in the first sitting and ahead in the second; the means decide.
    first, second = sitting(0.80, 0.82, 1.9), sitting(0.86, 0.81, 2.2)
    second["datasets"]["rmse"]["systems"]["flaml"]["status"] = "failed"  # only the first sitting's FLAML counts
    mean = mean_sitting([first, second], ["auc", "rmse", "absent"])
    assert set(mean) == {"auc", "rmse"}
    assert mean["auc"]["systems"]["dsagent"]["score"] == pytest.approx(0.83) and mean["auc"]["systems"]["dsagent"]["range"] == (0.80, 0.86)
    assert mean["rmse"]["systems"]["flaml"] == {"status": "ok", "score": 2.0, "runs": 1, "range": (2.0, 2.0)}
    counts = goal_counts(mean, ["auc", "rmse"])
    assert counts["flaml"] == {"played": 2, "at_least_as_good": 1, "behind": ["rmse"]}  # 2.05 RMSE vs 2.0
    assert counts["autogluon"]["at_least_as_good"] == 1 and counts["autogluon"]["behind"] == ["rmse"]
    assert goal_counts(first["datasets"], ["auc", "rmse"])["flaml"]["behind"] == ["auc"]
