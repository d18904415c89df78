"""The two "Done when" cases of issue 19, driven through the chat's real input path (prompt_toolkit
pipe input, keystrokes as a person types them) with the real offline autopilot and the sandboxed
tools: a goal sentence alone runs to a finished model, the target, budget and costs taken from it.

Small files, --max-trials 2 and a 20-second budget said in the sentence keep them short (the
issue's exact first message, with its 60 seconds, is read by tests/test_chat.py's scripted chat)."""

from __future__ import annotations

import io
import json
import random
import re

from prompt_toolkit.application import create_app_session
from prompt_toolkit.input import create_pipe_input
from prompt_toolkit.output import DummyOutput
from rich.console import Console

from dsagent.chat import Chat
from dsagent.runtime import RunOptions

ENTER, CTRL_D = "\r", "\x04"


def _chat(sessions_dir, data, keys: str):
    """A whole chat on `keys` with the default run (real backend and tools): (chat, printed text)."""
    out = io.StringIO()
    console = Console(file=out, width=140, force_terminal=False, color_system=None, highlight=False)
    with create_pipe_input() as inp, create_app_session(input=inp, output=DummyOutput()):
        inp.send_text(keys)
        opts = RunOptions(data=data, backend="offline", sessions_dir=sessions_dir, max_trials=2)
        chat = Chat(opts, console=console, input=inp, output=DummyOutput(), history_path=sessions_dir / ".chat_history")
        assert chat.open(opts)
        assert chat.loop() == 0
    return chat, out.getvalue()


def _meta(chat) -> dict:
    return json.loads((chat.run.session.dir / "session.json").read_text())


def test_predict_strength_use_your_judgement_and_a_budget_in_words(tmp_path):
    rng = random.Random(0)
    rows = []
    for _ in range(120):
        cement, water, age = rng.uniform(100, 540), rng.uniform(120, 250), rng.choice([3, 7, 28, 90, 365])
        rows.append(f"{cement:.1f},{water:.1f},{age},{0.08 * cement - 0.15 * water + 8 * age ** 0.3 + rng.gauss(0, 3):.2f}")
    data = tmp_path / "concrete.csv"
    data.write_text("cement,water,age,strength\n" + "\n".join(rows) + "\n")
    message = "Predict strength. Use your judgement on anything you need to ask, and keep it to 20 seconds."
    chat, out = _chat(tmp_path / "sessions", data, message + ENTER + CTRL_D)
    assert "Understood from your goal: target strength, budget 20 s, the rest left to my judgement." in out
    assert "answer ›" not in out and "Which column" not in out  # nothing asked, the target least of all
    meta = _meta(chat)
    assert meta["status"] == "completed" and meta["time_budget"] == 20
    result = chat.run.result()
    assert result.status == "completed" and result.task == "regression" and result.target == "strength"
    assert result.test_score is not None and result.artifacts.get("model")
    assert result.answers["target"].source == "understood" and result.answers["time_budget"].value == 20


def test_which_customers_will_churn_with_costs_in_words(tmp_path):
    rng = random.Random(1)
    rows = []
    for i in range(160):
        tenure, calls, contract = rng.randint(1, 72), rng.randint(0, 8), rng.choice(["month", "year"])
        p = 0.1 + 0.35 * (contract == "month") + 0.04 * calls - 0.003 * tenure
        rows.append(f"C{i:04d},{tenure},{contract},{calls},{'Yes' if rng.random() < p else 'No'}")
    data = tmp_path / "churn.csv"
    data.write_text("customer_id,tenure_months,contract,support_calls,churn\n" + "\n".join(rows) + "\n")
    message = "which customers will churn? a wasted call costs 5, a lost customer 120. keep it to 20 seconds"
    # One Enter per question still asked (interpretability): its default stands.
    chat, out = _chat(tmp_path / "sessions", data, message + ENTER + ENTER * 3 + CTRL_D)
    assert "Understood from your goal: target churn, false-positive cost 5, false-negative cost 120, budget 20 s." in out
    assert re.findall(r"\[\d/\d\] .*\((\w+)\)", out) == ["interpretability"]  # costs and target not asked again
    result = chat.run.result()
    assert result.status == "completed" and result.task == "binary" and result.target == "churn"
    assert result.answers["cost_fp"].value == 5 and result.answers["cost_fn"].value == 120
    assert result.answers["cost_fn"].source == "understood"
    evaluation = json.loads((chat.run.session.dir / "artifacts" / "evaluation.json").read_text())
    threshold = evaluation.get("threshold") or {}
    # The threshold minimises 5 x FP + 120 x FN: far below the default 0.5, and it says so.
    assert "5 x FP + 120 x FN" in threshold.get("rule", ""), threshold
    assert threshold["threshold"] < 0.5
    assert f"Decision threshold {threshold['threshold']:.4g}: it minimises 5 x FP + 120 x FN" in " ".join(out.split())  # said in the chat
