"""`dsagent chat` driven through prompt_toolkit's pipe input, with scripted backends and a fake
tool runner (no worker, no network): a question answered, slash commands, an interrupt during a
long tool, resume after exit, and the plain stdin mode."""

from __future__ import annotations

import io
import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from prompt_toolkit.application import create_app_session
from prompt_toolkit.input import create_pipe_input
from prompt_toolkit.output import DummyOutput
from rich.console import Console

from dsagent.chat import Chat
from dsagent.chat_asker import TerminalAsker
from dsagent.chat_input import StdinReader, make_completer
from dsagent.chat_run import ChatRun
from dsagent.loop import ToolCall, Turn
from dsagent.runtime import RunOptions
from dsagent.sandbox import CallResult, Progress
from dsagent.session import Session, read_transcript

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = ROOT / "examples" / "penguins.csv"
ENTER, CTRL_D = "\r", "\x04"


class ScriptedBackend:
    """Plays back turns, streaming each text in small deltas; records the conversations it saw."""

    name = "fake"
    model = "fake-model"

    def __init__(self, turns):
        self.turns = list(turns)
        self.seen: list[list[dict]] = []

    def stream_turn(self, conversation, tools, state):
        self.seen.append([dict(m) for m in conversation])
        turn = self.turns.pop(0) if self.turns else Turn(text="nothing more to do")
        for i in range(0, len(turn.text), 7):
            yield turn.text[i:i + 7]
        turn.usage = {"input_tokens": 120, "output_tokens": 30}
        return turn


class FakeWorker:
    def __init__(self):
        self.stopped = 0

    def stop(self):
        self.stopped += 1


class SlowRunner:
    """A tool that reports progress until it is interrupted (a long training run)."""

    def __init__(self, seconds: float = 20.0):
        self.worker = FakeWorker()
        self.seconds = seconds
        self.started = threading.Event()
        self.calls: list[str] = []
        self.tools: dict = {}

    def run(self, name, args, state, timeout):
        self.calls.append(name)
        self.started.set()
        t0 = time.monotonic()
        i = 0
        while time.monotonic() - t0 < self.seconds:
            i += 1
            yield Progress(f"trial {i}", min(1.0, i / 100))
            time.sleep(0.02)
        yield CallResult(True, output={"summary": {"best": "slow"}}, seconds=self.seconds)

    def close(self):
        self.worker.stop()


def _factory(backend, runner=None):
    def make(opts: RunOptions) -> ChatRun:
        run = ChatRun(opts)
        run.backend = backend
        if runner is not None:
            run.runner = runner
        return run
    return make


def _chat(sessions_dir, keys: str, backend, runner=None, *, resume=None, data=EXAMPLE, target=None, time_budget=60):
    """Run a whole chat on the given keystrokes; returns (chat, printed text)."""
    out = io.StringIO()
    console = Console(file=out, width=110, force_terminal=False, color_system=None, highlight=False)
    with create_pipe_input() as inp, create_app_session(input=inp, output=DummyOutput()):
        inp.send_text(keys)
        opts = RunOptions(data=None if resume else data, target=target, backend="offline", sessions_dir=sessions_dir,
                          time_budget=time_budget, resume=resume)
        chat = Chat(opts, console=console, run_factory=_factory(backend, runner), input=inp, output=DummyOutput(),
                    history_path=sessions_dir / ".chat_history")
        assert chat.open(opts)
        code = chat.loop()
    assert code == 0
    return chat, out.getvalue()


QUESTIONS = [
    {"key": "target", "question": "Which column should the model predict?", "why": "everything depends on it",
     "options": ["species", "island"], "default": None},
    {"key": "cost_fp", "question": "What does a false positive cost?", "default": 1.0},
    {"key": "interpretability", "question": "How important is understanding each prediction?",
     "options": ["low", "medium", "high"], "default": "medium"},
]


