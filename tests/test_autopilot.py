"""The autopilot's own decisions, without running tools."""

from __future__ import annotations

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
