"""Questions about a finished session, answered from its artifacts (agent/about.py).

Three real sessions: the shared multiclass run (conftest's offline_run), and a binary and a
regression run made once for this module with tiny budgets. Each phrasing's answer must carry
the numbers of the JSON files; then the same answers through the real chat (a pipe), the Python
API and the MCP client.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import anyio
import pytest
from quick import QUICK_FAMILIES

from dsagent.about import ask_about

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = ROOT / "examples" / "penguins.csv"
ENV = {k: v for k, v in os.environ.items() if not k.startswith("ANTHROPIC_")}


@pytest.fixture(scope="module")
def sessions(request, tmp_path_factory) -> dict[str, Path]:
    """kind -> session directory; the binary and regression runs go side by side, and beside the
    shared run when this module is the one that makes it (so it is asked for once they started)."""
    base = tmp_path_factory.mktemp("ask-sessions")
    (base / "quick.yaml").write_text(QUICK_FAMILIES)
    procs = {kind: subprocess.Popen(
        [sys.executable, "-m", "dsagent.cli", "run", str(EXAMPLE), "--target", target, "--backend", "offline",
         "--time-budget", "15", "--max-trials", "1", "--sessions-dir", str(base), "--json", "--answers", str(base / "quick.yaml")],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=ROOT, env=ENV)
        for kind, target in (("binary", "sex"), ("regression", "body_mass_g"))}
    out = {"multiclass": Path(request.getfixturevalue("offline_run").session_dir)}
    for kind, proc in procs.items():
        stdout, stderr = proc.communicate(timeout=240)
        assert proc.returncode == 0, stderr[-2000:]
        out[kind] = Path(json.loads(stdout)["session_dir"])
    return out


def art(session: Path, name: str):
    return json.loads((session / "artifacts" / name).read_text())


def f4(x: float) -> str:
    return f"{x:.4f}"


# What each answer must contain, computed from the session's files.
def drivers(s: Path) -> list[str]:
    perm = art(s, "explanation.json")["permutation_importance"]
    return [f"`{r['feature']}` {f4(r['importance'])} ± {f4(r['std'])}" for r in perm[:3]] + ["permutation_importance.png"]


def performance(s: Path) -> list[str]:
    ev = art(s, "evaluation.json")
    lo, hi = ev["test_ci"]
    return [f"{ev['metric']} {f4(ev['test_score'])}", f"{f4(lo)} to {f4(hi)}", f"scores {f4(ev['baseline_score'])}",
            f"{ev['n_test']} held-out test rows", f"{f4(ev['cv_mean'])} ± {f4(ev['cv_std'])}"]


def in_goal_terms(s: Path) -> list[str]:
    ev, task = art(s, "evaluation.json"), art(s, "task.json")
    m = ev["test_metrics"]
    if task["task"] == "binary":
        at = ev["threshold"]["test_metrics_at_threshold"]
        return [f"{at['recall']:.1%}", f"{at['precision']:.1%}", f">= {ev['threshold']['threshold']:.3f}"]
    if task["task"] == "multiclass":
        return [f"{m['accuracy']:.1%} of the test rows get the right class"]
    return [f"off by {m['mae']:.1f} on average", f"{m['r2']:.1%} of its variance"]


def why_model(s: Path) -> list[str]:
    board, ev = art(s, "leaderboard.json"), art(s, "evaluation.json")
    return [f"{r['name']} ({r['family']}): {f4(r['cv_mean'])}" for r in board[:3]] + [f"{ev['model']}", "← chosen",
                                                                                      "one CV standard deviation"]


def assumptions(s: Path) -> list[str]:
    return json.loads((s / "session.json").read_text())["assumptions"]


def data_quality(s: Path) -> list[str]:
    prof = art(s, "profile.json")
    missing = [f"`{c['name']}` {c['missing_frac']:.1%}" for c in prof["columns"] if c.get("n_missing")]
    return [f"{prof['n_rows']} rows x {prof['n_cols']} columns", f"{prof['duplicate_rows']} exact duplicate"] + missing


def weak_spots(s: Path) -> list[str]:
    ev = art(s, "evaluation.json")
    out = [f"`{w['column']}` = {w['value']}: {w['n']} rows, mean loss {f4(w['mean_loss'])}" for w in ev["worst_segments"][:3]]
    if "confusion_matrix" in ev:
        cm = ev["confusion_matrix"]
        errs = [(cm["matrix"][i][j], t, p) for i, t in enumerate(cm["labels"]) for j, p in enumerate(cm["labels"])
                if i != j and cm["matrix"][i][j]]
        n, t, p = max(errs)
        out.append(f"{n} x actual `{t}` predicted `{p}`")
    return out


def usage(s: Path) -> list[str]:
    task = art(s, "task.json")
    return [f"dsagent predict {s} new.csv -o predictions.csv", ", ".join(task["features"]), "`prediction`"] + (
        ["proba_<class>"] if task["task"] != "regression" else [])


def monitoring(s: Path) -> list[str]:
    plan = art(s, "monitoring.json")
    return plan["retraining_triggers"] + [f"dsagent monitor {s}", f"every {plan['schedule']['retrain_every_days']} days"]


def improve(s: Path) -> list[str]:
    ev = art(s, "evaluation.json")
    w = ev["worst_segments"][0]
    return ["What would improve it", f"the test split has {ev['n_test']} rows", f"`{w['column']}` = {w['value']}"]


def column(name: str):
    def check(s: Path) -> list[str]:
        col = next(c for c in art(s, "profile.json")["columns"] if c["name"] == name)
        out = [f"`{name}`: {col['kind']}", f"{col['n_unique']} distinct values", f"{col['n_missing']} missing"]
        if col["kind"] == "numeric":
            out += [f"mean {col['mean']:.2f}", f"median {col['median']:.2f}"]
        else:
            out += [f"{v} ({n})" for v, n in col["top_values"][:2]]
        return out
    return check


def menu(s: Path) -> list[str]:
    return ["I did not understand that question", "what drives the predictions", "try again with 5 minutes"]


# (session kind, phrasing, intent, what the answer must contain)
PHRASINGS = [
    ("multiclass", "What drives the predictions?", "drivers", drivers),
    ("multiclass", "which features matter most", "drivers", drivers),
    ("binary", "What are the most important features?", "drivers", drivers),
    ("regression", "what factors influence body mass the most?", "drivers", drivers),
    ("multiclass", "How good is the model?", "performance", performance),
    ("multiclass", "how accurate is it, in practice?", "performance", in_goal_terms),
    ("binary", "How confident are you in the score?", "performance", performance),
    ("binary", "what does the score mean for the goal", "performance", in_goal_terms),
    ("regression", "how well does it perform?", "performance", performance),
    ("regression", "How big is the error?", "performance", in_goal_terms),
    ("multiclass", "Why this model?", "why_model", why_model),
    ("binary", "why did you choose extra trees over the others", "why_model", why_model),
    ("regression", "show me how the candidates compared on the leaderboard please", "show", None),
    ("regression", "Which model did you pick, and what were the alternatives?", "why_model", why_model),
    ("multiclass", "What did you assume?", "assumptions", assumptions),
    ("binary", "which assumptions did you make", "assumptions", assumptions),
    ("regression", "what defaults did you use", "assumptions", assumptions),
    ("multiclass", "Any data quality issues?", "data_quality", data_quality),
    ("binary", "are there missing values or duplicates", "data_quality", data_quality),
    ("regression", "is the data clean?", "data_quality", data_quality),
    ("multiclass", "Where is the model weak?", "weak_spots", weak_spots),
    ("binary", "which segments does it get wrong", "weak_spots", weak_spots),
    ("regression", "where does it fail worst?", "weak_spots", weak_spots),
    ("multiclass", "How do I use it?", "usage", usage),
    ("binary", "how can I deploy this in production", "usage", usage),
    ("regression", "how do I get predictions on new data", "usage", usage),
    ("multiclass", "What should I monitor?", "monitoring", monitoring),
    ("binary", "when should I retrain?", "monitoring", monitoring),
    ("regression", "how do I watch for drift", "monitoring", monitoring),
    ("multiclass", "What would improve it?", "improve", improve),
    ("binary", "what are the next steps", "improve", improve),
    ("regression", "how could we make it better", "improve", improve),
    ("multiclass", "What is bill_length_mm?", "column", column("bill_length_mm")),
    ("binary", "tell me about the island column", "column", column("island")),
    ("regression", "describe Flipper Length mm", "column", column("flipper_length_mm")),
    ("multiclass", "sex", "column", column("sex")),
    ("multiclass", "What is the meaning of life?", "menu", menu),
    ("binary", "asdf qwerty", "menu", menu),
    ("regression", "tell me a joke", "menu", menu),
]
FOLLOW_UPS = [
    ("binary", "try again with 5 minutes", "rerun_budget", {"time_budget": 300.0}),
    ("multiclass", "Run it again with 90 seconds", "rerun_budget", {"time_budget": 90.0}),
    ("binary", "use recall instead", "rerun_metric", {"metric": "recall"}),
    ("regression", "optimise for MAE", "rerun_metric", {"metric": "mae"}),
    ("multiclass", "switch to balanced accuracy", "rerun_metric", {"metric": "balanced_accuracy"}),
    ("binary", "drop column year", "rerun_drop", {"id_columns": ["year"]}),
    ("regression", "please remove the island column", "rerun_drop", {"id_columns": ["island"]}),
    ("multiclass", "try again without year", "rerun_drop", {"id_columns": ["year"]}),
]


@pytest.mark.parametrize("kind,question,intent,expect", PHRASINGS, ids=[f"{k}:{q}" for k, q, _, _ in PHRASINGS])
def test_answers_carry_the_numbers_of_the_artifacts(sessions, kind, question, intent, expect):
    reply = ask_about(sessions[kind], question)
    assert reply.intent == intent, reply.text
    for piece in expect(sessions[kind]) if expect else []:
        assert piece in reply.text + " ".join(reply.plots), f"{piece!r} missing from:\n{reply.text}"
    assert "Done. The chosen model" not in reply.text  # never the run's summary again


@pytest.mark.parametrize("kind,question,intent,changes", FOLLOW_UPS, ids=[f"{k}:{q}" for k, q, _, _ in FOLLOW_UPS])
def test_follow_ups_map_to_reruns_with_changed_answers(sessions, kind, question, intent, changes):
    reply = ask_about(sessions[kind], question)
    assert reply.intent == intent and reply.action["kind"] == "rerun", reply.text
    assert reply.action["changes"] == changes
    meta = json.loads((sessions[kind] / "session.json").read_text())
    assert reply.action["answers"]["target"] == meta["answers"]["target"]  # the other answers carry over
    assert reply.action["data"] == meta["data_path"]
    assert "run_task(" in reply.text  # read-only callers are told which call does it


def test_follow_ups_that_do_not_fit_say_why(sessions):
    assert "does not fit a regression task" in ask_about(sessions["regression"], "use recall instead").text
    assert "is the target" in ask_about(sessions["binary"], "drop column sex").text
    assert "not a column" in ask_about(sessions["binary"], "drop column wingspan").text
    show = ask_about(sessions["binary"], "show me the confusion matrix")
    assert show.action == {"kind": "show", "name": "plots/confusion_matrix.png"}
    assert "no confusion matrix" in ask_about(sessions["regression"], "show me the confusion matrix").text


def test_two_questions_in_one_get_both_answers(sessions):
    s = sessions["regression"]
    reply = ask_about(s, "which features matter most, and how sure are you about the error?")
    assert reply.intent == "drivers+performance"
    for piece in drivers(s) + performance(s):
        assert piece in reply.text + " ".join(reply.plots)


def test_offline_chat_answers_shows_and_reruns(offline_run, tmp_path):
    """The real CLI, piped: a finished session answers questions, shows a plot, gives the menu,
    refuses a metric that does not fit, and re-runs with a new budget as a new session."""
    sid = offline_run.session_id
    shutil.copytree(offline_run.session_dir, tmp_path / sid)  # the shared session stays untouched
    ev = art(tmp_path / sid, "evaluation.json")
    script = ("which features matter most, and how sure are you about the error?\nwhat is the meaning of life\n"
              "show me the confusion matrix\nuse recall instead\ntry again with 12 seconds\n")
    proc = subprocess.run([sys.executable, "-m", "dsagent.cli", "chat", "--plain", "--backend", "offline", "--resume", sid,
                           "--sessions-dir", str(tmp_path), "--max-trials", "1"], input=script, capture_output=True,
                          text=True, timeout=200, cwd=ROOT, env=ENV)
    out = proc.stdout
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert f"{ev['metric']} {f4(ev['test_score'])}" in out and f4(ev["test_ci"][0]) in out
    assert art(tmp_path / sid, "explanation.json")["permutation_importance"][0]["feature"] in out
    assert "does not answer free-form questions" not in out
    assert out.count("I did not understand that question") == 1
    assert str(tmp_path / sid / "artifacts" / "plots" / "confusion_matrix.png") in out
    assert "recall does not fit a multiclass task" in out
    assert "I will start a new run on the same data with a 12s time budget" in out
    new = [d for d in tmp_path.iterdir() if d.is_dir() and d.name != sid]
    assert len(new) == 1 and (new[0] / "artifacts" / "evaluation.json").is_file(), out[-3000:]
    meta = json.loads((new[0] / "session.json").read_text())
    assert meta["time_budget"] == 12 and meta["answers"]["target"] == "species"
    assert art(tmp_path / sid, "evaluation.json") == ev  # the finished session is kept as it was


def test_chat_rerun_options_for_metric_and_dropped_column(offline_run, tmp_path):
    """What the chat passes to the new run for "use ... instead" and "drop column X" (the run
    itself is the same path as the budget re-run above, so it is not repeated here)."""
    from rich.console import Console

    from dsagent.chat import Chat
    from dsagent.chat_run import ChatRun
    from dsagent.runtime import RunOptions

    sid = offline_run.session_id
    shutil.copytree(offline_run.session_dir, tmp_path / sid)
    started: list[RunOptions] = []

    def factory(opts):
        if opts.resume:
            return ChatRun(opts)
        started.append(opts)
        raise ValueError("stop here")  # open() reports it and keeps the current session

    opts = RunOptions(resume=sid, backend="offline", sessions_dir=tmp_path)
    import io

    chat = Chat(opts, plain=True, console=Console(file=io.StringIO(), width=120), reader=object(), run_factory=factory)
    assert chat.open(opts)
    try:
        chat.turn("switch to balanced accuracy")
        chat.turn("drop column year")
    finally:
        chat.run.runner.close()
    assert [o.answers.metric for o in started] == ["balanced_accuracy", None]
    assert started[1].answers.id_columns == ["year"] and started[1].data == chat.run.session.data_path
    assert all(o.answers.target == "species" and o.resume is None for o in started)


def test_python_api_and_mcp_give_the_same_answer(offline_run, tmp_path):
    from mcp.client import Client

    from dsagent import ask_about as api_ask
    from dsagent.mcp_server import build_server

    q = "how good is the model?"
    expected = ask_about(offline_run.session_dir, q).to_dict()
    assert api_ask(offline_run, q) == expected
    sessions_dir = Path(offline_run.session_dir).parent
    assert api_ask(offline_run.session_id, q, sessions_dir=sessions_dir) == expected
    server = build_server([tmp_path], sessions_dir)

    async def go():
        async with Client(server) as client:
            ok = await client.call_tool("ask_about", {"task_id": offline_run.session_id, "question": q})
            bad = await client.call_tool("ask_about", {"task_id": "no-such-session", "question": q})
            return ok, bad

    try:
        ok, bad = anyio.run(go)
    finally:
        server.app.close()
    assert not ok.is_error and json.loads(ok.content[0].text) == expected
    assert bad.is_error and "no task or session" in bad.content[0].text