def test_question_answered_through_the_prompt(sessions_dir):
    backend = ScriptedBackend([
        Turn(text="A few questions first.", tool_calls=[ToolCall("q1", "ask_user", {"questions": QUESTIONS})],
             stop_reason="tool_use"),
        Turn(text="Thanks, **noted**: I will predict the species."),
    ])
    keys = ("hello there" + ENTER
            + ENTER                 # target has no default: asked again
            + "spcies" + ENTER      # not a column: a suggestion, asked again
            + "Species" + ENTER     # case-insensitive match to the column
            + "abc" + ENTER         # not a number: asked again
            + "5" + ENTER
            + "use your judgement" + ENTER
            + CTRL_D)
    chat, out = _chat(sessions_dir, keys, backend)
    run = chat.run
    assert run.state.answers["target"] == "species"
    assert run.state.answers["cost_fp"] == 5.0
    assert run.state.answers["interpretability"] == "medium"
    assert any(a.startswith("interpretability") for a in run.state.assumptions)
    assert "No column is the clear choice" in out and "did you mean species" in out and "try again" in out
    assert "Thanks, noted" in out or "Thanks, **noted**" in out
    # The backend read the answers as the tool result, after the person's message.
    last = backend.seen[-1]
    assert [m["role"] for m in last][-3:] == ["user", "assistant", "tool"] or last[-1]["role"] == "tool"
    assert '"cost_fp":5.0' in last[-1]["results"][0]["content"].replace(" ", "")
    logged = list(read_transcript(run.session.transcript_path))
    assert {"type": "user", "text": "hello there"}.items() <= next(e for e in logged if e.get("text") == "hello there").items()
    assert "dsagent chat --resume " + run.session.id in out


def test_slash_commands_and_completion(sessions_dir):
    backend = ScriptedBackend([])
    keys = "/stauts" + ENTER + "/status" + ENTER + "/show leaderbord" + ENTER + "/show leaderboard" + ENTER \
        + "/artifacts" + ENTER + "/help" + ENTER + "/budget 30" + ENTER + "/quit" + ENTER

    def seed_leaderboard(opts):
        run = _factory(backend)(opts)
        rows = [{"name": "xgboost_tuned", "family": "xgboost", "metric": "roc_auc", "cv_mean": 0.91, "cv_std": 0.01, "fit_s": 1.5},
                {"name": "baseline", "family": "baseline", "metric": "roc_auc", "cv_mean": 0.5, "cv_std": 0.0, "fit_s": 0.1}]
        (run.session.artifacts_dir / "leaderboard.json").write_text(json.dumps(rows))
        return run

    out = io.StringIO()
    console = Console(file=out, width=110, force_terminal=False, color_system=None)
    with create_pipe_input() as inp, create_app_session(input=inp, output=DummyOutput()):
        inp.send_text(keys)
        opts = RunOptions(data=EXAMPLE, backend="offline", sessions_dir=sessions_dir, time_budget=60)
        chat = Chat(opts, console=console, run_factory=seed_leaderboard, input=inp, output=DummyOutput(),
                    history_path=sessions_dir / ".chat_history")
        assert chat.open(opts)
        assert chat.loop() == 0
    text = out.getvalue()
    assert "Did you mean /status?" in text
    assert chat.run.session.id in text and "budget" in text
    assert "Did you mean leaderboard" in text
    assert "xgboost_tuned" in text and "0.9100" in text  # the leaderboard as a table
    assert "leaderboard.json" in text  # /artifacts lists it with its path
    assert "Esc Enter" in text  # /help documents the key bindings
    assert "1m30s left" in text or "90s" in text  # /budget added 30 s to 60 s
    assert not backend.seen  # slash commands never reach the backend
    history = (sessions_dir / ".chat_history").read_text()
    assert "/status" in history  # persistent history

    from prompt_toolkit.completion import CompleteEvent
    from prompt_toolkit.document import Document

    completer = make_completer(chat)
    chat.columns = ["species", "island", "sex"]
    done = lambda t: [c.text for c in completer.get_completions(Document(t), CompleteEvent())]  # noqa: E731
    assert done("/sh") == ["/show"]
    assert done("predict spe") == ["species"]
    assert "leaderboard" in done("/show lea")


def _interrupt_when_started(runner: SlowRunner):
    def fire():
        if runner.started.wait(15):
            time.sleep(0.3)  # let a few progress events render
            os.kill(os.getpid(), signal.SIGINT)
    t = threading.Thread(target=fire, daemon=True)
    t.start()
    return t


