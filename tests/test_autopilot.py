"""The autopilot's own decisions, without running tools."""

from __future__ import annotations

import pytest

from dsagent.backends.autopilot import AutopilotBackend, choose_model


def _row(name, family, mean, std):
    return {"name": name, "family": family, "cv_mean": mean, "cv_std": std}


BOARD = [_row("ensemble", "ensemble", 286.3, 23.6), _row("linear", "linear", 294.0, 22.3), _row("baseline", "baseline", 813.8, 32.9)]


def test_best_by_default():
    assert choose_model(BOARD, None) == ("best", "")
    assert choose_model(BOARD, "medium") == ("best", "")


def test_high_interpretability_prefers_linear_within_noise():
    name, why = choose_model(BOARD, "high")
    assert name == "linear" and "one CV standard deviation" in why


def test_high_interpretability_keeps_a_clearly_better_model():
    board = [_row("xgboost", "xgboost", 0.90, 0.01), _row("linear", "linear", 0.80, 0.01)]
    name, why = choose_model(board, "high")
    assert name == "best" and "beats the interpretable linear" in why


def test_next_step_never_repeats_skipped_steps():
    auto = AutopilotBackend()
    done = {"profile_data": {"ok": True}, "define_task": {"ok": True}}  # ask_user was skipped
    assert auto._next_step(done) == "engineer_features"  # optional: stream_turn moves on to train_models without declared features
    assert auto._next_step(done | {"engineer_features": {"ok": True}}) == "train_models"
    assert auto._next_step({}) == "profile_data"


def test_after_a_linear_model_is_tuned_the_best_other_family_is_tuned_once():
    row = lambda name, family: {"name": name, "family": family}  # noqa: E731
    board = [row("linear_tuned", "linear"), row("linear", "linear"), row("ensemble", "ensemble"),
             row("xgboost", "xgboost"), row("extra_trees", "extra_trees")]
    assert AutopilotBackend._second_tuning(board) == "xgboost"
    assert AutopilotBackend._second_tuning(board + [row("xgboost_tuned", "xgboost")]) is None  # once
    assert AutopilotBackend._second_tuning(board[1:]) is None  # the tuned family was not linear


def test_a_run_that_ships_the_baseline_says_why(tmp_path):
    """The constant baseline ships only when no real candidate finished; the summary then names what
    train_models skipped and why, and what to do about a short budget (the trump_tweets run at 60 s
    shipped ROC-AUC 0.50 and only said 'the chosen model is baseline')."""
    import json
    import types

    from dsagent.tools.schemas import Evaluation

    art = tmp_path / "artifacts"
    (art / "records").mkdir(parents=True)
    Evaluation(model="baseline", family="baseline", metric="roc_auc", test_score=0.5, baseline_score=0.5).write(art)
    skipped = ["linear (failed: ValueError: empty vocabulary)", "xgboost (out of time)"]
    (art / "records" / "004-train_models.json").write_text(json.dumps({"leaderboard": [], "skipped": skipped}))
    state = types.SimpleNamespace(session=types.SimpleNamespace(artifacts_dir=art), assumptions=[])
    done = {"train_models": {"name": "train_models", "ok": True, "record": "records/004-train_models.json"}}
    text = AutopilotBackend()._summary(state, done)
    assert "No learned model is shipped: " + "; ".join(skipped) in text and "larger --time-budget" in text


def test_the_closing_message_points_only_to_deliverables_that_were_written(tmp_path):
    """write_report failed on german_credit (a NaN in a plot) and the closing message still said
    "See report.md, model_card.md..." and that the assumptions were "listed in the report"."""
    import types

    from dsagent.tools.schemas import Evaluation

    art = tmp_path / "artifacts"
    art.mkdir()
    Evaluation(model="xgboost", family="xgboost", metric="roc_auc", test_score=0.8, baseline_score=0.5).write(art)
    for name in ("monitoring.md", "notebook.ipynb"):
        (art / name).write_text("x")
    state = types.SimpleNamespace(session=types.SimpleNamespace(artifacts_dir=art), assumptions=["cost_fn = 1"])
    done = {"write_report": {"name": "write_report", "ok": False}, "write_notebook": {"name": "write_notebook", "ok": True}}
    text = AutopilotBackend()._summary(state, done)
    assert "These steps failed and their deliverables may be missing: write_report." in text
    assert "listed in session.json" in text and "See monitoring.md and notebook.ipynb in the session's artifacts." in text
    assert "report.md" not in text
    (art / "report.md").write_text("x")
    (art / "model_card.md").write_text("x")
    text = AutopilotBackend()._summary(state, {})
    assert "listed in the report" in text
    assert "See report.md, model_card.md, monitoring.md and notebook.ipynb in the session's artifacts." in text

