"""Answers that make an end-to-end run cheaper where the model search is not what a test is about.

Most of the suite's time is its ~50 `dsagent run`s, and at a small budget a run's training step
fills at least 5 s with candidates, whose blend then costs again in evaluation, explanation and the
notebook. Two families (the answers key `model_families`) keep every deliverable and the run's
whole path while fitting a few cheap models. Tests about the candidates, the blend, the strong
defaults or the tuner keep the full search."""

QUICK_FAMILIES = "model_families: [linear, hist_gb]\n"


def scored_model(artifacts, session_dir):
    """What `dsagent predict` should load to reproduce a session's saved test predictions: the model
    the test split scored, which is not the shipped one when that was refitted on every labelled
    row (tools/refit_all.py)."""
    scored = artifacts / "scored_model"
    return str(scored) if scored.exists() else str(session_dir)