def _interrupted_session(sessions_dir):
    backend = ScriptedBackend([
        Turn(text="Training the candidates.", tool_calls=[ToolCall("t1", "train_models", {})], stop_reason="tool_use"),
        Turn(text="Carrying on after the interrupt."),
    ])
    runner = SlowRunner()
    watcher = _interrupt_when_started(runner)
    t0 = time.monotonic()
    chat, out = _chat(sessions_dir, "train please" + ENTER + "/status" + ENTER + "carry on" + ENTER + CTRL_D,
                      backend, runner)
    watcher.join(1)
    return chat, out, backend, runner, time.monotonic() - t0


def test_interrupt_during_a_long_tool_keeps_the_session(sessions_dir, ctrl_c_delivered):
    chat, out, backend, runner, took = _interrupted_session(sessions_dir)
    assert took < 15  # the 20 s tool was cut short
    assert runner.calls == ["train_models"] and runner.worker.stopped >= 1  # the worker was stopped
    assert "Interrupted" in out
    assert chat.run.session.id in out  # /status still works after the interrupt
    logged = list(read_transcript(chat.run.session.transcript_path))
    interrupted = [r for e in logged if e["type"] == "tool_results" for r in e["results"] if r.get("kind") == "interrupted"]
    assert interrupted and interrupted[0]["name"] == "train_models"
    assert any(e["type"] == "interrupted" for e in logged)
    # The next message went through, without the unanswered tool call, and says what happened.
    conv = backend.seen[-1]
    assert not any(m["role"] == "assistant" and m.get("tool_calls") and m is not conv[-1] for m in conv[-1:])
    assert conv[-1]["role"] == "user" and "interrupted your last step, train_models" in conv[-1]["text"]
    assert "Carrying on" in out
    assert f"dsagent chat --resume {chat.run.session.id}" in out


def test_resume_after_exit_rebuilds_the_conversation(sessions_dir, ctrl_c_delivered):
    backend = ScriptedBackend([
        Turn(text="Training the candidates.", tool_calls=[ToolCall("t1", "train_models", {})], stop_reason="tool_use"),
    ])
    runner = SlowRunner()
    _interrupt_when_started(runner).join(0)
    first, out1 = _chat(sessions_dir, "train please" + ENTER + CTRL_D, backend, runner)  # Ctrl-C, then Ctrl-D exits
    sid = first.run.session.id
    assert f"--resume {sid}" in out1

    again = ScriptedBackend([Turn(text="Welcome back; retraining now.")])
    second, out2 = _chat(sessions_dir, ENTER + CTRL_D, again, resume=sid)
    assert second.run.session.id == sid
    assert "train please" in out2  # the rebuilt conversation is replayed
    assert "(train_models) was interrupted: it was cancelled" in out2
    seen = again.seen[0]
    assert [m["role"] for m in seen] == ["user", "user"]  # opening message + "train please"; the dropped turn is gone
    assert "Welcome back" in out2


def test_resume_names_a_step_that_never_finished(sessions_dir):
    session = Session.create(sessions_dir, data_path=EXAMPLE, persona="data-scientist", backend="offline")
    session.append({"type": "user", "text": "go"})
    session.append({"type": "assistant", "text": "tuning", "tool_calls": [{"id": "x", "name": "tune_model", "arguments": {}}]})
    out = io.StringIO()
    console = Console(file=out, width=120, color_system=None)
    reader = StdinReader(console, io.StringIO("/status\n"))
    backend = ScriptedBackend([])
    opts = RunOptions(backend="offline", sessions_dir=sessions_dir, resume=session.id)
    chat = Chat(opts, plain=True, console=console, reader=reader, run_factory=_factory(backend))
    assert chat.open(opts)
    assert chat.loop() == 0
    text = out.getvalue()
    assert "(tune_model) never finished (the process stopped)" in text
    assert "you> /status" in text  # piped input is echoed in plain mode
    assert not backend.seen


def test_ctrl_c_at_a_question_interrupts_the_turn(sessions_dir):
    backend = ScriptedBackend([
        Turn(text="One question.", tool_calls=[ToolCall("q1", "ask_user", {"questions": QUESTIONS[1:2]})], stop_reason="tool_use"),
        Turn(text="Asking again later."),
    ])
    chat, out = _chat(sessions_dir, "go" + ENTER + "\x03" + "/status" + ENTER + CTRL_D, backend)
    assert "Interrupted" in out and chat.run.session.id in out
    assert chat.run.conversation[-1]["role"] == "user"  # the unanswered ask_user turn was dropped
    assert chat.run.interrupt_note and "ask_user" in chat.run.interrupt_note
    logged = [e["type"] for e in read_transcript(chat.run.session.transcript_path)]
    assert logged[-1] == "interrupted"