# -- the time plan (issue 18: runs ended at 50-55 s of 60; the leftover goes to the search) --

def _plan_state(tmp_path, seconds_left: float, board: list[dict]):
    import types

    from dsagent.tools.schemas import Leaderboard, LeaderboardRow

    art = tmp_path / "artifacts"
    art.mkdir(parents=True, exist_ok=True)
    Leaderboard.write(art, [LeaderboardRow.model_validate({"metric": "roc_auc", **r}) for r in board], True)
    meta: dict = {}
    session = types.SimpleNamespace(artifacts_dir=art, meta=meta, update=lambda **kw: meta.update(kw))
    return types.SimpleNamespace(session=session, time_budget=60.0, answers={"target": "y"},
                                 assumptions=[], seconds_left=lambda: seconds_left)


def _next_call(auto, state, done_steps):
    conversation = [{"role": "tool", "results": [{"name": n, "ok": True} for n in done_steps]}]
    gen = auto.stream_turn(conversation, ["tune_model", "build_ensemble", "evaluate_model"], state)
    try:
        while True:
            next(gen)
    except StopIteration as stop:
        return stop.value.tool_calls[0] if stop.value.tool_calls else None


SEARCHED = ["profile_data", "define_task", "train_models", "tune_model", "build_ensemble"]
PLAN_BOARD = [{"name": "ensemble", "family": "ensemble", "cv_mean": 0.86, "refit_s_est": 1.0},
              {"name": "linear_tuned", "family": "linear", "cv_mean": 0.85, "refit_s_est": 0.2},
              {"name": "xgboost", "family": "xgboost", "cv_mean": 0.84, "refit_s_est": 0.5},
              {"name": "baseline", "family": "baseline", "cv_mean": 0.5}]


def test_the_deliverables_reserve_is_what_they_take_and_the_old_plan_stays_behind_a_switch(monkeypatch):
    from dsagent.backends.time_plan import _reserve

    monkeypatch.setenv("DSAGENT_PACED_RESERVE", "0")  # the fixed reserve (the paced one: the next test)
    assert _reserve(60.0, 0.0, 1.0, 2_000) == pytest.approx(14.0, abs=0.1)
    monkeypatch.setenv("DSAGENT_FULL_BUDGET", "1")

    small = _reserve(60.0, 0.0, 1.0, 2_000)
    assert small < 10.0  # was 14 s on an idle machine, ~9 s of which no run used
    assert _reserve(60.0, 0.0, 2.0, 2_000) == pytest.approx(2 * small)  # a loaded machine stretches it
    assert _reserve(60.0, 0.0, 1.0, 1.8e6) >= 0.9 * (14.0 + 11.0 * 0.9)  # large test splits keep what they had
    assert _reserve(60.0, 2.0, 1.0, 2_000) == pytest.approx(small + 2.3 * 2.0)  # the final fit runs twice
    monkeypatch.setenv("DSAGENT_FULL_BUDGET", "0")
    assert _reserve(60.0, 0.0, 1.0, 2_000) == pytest.approx(14.0, abs=0.1)


