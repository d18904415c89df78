"""`ANTHROPIC_API_KEY=... dsagent run` drives the whole run through Claude — here the real SDK
against the local fake Messages API (never the live one): tool calls execute in the sandbox,
ask_user is answered from the answers file, and usage and cost land in the result."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from fake_anthropic import FakeAnthropic, message

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = ROOT / "examples" / "penguins.csv"


def _tool(i: int, name: str, args: dict) -> object:
    return message([{"type": "text", "text": f"Step {i}: {name}."},
                    {"type": "tool_use", "id": f"toolu_{i:02d}", "name": name, "input": args}], "tool_use",
                   usage={"input_tokens": 1000, "output_tokens": 50, "cache_read_input_tokens": 800})


def test_claude_drives_a_full_run_through_the_cli(tmp_path):
    fake = FakeAnthropic().start()
    try:
        steps = [
            ("ask_user", {"questions": [
                {"key": "cost_fn", "question": "What does a missed positive cost?", "why": "threshold", "default": 1},
                {"key": "goal", "question": "What is the model for?", "default": "predict sex"}]}),
            ("profile_data", {"target": "sex"}),
            ("define_task", {"target": "sex"}),
            # Claude proposes features from domain knowledge: a hostile one first (an error result it
            # must read, nothing runs), then a ratio, measured by CV and kept (keep="all").
            ("engineer_features", {"expressions": ["x = bill_length_mm.__class__"]}),
            ("engineer_features", {"expressions": ["bill_ratio = bill_length_mm / bill_depth_mm"], "keep": "all"}),
            ("train_models", {"models": ["linear"], "time_budget_s": 20}),
            ("no_such_tool", {}),  # an error result the model must read, not a crash
            ("evaluate_model", {"model": "best"}),
            ("write_report", {}),
            ("plan_monitoring", {}),
            ("write_notebook", {"execute_notebook": False}),
        ]
        fake.push(*[_tool(i, name, args) for i, (name, args) in enumerate(steps)])
        fake.push(message([{"type": "text", "text": "Done: a logistic model separates the sexes well."}], "end_turn",
                          usage={"input_tokens": 1200, "output_tokens": 30}))
        answers = tmp_path / "answers.yaml"
        answers.write_text("cost_fn: 5\ncost_fp: 1\n")
        env = {k: v for k, v in os.environ.items() if not k.startswith("ANTHROPIC_")}
        env.update(ANTHROPIC_API_KEY="sk-test", ANTHROPIC_BASE_URL=fake.url, DSAGENT_MODEL="claude-sonnet-5-5")
        proc = subprocess.run([sys.executable, "-m", "dsagent.cli", "run", str(EXAMPLE), "--target", "sex", "--answers",
                               str(answers), "--sessions-dir", str(tmp_path / "s"), "--time-budget", "60", "--json"],
                              capture_output=True, text=True, cwd=ROOT, env=env, timeout=300)
    finally:
        fake.stop()
    assert proc.returncode == 0, proc.stderr[-3000:]
    result = json.loads(proc.stdout)
    assert result["status"] == "completed" and result["task"] == "binary"
    assert result["usage"]["input_tokens"] == 11 * 1000 + 1200 and result["usage"]["output_tokens"] == 11 * 50 + 30
    assert result["usage"]["model"] == "claude-sonnet-5-5" and result["usage"]["cost_usd"] is not None
    assert Path(result["artifacts"]["model"]).is_file() and Path(result["artifacts"]["report"]).is_file()
    meta = json.loads((Path(result["session_dir"]) / "session.json").read_text())
    assert meta["backend"] == "claude" and meta["usage"]["input_tokens"] == result["usage"]["input_tokens"]

    bodies = [r["body"] for r in fake.requests]
    assert len(bodies) == 12
    first = bodies[0]
    assert any("data scientist" in block.get("text", "").lower() for block in first["system"])
    system = " ".join(block.get("text", "") for block in first["system"])
    assert "`engineer_features`: propose" in system and "CV change" in system  # the persona asks for features
    assert {t["name"] for t in first["tools"]} >= {"profile_data", "train_models", "evaluate_model", "ask_user"}
    # ask_user answered from the answers file: the next request carries the answers as the tool result
    second_results = [b for b in bodies[1]["messages"][-1]["content"] if b.get("type") == "tool_result"]
    assert "cost_fn" in json.dumps(second_results) and "5" in json.dumps(second_results)
    # the unknown tool came back as an error result, and the run went on
    after_unknown = [b for b in bodies[7]["messages"][-1]["content"] if b.get("type") == "tool_result"]
    assert after_unknown[0].get("is_error") and "unknown tool" in json.dumps(after_unknown)

    # Claude's features: the hostile expression is an error result with the reason; the ratio's result is
    # compact and carries its CV change; the shipped model computes it from raw rows.
    refused = [b for b in bodies[4]["messages"][-1]["content"] if b.get("type") == "tool_result"][0]
    assert refused.get("is_error") and "attribute access" in json.dumps(refused)
    measured = [b for b in bodies[5]["messages"][-1]["content"] if b.get("type") == "tool_result"][0]
    text = json.dumps(measured["content"])
    assert not measured.get("is_error") and len(text) < 1500, text
    assert "bill_ratio" in text and "cv_change" in text and "cv_baseline" in text
    from dsagent.tools.model_io import load_model

    import pandas as pd

    model, _ = load_model(result["artifacts"]["model"])
    raw = pd.read_csv(EXAMPLE).drop(columns=["sex"]).head(40)
    derived = model.named_steps["preprocess"].named_steps["derive"].transform(raw)
    pd.testing.assert_series_equal(derived["bill_ratio"], raw["bill_length_mm"] / raw["bill_depth_mm"], check_names=False)
    assert len(model.predict(raw)) == len(raw) and "bill_ratio" not in raw


def test_api_outage_ends_cleanly_and_the_session_resumes(tmp_path):
    """529s until the SDK's retries run out: exit 1 with one clear line, no traceback; the work
    done so far stays, and --resume finishes the run once the API answers again."""
    from fake_anthropic import http_error

    env = {k: v for k, v in os.environ.items() if not k.startswith("ANTHROPIC_")}
    env.update(ANTHROPIC_API_KEY="sk-test", DSAGENT_API_RETRIES="1")  # fewer back-offs: a faster test
    outage = FakeAnthropic().start()
    try:
        outage.push(_tool(0, "profile_data", {"target": "sex"}))
        outage.push(*[http_error(529, "overloaded_error", retry_after=0) for _ in range(20)])
        proc = subprocess.run([sys.executable, "-m", "dsagent.cli", "run", str(EXAMPLE), "--target", "sex", "--sessions-dir",
                               str(tmp_path), "--time-budget", "60", "--json"], capture_output=True, text=True, cwd=ROOT,
                              env=env | {"ANTHROPIC_BASE_URL": outage.url}, timeout=300)
    finally:
        outage.stop()
    assert proc.returncode == 1 and "Traceback" not in proc.stderr
    result = json.loads(proc.stdout)
    assert result["status"] == "failed" and "overloaded" in result["error"].lower() and "\n" not in result["error"]
    session = Path(result["session_dir"])
    assert (session / "artifacts" / "profile.json").is_file()  # the step done before the outage is kept

    back = FakeAnthropic().start()
    try:
        back.push(message([{"type": "text", "text": "The API is back; stopping here."}], "end_turn"))
        resumed = subprocess.run([sys.executable, "-m", "dsagent.cli", "run", "--resume", session.name, "--sessions-dir",
                                  str(tmp_path), "--json"], capture_output=True, text=True, cwd=ROOT,
                                 env=env | {"ANTHROPIC_BASE_URL": back.url}, timeout=300)
    finally:
        back.stop()
    again = json.loads(resumed.stdout)
    assert again["session_id"] == session.name
    history = back.requests[0]["body"]["messages"]
    assert any(b.get("type") == "tool_result" for m in history if isinstance(m["content"], list) for b in m["content"])


def _ask(i: int, questions: list[dict]) -> object:
    return message([{"type": "tool_use", "id": f"toolu_ask{i}", "name": "ask_user", "input": {"questions": questions}}],
                   "tool_use")


def test_a_question_on_an_unknown_key_never_breaks_resume(tmp_path):
    """Claude asks on a key the answers model lacks: it hears which keys exist (an error result)
    and asks with `note` instead, so --resume of the session works. A session that already holds
    such a key (written by an older version) resumes too, with that answer kept as a note."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("ANTHROPIC_")}
    env.update(ANTHROPIC_API_KEY="sk-test")
    sessions = tmp_path / "s"
    fake = FakeAnthropic().start()
    try:
        fake.push(_ask(1, [{"key": "churn_window", "question": "How many idle days mean churn?", "default": "90"}]),
                  _ask(2, [{"key": "note", "question": "Anything else I should know?", "default": "nothing"}]),
                  message([{"type": "text", "text": "Stopping here."}]))
        first = subprocess.run([sys.executable, "-m", "dsagent.cli", "run", str(EXAMPLE), "--target", "sex", "--sessions-dir",
                                str(sessions), "--time-budget", "30", "--json"], capture_output=True, text=True, cwd=ROOT,
                               env=env | {"ANTHROPIC_BASE_URL": fake.url}, timeout=120)
        refused = [b for b in fake.requests[1]["body"]["messages"][-1]["content"] if b.get("type") == "tool_result"]
        session = Path(json.loads(first.stdout)["session_dir"])
        meta_path = session / "session.json"
        meta = json.loads(meta_path.read_text())
        assert "churn_window" not in meta["answers"] and meta["answers"]["note"] == "nothing"
        # what an older version left behind: an answer stored under a key that is not an answers key
        meta["answers"]["legacy_key"] = "weekly calls"
        meta_path.write_text(json.dumps(meta))
        fake.push(message([{"type": "text", "text": "Resumed."}]))
        resumed = subprocess.run([sys.executable, "-m", "dsagent.cli", "run", "--resume", session.name, "--sessions-dir",
                                  str(sessions), "--json"], capture_output=True, text=True, cwd=ROOT,
                                 env=env | {"ANTHROPIC_BASE_URL": fake.url}, timeout=120)
    finally:
        fake.stop()
    assert refused[0].get("is_error") and "'note'" in refused[0]["content"] and "churn_window" not in json.dumps(meta)
    assert resumed.returncode != 2 and "unknown key" not in resumed.stderr, resumed.stderr[-2000:]
    assert len(fake.requests) == 4 and json.loads(resumed.stdout)["session_id"] == session.name
    note = json.loads(meta_path.read_text())["answers"]["note"]
    assert note.splitlines() == ["nothing", "legacy_key: weekly calls"]