def test_answer_parsing():
    chat = Chat.__new__(Chat)
    chat.columns = ["species", "island", "sex"]
    asker = TerminalAsker(chat)
    assert asker.parse({"key": "target", "options": ["species", "island"]}, "2") == ("island", False)
    assert asker.parse({"key": "id_columns"}, "Island, sex") == (["island", "sex"], False)
    assert asker.parse({"key": "time_column", "options": ["no"]}, "no") == ("no", False)
    assert asker.parse({"key": "goal", "default": "accuracy"}, "") == ("accuracy", True)
    assert asker.parse({"key": "latency_ms", "default": None}, "use your judgment") == (None, True)
    with pytest.raises(ValueError):
        asker.parse({"key": "interpretability"}, "extreme")
    with pytest.raises(ValueError):
        asker.parse({"key": "target", "default": None}, "")


def test_answers_in_words():
    """Numbers with units, yes / no, option names in any case, and skip for an optional question."""
    chat = Chat.__new__(Chat)
    chat.columns = ["species", "island", "sex", "year"]
    ask = TerminalAsker(chat).parse
    assert ask({"key": "time_budget"}, "two minutes") == (120.0, False)
    assert ask({"key": "cost_fn"}, "$120") == (120.0, False)
    assert ask({"key": "latency_ms"}, "0.2 seconds") == (200.0, False)
    assert ask({"key": "prediction_volume"}, "10k rows a day") == (10000.0, False)
    assert ask({"key": "retrain_every_days"}, "a month") == (30.0, False)
    assert ask({"key": "interpretability", "options": ["low", "medium", "high"]}, "High") == ("high", False)
    offered = {"key": "sensitive_columns", "options": ["sex", "no"], "default": ["sex"]}
    assert ask(offered, "yes") == (["sex"], False) and ask(offered, "no") == ([], False)
    assert ask({"key": "time_column", "options": ["year", "no"]}, "yes") == ("year", False)
    assert ask({"key": "features_at_prediction_time", "options": ["all"], "default": "all"}, "yes") == ("all", False)
    assert ask({"key": "features_at_prediction_time"}, "species, Sex") == (["species", "sex"], False)
    assert ask({"key": "min_useful_score", "default": None}, "skip") == (None, True)