def test_time_the_deliverables_do_not_need_after_the_blend_goes_back_to_tuning(tmp_path, monkeypatch):
    """30 s left of 60 after the blend, the deliverables need ~9 s: the best non-linear family's study
    resumes with the rest (less room for the final fits), then the blend is built again, then evaluation."""
    from dsagent.backends.time_plan import _reserve, tuning_time

    monkeypatch.setenv("DSAGENT_FULL_BUDGET", "1")
    auto = AutopilotBackend()
    state = _plan_state(tmp_path, 30.0, PLAN_BOARD)
    call = _next_call(auto, state, SEARCHED)
    assert call.name == "tune_model" and call.arguments["family"] == "xgboost"  # linear was tuned already; never linear again
    expected, _ = tuning_time(PLAN_BOARD, 0, 30.0 - _reserve(60.0, 0, 1.0, 0) - 2.0)
    assert call.arguments["time_budget_s"] == pytest.approx(expected, abs=0.1)
    assert 15.0 <= call.arguments["time_budget_s"] <= 30.0 - _reserve(60.0, 0, 1.0, 0)
    again = _next_call(auto, state, SEARCHED)
    assert again.name == "build_ensemble" and again.id == "auto-ensemble-2"
    assert _next_call(auto, state, SEARCHED).name == "evaluate_model"  # once only
    plan = state.session.meta["time_plan"]  # recorded for the benchmark that calibrates the reserve
    assert plan["seconds_left_at_deliverables"] == 30.0 and plan["reserve_s"] == pytest.approx(_reserve(60.0, 0, 1.0, 0))


def test_no_leftover_round_when_the_search_used_its_time_or_the_old_plan_is_asked_for(tmp_path, monkeypatch):
    monkeypatch.setenv("DSAGENT_FULL_BUDGET", "1")
    state = _plan_state(tmp_path, 14.0, PLAN_BOARD)  # what a search that used its time leaves
    assert _next_call(AutopilotBackend(), state, SEARCHED).name == "evaluate_model"
    monkeypatch.setenv("DSAGENT_FULL_BUDGET", "0")
    assert _next_call(AutopilotBackend(), _plan_state(tmp_path, 30.0, PLAN_BOARD), SEARCHED).name == "evaluate_model"
    monkeypatch.setenv("DSAGENT_FULL_BUDGET", "1")
    assert _next_call(AutopilotBackend(max_trials=5), _plan_state(tmp_path, 30.0, PLAN_BOARD), SEARCHED).name == "evaluate_model"


def test_a_bag_is_asked_for_only_when_its_fits_take_what_the_final_fit_may(tmp_path, monkeypatch):
    """DSAGENT_BAGGED=1: the autopilot asks evaluate_model for a bag of 5 when ~4 refits fit the time
    the final fit may take, and never with a time limit that would cut the rows of the one fit
    (the first bagged arm passed max_fit_s to every run)."""
    monkeypatch.setenv("DSAGENT_BAGGED", "1")
    call = _next_call(AutopilotBackend(), _plan_state(tmp_path, 30.0, PLAN_BOARD), SEARCHED)
    assert call.name == "evaluate_model" and call.arguments.get("bagged") is True and "max_fit_s" not in call.arguments
    slower = [{**PLAN_BOARD[0], "refit_s_est": 3.0}, *PLAN_BOARD[1:]]  # one fit fits (~7 s), five do not
    call = _next_call(AutopilotBackend(), _plan_state(tmp_path / "slow", 30.0, slower), SEARCHED)
    assert call.name == "evaluate_model" and "bagged" not in call.arguments and "max_fit_s" not in call.arguments
    monkeypatch.setenv("DSAGENT_BAGGED", "0")
    call = _next_call(AutopilotBackend(), _plan_state(tmp_path / "off", 30.0, PLAN_BOARD), SEARCHED)
    assert "bagged" not in call.arguments


def test_with_bagging_on_tuning_keeps_room_for_the_bag_within_a_third_of_its_time(monkeypatch):
    from dsagent.backends.time_plan import tuning_time

    board = [{"name": "xgboost", "family": "xgboost", "refit_s_est": 1.0}, {"name": "linear", "family": "linear", "refit_s_est": 0.1}]
    monkeypatch.setenv("DSAGENT_BAGGED", "0")
    assert tuning_time(board, 1000, 60.0) == pytest.approx((60.0 - 2.3 * 1.1, 1.1))
    monkeypatch.setenv("DSAGENT_BAGGED", "1")
    assert tuning_time(board, 1000, 60.0) == pytest.approx((60.0 - 2.3 * 4.4, 4.4))  # 4 refits of the blend
    assert tuning_time(board, 1000, 15.0)[1] == pytest.approx(max(1.1, 15.0 / 3 / 2.3))  # never past a third