def test_plain_chat_from_a_pipe(tmp_path):
    """The real CLI with stdin and stdout piped: plain output, commands work, exit 0 on EOF."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("ANTHROPIC_")}
    script = f"/help\n/data {EXAMPLE}\n/status\n/nope\n"
    proc = subprocess.run([sys.executable, "-m", "dsagent.cli", "chat", "--backend", "offline", "--sessions-dir",
                           str(tmp_path / "s")], input=script, capture_output=True, text=True, timeout=60, cwd=ROOT, env=env)
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout
    assert "\x1b[" not in out  # no colours, no cursor movement
    assert "/data PATH" in out and "penguins.csv" in out and "budget" in out
    assert "Unknown command /nope" in out
    assert "dsagent chat --resume" in out


def test_claude_backend_streams_into_the_chat(sessions_dir, monkeypatch):
    """The real Claude backend against the local fake Messages API: streamed markdown, a question
    answered at the prompt, tokens in /status."""
    from fake_anthropic import FakeAnthropic, message

    server = FakeAnthropic().start()
    try:
        ask = {"questions": [{"key": "metric", "question": "Which metric?", "why": "ranking vs threshold",
                              "options": ["roc_auc", "pr_auc"], "default": "roc_auc"}]}
        server.push(message([{"type": "text", "text": "Let me ask one thing first."},
                             {"type": "tool_use", "id": "tu1", "name": "ask_user", "input": ask}], stop_reason="tool_use",
                            usage={"input_tokens": 1500, "output_tokens": 40}))
        server.push(message([{"type": "text", "text": "## Plan\n\nI will optimise **pr_auc**.\n\n```python\nprint('hi')\n```\n"}],
                            usage={"input_tokens": 1700, "output_tokens": 60}))
        monkeypatch.setenv("ANTHROPIC_API_KEY", "test-key")
        monkeypatch.setenv("ANTHROPIC_BASE_URL", server.url)
        out = io.StringIO()
        console = Console(file=out, width=100, force_terminal=False, color_system=None)
        with create_pipe_input() as inp, create_app_session(input=inp, output=DummyOutput()):
            inp.send_text("predict species please" + ENTER + "2" + ENTER + "/status" + ENTER + CTRL_D)
            opts = RunOptions(data=EXAMPLE, backend="claude", sessions_dir=sessions_dir, time_budget=60)
            chat = Chat(opts, console=console, input=inp, output=DummyOutput(), history_path=sessions_dir / "h")
            assert chat.open(opts)
            assert chat.loop() == 0
    finally:
        server.stop()
    text = out.getvalue()
    assert chat.run.state.answers["metric"] == "pr_auc"
    assert chat.run.state.answers["target"] == "species"  # named in the first message
    assert "Plan" in text and "pr_auc" in text and "print('hi')" in text
    assert "3200 in / 100 out" in text  # /status adds up the usage of both turns
    sent = server.requests[-1]["body"]["messages"]
    assert "predict species please" in json.dumps(sent)


# ------------------------------------------------------------------ a real terminal (pty)

ANSI = re.compile(r"\x1b\[[0-?]*[ -/]*[@-~]|\x1b[()][A-Za-z0-9]|\x1b[=>]|\x1b\][^\x07]*\x07|[\x0e\x0f]")
# Run in the child: make the pty our controlling terminal (so Ctrl-C becomes SIGINT for the
# chat's process group, as in a real terminal), then become `dsagent chat`.
CTTY = "import fcntl, os, sys, termios; fcntl.ioctl(0, termios.TIOCSCTTY, 0); os.execv(sys.executable, sys.argv[1:])"


class PtyChat:
    """`dsagent chat` in a pseudo-terminal: keys in, screen text out (ANSI stripped)."""

    def __init__(self, args: list[str], env: dict[str, str]):
        import fcntl
        import struct
        import termios

        master, slave = os.openpty()
        fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 40, 120, 0, 0))
        self.proc = subprocess.Popen([sys.executable, "-c", CTTY, sys.executable, "-m", "dsagent.cli", "chat", *args],
                                     stdin=slave, stdout=slave, stderr=slave, cwd=ROOT, env=env, start_new_session=True)
        os.close(slave)
        self.fd, self.raw = master, b""
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self) -> None:
        while True:
            try:
                chunk = os.read(self.fd, 65536)
            except OSError:
                return
            if not chunk:
                return
            self.raw += chunk

    @property
    def text(self) -> str:
        return ANSI.sub("", self.raw.decode("utf-8", "replace"))

    def send(self, keys: str) -> None:
        os.write(self.fd, keys.encode())

    def expect(self, needle: str, timeout: float = 30, after: int = 0) -> int:
        """Wait until `needle` shows after position `after`; returns the position after it."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            pos = self.text.find(needle, after)
            if pos >= 0:
                return pos + len(needle)
            if self.proc.poll() is not None and self.text.find(needle, after) < 0:
                break
            time.sleep(0.05)
        raise AssertionError(f"{needle!r} never showed; the screen ends with:\n{self.text[-2000:]}")

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait(10)
        self.reader.join(5)
        os.close(self.fd)


def descendants(pid: int) -> set[int]:
    """Every live process below `pid`, read from /proc (psutil is not a dependency)."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                stat = Path(f"/proc/{entry}/stat").read_text()
            except OSError:
                continue
            fields = stat[stat.rindex(")") + 2:].split()
            if fields[0] != "Z":
                children.setdefault(int(fields[1]), []).append(int(entry))
    found, todo = set(), [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            found.add(child)
            todo.append(child)
    return found


def cmdline(pid: int) -> bytes:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return b""


def alive(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().split(") ")[1][0] != "Z"
    except (OSError, IndexError):
        return False


def test_ctrl_c_in_a_real_terminal_stops_the_sandboxed_step(tmp_path, ctrl_c_delivered):
    """The real CLI in a pty, Claude (the fake API) asks for a run_python that sleeps: Ctrl-C stops
    it and kills the worker, the session goes on, Ctrl-C twice at the prompt exits with the resume
    hint, and no process of the chat survives."""
    from fake_anthropic import FakeAnthropic, message

    from dsagent.sandbox import detect

    # The hardest case for "nothing survives": no bubblewrap PID namespace and no pids cgroup to
    # kill the worker's processes whole (a container without either); run_python still needs
    # Landlock and seccomp.
    off = "bubblewrap,pids-cgroup"
    found = detect.layers()
    for name in ("landlock", "seccomp"):
        if not found[name]["active"]:
            pytest.skip(f"layer {name} unavailable here (run_python needs it): {found[name]['reason']}")
    sleeper = "import time\nprint('sleeping', flush=True)\ntime.sleep(120)"
    server = FakeAnthropic().start()
    server.push(message([{"type": "text", "text": "Let me look."},
                         {"type": "tool_use", "id": "tu1", "name": "run_python", "input": {"code": sleeper}}],
                        stop_reason="tool_use"))
    server.push(message([{"type": "text", "text": "Understood, I stopped there."}]))
    sessions = tmp_path / "sessions"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ANTHROPIC_", "DSAGENT_"))}
    env.update(ANTHROPIC_API_KEY="test-key", ANTHROPIC_BASE_URL=server.url, TERM="xterm-256color",
               PROMPT_TOOLKIT_NO_CPR="1", DSAGENT_TOOL_MODULES="dsagent.tools.run_python", DSAGENT_DISABLE_LAYERS=off)  # a worker that starts fast
    chat = PtyChat([str(EXAMPLE), "--backend", "claude", "--sessions-dir", str(sessions), "--time-budget", "300"], env)
    try:
        at = chat.expect("you ›", timeout=60)
        chat.send("have a look" + ENTER)
        deadline = time.monotonic() + 60  # until the snippet runs in its confined child
        while not any(b"--child" in cmdline(p) for p in descendants(chat.proc.pid)) and time.monotonic() < deadline:
            time.sleep(0.1)
        workers = descendants(chat.proc.pid)
        assert workers, "no sandboxed process was running"
        started = time.monotonic()
        chat.send("\x03")
        at = chat.expect("Interrupted", timeout=15, after=at)
        assert time.monotonic() - started < 10
        deadline = time.monotonic() + 5
        while any(alive(p) for p in workers) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert not [p for p in workers if alive(p)], "the worker outlived the interrupt"
        assert not descendants(chat.proc.pid)
        # The session goes on: the next message reaches the model, which learns what happened.
        chat.send("carry on" + ENTER)
        at = chat.expect("Understood, I stopped there.", timeout=30, after=at)
        assert "interrupted your last step, run_python" in json.dumps(server.requests[-1]["body"]["messages"])
        chat.expect("you ›", after=at)
        chat.send("\x03")
        at = chat.expect("Ctrl-C again", timeout=10, after=at)
        chat.send("\x03")
        (session,) = sessions.glob("*/session.json")
        at = chat.expect(f"dsagent chat --resume {session.parent.name}", timeout=20, after=at)
        assert chat.proc.wait(20) == 0
        logged = list(read_transcript(session.parent / "transcript.jsonl"))
        assert any(r.get("kind") == "interrupted" and r["name"] == "run_python"
                   for e in logged if e["type"] == "tool_results" for r in e["results"])
        assert not [p for p in workers if alive(p)]
    finally:
        chat.close()
        server.stop()


CONCRETE_ROWS = "cement,water,age,strength\n" + "".join(f"{300 + i},{180 - i},{7 + i},{30 + i / 2}\n" for i in range(20))


def test_goal_sentence_sets_target_and_budget_and_leaves_the_questions_to_judgement(sessions_dir, tmp_path):
    """The issue's first message: the target and the budget come from the sentence (followed by a
    full stop), it is echoed in one line, and every question is answered by judgement, not asked."""
    data = tmp_path / "concrete.csv"
    data.write_text(CONCRETE_ROWS)
    questions = [{"key": "interpretability", "question": "How important is understanding?",
                  "options": ["low", "medium", "high"], "default": "medium"},
                 {"key": "time_column", "question": "Split by time?", "default": None}]
    backend = ScriptedBackend([Turn(text="Questions.", tool_calls=[ToolCall("q1", "ask_user", {"questions": questions})],
                                    stop_reason="tool_use"), Turn(text="done")])
    message = "Predict strength. Use your judgement on anything you need to ask, and keep it to 60 seconds."
    chat, out = _chat(sessions_dir, message + ENTER + CTRL_D, backend, data=data, time_budget=None)
    run = chat.run
    assert "Understood from your goal: target strength, budget 60 s, the rest left to my judgement." in out
    assert run.state.answers["target"] == "strength" and run.budget == 60 and run.state.time_budget == 60
    assert run.state.answers["interpretability"] == "medium"
    assert "answer ›" not in out  # nothing was asked at the prompt
    assert any(a.startswith("interpretability = 'medium': left to my judgement") for a in run.state.assumptions)
    result = run.result()
    assert result.answers["target"].source == "understood" and result.answers["time_budget"].value == 60
    assert result.answers["interpretability"].source == "assumed"


def test_judgement_on_the_target_picks_the_clear_column_or_says_why_not(sessions_dir, tmp_path):
    data = tmp_path / "d.csv"
    data.write_text("f1,f2,label\n" + "".join(f"{i},{i % 3},{i % 2}\n" for i in range(20)))
    target_q = [{"key": "target", "question": "Which column should the model predict?", "options": ["f1", "f2", "label"],
                 "default": None}]
    backend = ScriptedBackend([Turn(text="Q.", tool_calls=[ToolCall("q1", "ask_user", {"questions": target_q})],
                                    stop_reason="tool_use"), Turn(text="done")])
    chat, out = _chat(sessions_dir, "build a model" + ENTER + "use your judgement" + ENTER + CTRL_D, backend, data=data)
    assert chat.run.state.answers["target"] == "label"
    assert "label is named like a target" in out

    backend = ScriptedBackend([Turn(text="Q.", tool_calls=[ToolCall("q1", "ask_user", {"questions": target_q})],
                                    stop_reason="tool_use"), Turn(text="done")])
    keys = "compare f1 and f2" + ENTER + "use your judgement" + ENTER + "f2" + ENTER + CTRL_D
    chat, out = _chat(sessions_dir, keys, backend, data=data)
    assert "No column is the clear choice: your goal names 2 columns (f1, f2)" in out
    assert chat.run.state.answers["target"] == "f2"


def test_add_feature_phrase_declares_a_derived_feature_through_the_same_parser(sessions_dir):
    """"add x = a / b" typed at the chat prompt is a derived feature, not a message to the model:
    checked by the derived-feature parser (a hostile or wrong one is one line, nothing added), and
    the real define_task then puts it in the task the model is trained on."""
    backend = ScriptedBackend([Turn(text="Fixing the task.", tool_calls=[ToolCall("t1", "define_task", {"target": "species"})],
                                    stop_reason="tool_use"), Turn(text="done")])
    keys = ("add bill_ratio = bill_length_mm / bill_depth_mm" + ENTER
            + "add feature bad = bill_length_mm.__class__" + ENTER
            + "Add derived feature: typo = bill_length_mm / bill_dept" + ENTER
            + "add mass_kg = body_mass_g / 1000" + ENTER
            + "predict species" + ENTER + CTRL_D)
    chat, out = _chat(sessions_dir, keys, backend, target="species")
    assert chat.run.state.answers["derived_features"] == ["bill_ratio = bill_length_mm / bill_depth_mm",
                                                          "mass_kg = body_mass_g / 1000"]
    assert "Added derived feature bill_ratio = bill_length_mm / bill_depth_mm" in out
    bad = [line for line in out.splitlines() if "attribute access" in line]
    assert len(bad) == 1 and "nothing was added" in bad[0] and "Traceback" not in out
    assert "'bill_dept', which is not a column" in out
    assert all("add " not in str(m.get("content")) for conv in backend.seen for m in conv if m["role"] == "user")
    task = json.loads((chat.run.session.artifacts_dir / "task.json").read_text())
    assert task["derived"]["features"] == ["bill_ratio = bill_length_mm / bill_depth_mm", "mass_kg = body_mass_g / 1000"]