def test_threads_never_exceed_the_cores_given(monkeypatch):
    from dsagent.tools.features import native_threads

    monkeypatch.setattr("os.sched_getaffinity", lambda pid: {0, 1}, raising=False)
    monkeypatch.setenv("DSAGENT_THREADS", "8")
    assert native_threads() == 2
    monkeypatch.delenv("DSAGENT_THREADS")
    assert native_threads() == 1  # two cores: one thread per fit (busy-waiting OpenMP pools)


def test_default_candidates_are_skipped_when_the_search_sees_a_sample_of_the_training_rows(tmp_path, monkeypatch):
    """Issue 24: on data whose search is subsampled the final fit is cut to the time left, so by
    default no candidate step runs there (census_kdd lost ROC-AUC to it with nothing kept);
    where the search sees every row, or when auto_features: true, the candidates get their share."""
    from dsagent.tools.schemas import CVPlan, SplitSpec, TaskSpec

    monkeypatch.setattr("dsagent.backends.autopilot._slowdown", lambda *_: 1.0)
    tools = ["engineer_features", "train_models", "tune_model", "build_ensemble", "evaluate_model"]

    def first_call(max_rows: int, answers: dict):
        state = _plan_state(tmp_path, 110.0, [])
        state.time_budget, state.answers = 120.0, {"target": "y", **answers}
        TaskSpec(target="y", task="binary", metric="roc_auc", greater_is_better=True, features={"a": "numeric"},
                 n_rows=200_000, n_labelled=200_000, n_train=150_000, n_test=50_000,
                 split=SplitSpec(kind="stratified"), cv=CVPlan(kind="holdout", folds=1, max_rows=max_rows),
                 ).write(state.session.artifacts_dir)
        conversation = [{"role": "tool", "results": [{"name": n, "ok": True} for n in ("profile_data", "define_task")]}]
        gen = AutopilotBackend().stream_turn(conversation, tools, state)
        try:
            while True:
                next(gen)
        except StopIteration as stop:
            return stop.value.tool_calls[0]

    assert first_call(18_000, {}).name == "train_models"  # subsampled search: no candidate step by default
    call = first_call(150_000, {})  # the search sees every row: a tenth of the search's time
    assert call.name == "engineer_features" and call.arguments["time_budget_s"] > 6
    assert first_call(18_000, {"auto_features": True}).name == "engineer_features"  # asked for: tried anyway


def test_the_paced_reserve_is_reference_seconds_stretched_by_the_pace(monkeypatch):
    """By default (DSAGENT_PACED_RESERVE=0 keeps the old fixed seconds) the reserve's fixed part is
    what the deliverables took on the reference machine, times this machine's pace (a host twice as
    slow keeps twice as much), within a range that a bad sample cannot leave; the final fit's 2.3x
    (timed on this machine) is not stretched."""
    from dsagent.backends import time_plan
    from dsagent.backends.time_plan import LEAN_CELLS_S, PACED_FIXED_S, PACED_RANGE, _reserve

    base = _reserve(60.0, 0.0, 1.0, 0)  # the default
    assert base == pytest.approx(max(PACED_FIXED_S, time_plan.BUDGET_SHARE * 60.0))
    assert base < 14.0  # less than the fixed seconds of the default plan on the reference machine
    assert _reserve(60.0, 0.0, 2.0, 0) == pytest.approx(2 * base)
    assert _reserve(60.0, 0.0, 100.0, 0) == pytest.approx(PACED_RANGE[1] * base)
    assert _reserve(60.0, 0.0, 0.1, 0) == pytest.approx(PACED_RANGE[0] * base)
    assert _reserve(60.0, 0.0, 1.0, 2e6) == pytest.approx(PACED_FIXED_S + LEAN_CELLS_S)
    assert _reserve(60.0, 2.0, 2.0, 0) == pytest.approx(2 * base + 2.3 * 2.0)
    monkeypatch.setattr("dsagent.tools.slowdown.pace", lambda: 1.7)
    monkeypatch.setattr("dsagent.tools.slowdown.slowdown", lambda: 1.2)
    assert time_plan.stretch() == 1.7
    monkeypatch.setenv("DSAGENT_PACED_RESERVE", "0")
    assert time_plan.stretch() == 1.2 and _reserve(60.0, 0.0, 1.0, 2_000) == pytest.approx(14.0, abs=0.1)


def test_the_lean_cells_reserve_keeps_less_for_large_test_splits_only(monkeypatch):
    """By default the reserve's term for the test split is 11 s per 2M cells (still over the slowest
    census_kdd run measured, 17.2 s at 1.8M cells); DSAGENT_LEAN_CELLS_RESERVE=0 keeps the earlier
    16 s; a small test split keeps the same reserve either way."""
    from dsagent.backends.time_plan import LEAN_CELLS_S, PACED_CELLS_S, PACED_FIXED_S, _reserve

    monkeypatch.delenv("DSAGENT_LEAN_CELLS_RESERVE", raising=False)
    assert _reserve(60.0, 0.0, 1.0, 1.8e6) == pytest.approx(PACED_FIXED_S + LEAN_CELLS_S * 0.9)
    kept = {}
    for switch in ("1", "0"):
        monkeypatch.setenv("DSAGENT_LEAN_CELLS_RESERVE", switch)
        kept[switch] = (_reserve(60.0, 0.0, 1.0, 1.8e6), _reserve(60.0, 0.0, 1.0, 20_000))
    assert kept["1"][0] == pytest.approx(PACED_FIXED_S + LEAN_CELLS_S * 0.9) and kept["1"][0] >= 17.2
    assert kept["0"][0] == pytest.approx(PACED_FIXED_S + PACED_CELLS_S * 0.9)
    assert kept["0"][1] - kept["1"][1] < 0.1


def test_the_pace_can_be_read_from_the_runs_own_profile_call(monkeypatch):
    """By default the reserve is stretched by how much longer the run's profile_data call took than
    on the reference machine (its size counted), never below the competition for the CPU now;
    with DSAGENT_PROFILE_PACE=0, or without a profile's timing, by tools/slowdown.pace's yardstick."""
    from dsagent.backends import time_plan

    monkeypatch.setattr("dsagent.tools.slowdown.pace", lambda: 2.3)
    monkeypatch.setattr("dsagent.tools.slowdown.slowdown", lambda: 1.0)
    reference = time_plan.PROFILE_REFERENCE_S
    assert time_plan.stretch((1.2 * reference, 0.0)) == pytest.approx(1.2)
    monkeypatch.setenv("DSAGENT_PROFILE_PACE", "0")
    assert time_plan.stretch((1.2 * reference, 0.0)) == 2.3  # switched off: the yardstick
    monkeypatch.delenv("DSAGENT_PROFILE_PACE")
    big = time_plan.profile_pace(1.2 * reference, 9e6)  # 9M cells take longer on any machine
    assert big < 1.0
    assert time_plan.stretch(None) == 2.3 and time_plan.stretch((0.0, 0.0)) == 2.3  # no timing: the yardstick
    monkeypatch.setattr("dsagent.tools.slowdown.slowdown", lambda: 1.8)  # a load that began after the profile
    assert time_plan.stretch((1.2 * reference, 0.0)) == 1.8
    monkeypatch.setenv("DSAGENT_PACED_RESERVE", "0")
    assert time_plan.stretch((1.2 * reference, 0.0)) == 1.8  # the fixed reserve: the slowdown alone


def test_the_autopilot_passes_its_profile_calls_seconds_and_size_to_the_pace(tmp_path, monkeypatch):
    """The seconds the loop timed for profile_data and the profiled rows x columns reach the
    reading of the pace, taken once before the search is planned."""
    import json

    seen = []
    monkeypatch.setattr("dsagent.backends.autopilot._slowdown", lambda profiled=None: seen.append(profiled) or 1.0)
    state = _plan_state(tmp_path, 50.0, PLAN_BOARD)
    (state.session.artifacts_dir / "records").mkdir()
    (state.session.artifacts_dir / "records" / "001-profile_data.json").write_text(
        json.dumps({"n_rows": 1000, "n_cols": 31}))
    conversation = [{"role": "tool", "results": [
        {"name": "profile_data", "ok": True, "seconds": 1.57, "record": "records/001-profile_data.json"},
        {"name": "define_task", "ok": True}]}]
    gen = AutopilotBackend().stream_turn(conversation, ["train_models"], state)
    try:
        while True:
            next(gen)
    except StopIteration:
        pass
    assert seen == [(1.57, 31_000.0)]
