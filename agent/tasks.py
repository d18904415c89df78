"""Whole runs in background threads, and the shared session behind direct tool calls.

Used by the MCP server (agent/mcp_server.py) and usable from Python. Nothing here imports `mcp`
or an ML library: a task is a `Run` (agent/runtime.py) driven in a thread, and a direct-call
session is a `ToolRunner` (the same sandboxed worker the loop uses) over one registered data file.

Task ids are session ids, so a task outlives the process that started it: status, result,
answers and artifacts are read back from the sessions directory.
"""

from __future__ import annotations

import json
import os
import re
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from dsagent.answers import Answers, BadInput, parse_answers, resolve_time_budget
from dsagent.loop import Event

SESSION_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")

# What task_status calls each step of the workflow.
PHASES = {
    "profile_data": "profiling", "ask_user": "clarifying", "define_task": "framing the task",
    "train_models": "training", "tune_model": "tuning", "evaluate_model": "evaluating",
    "explain_model": "explaining", "write_report": "writing the report", "plan_monitoring": "planning monitoring",
    "write_notebook": "writing the notebook",
}

# Tools only the MCP server has (agent/mcp_server.py): the direct-call session and whole tasks.
MCP_SESSION_TOOLS = ("load_data", "start_ml_task", "task_status", "answer_questions", "task_result", "cancel_task",
                     "list_tasks", "ask_about", "predict", "explain", "monitor", "retrain")


# ------------------------------------------------------------------------- path confinement


def resolve_roots(roots: list[str | Path] | None) -> list[Path]:
    """The directories data may be read from, resolved (default: the current directory)."""
    found = [Path(os.path.realpath(Path(r).expanduser())) for r in (roots or [Path.cwd()])]
    for r in found:
        if not r.is_dir():
            raise BadInput(f"root {r} is not a directory; pass an existing directory with --root")
    return found


def confine_data_path(path: str | Path, roots: list[Path]) -> Path:
    """The real path of a data file the client named, refused unless it lies under a root.

    Relative paths are taken relative to the first root. Symlinks and `..` are resolved before
    the check, so neither can lead outside.
    """
    raw = Path(str(path)).expanduser()
    if not raw.is_absolute():
        raw = roots[0] / raw
    real = Path(os.path.realpath(raw))
    if not any(real == r or r in real.parents for r in roots):
        shown = ", ".join(map(str, roots))
        raise BadInput(f"{path} is outside the allowed data roots ({shown}); copy the file under a root, "
                       "or restart the server with --root DIR")
    if not real.is_file():
        where = f" (a relative path is read from the first root, {roots[0]})" if not Path(str(path)).expanduser().is_absolute() else ""
        raise BadInput(f"data file {path} not found{where}; check the path")
    return real


def check_session_id(session_id: str) -> str:
    if not isinstance(session_id, str) or not SESSION_ID.match(session_id) or ".." in session_id:
        raise BadInput(f"{session_id!r} is not a task or session id; use the id start_ml_task returned")
    return session_id


def session_dir(sessions_dir: Path, session_id: str) -> Path:
    """The directory of a session, refused unless it is a direct child of `sessions_dir`."""
    check_session_id(session_id)
    base = Path(os.path.realpath(sessions_dir))
    d = Path(os.path.realpath(base / session_id))
    if d.parent != base or not (d / "session.json").is_file():
        raise BadInput(f"no task or session {session_id!r} in {base}")
    return d


def _pending_questions(transcript: Path) -> list[dict[str, Any]]:
    """The questions of a session paused on ask_user (the last needs_input result)."""
    from dsagent.session import read_transcript

    questions: list[dict[str, Any]] = []
    for event in read_transcript(transcript):
        if event.get("type") == "tool_results":
            found = [q for r in event.get("results", []) if r.get("kind") == "needs_input" for q in r.get("questions", [])]
            questions = found
    return questions


def defer_to_defaults(answers: dict[str, Any], questions: list[dict[str, Any]], goal: str | None = None,
                      columns: list[str] | None = None) -> tuple[dict[str, Any], list[str]]:
    """Answers such as "use your judgement" take the pending question's stated default (typed keys
    like `interpretability` accept only their own values), or for the target the column the goal
    or the data make the clear choice; each one becomes an assumption with its reasoning. When no
    choice is defensible: bad input, one line saying why with the options."""
    from dsagent.asking import NoClearChoice, is_judgement, judge

    pending = {q.get("key"): q for q in questions}
    out, notes = {}, []
    for key, value in answers.items():
        if isinstance(value, str) and is_judgement(value, key):
            if key not in pending:
                continue  # a judgement answer to a question nobody asked: nothing to record
            try:
                out[key], why = judge(pending[key], goal, columns)
            except NoClearChoice as exc:
                raise BadInput(f"answers: {key}: {exc}; give one") from None
            if out[key] is None:
                raise BadInput(f"answers: {key} has no default to fall back on; give a value")
            notes.append(f"{key} = {out[key]!r}: left to dsagent's judgement ({why})")
        else:
            out[key] = value
    return out, notes


def _kill_worker(worker: Any) -> None:
    """Kill a run's worker from another thread (Worker.kill). The thread reading its replies sees
    EOF and turns the call into an error result; it restarts nothing because the loop stops."""
    if worker is not None:
        worker.kill()


# ------------------------------------------------------------------------------- tasks


@dataclass
class Task:
    id: str
    data: str | None
    backend: str
    on_questions: str
    max_trials: int | None
    persona: str
    time_budget: float | None
    status: str = "running"  # running | needs_input | completed | failed | cancelled
    phase: str = "starting"
    started: float = field(default_factory=time.time)
    finished: float | None = None
    steps: list[dict[str, Any]] = field(default_factory=list)
    workflow: list[str] = field(default_factory=list)
    questions: list[dict[str, Any]] = field(default_factory=list)
    message: str = ""
    error: str | None = None
    result: Any = None  # RunResult once the run ends
    run: Any = None
    thread: threading.Thread | None = None
    cancel_requested: threading.Event = field(default_factory=threading.Event)
    changed: threading.Condition = field(default_factory=threading.Condition)
    version: int = 0  # bumped on every change: lets a poller report progress only when it moved

    def progress(self) -> float:
        if self.status == "completed":
            return 1.0
        done = {s["name"] for s in self.steps if s.get("ok")}
        todo = [t for t in self.workflow if t != "ask_user"] or list(PHASES)
        return round(min(0.95, len(done & set(todo)) / max(1, len(todo))), 3)

    def snapshot(self) -> dict[str, Any]:
        end = self.finished or time.time()
        out: dict[str, Any] = {
            "id": self.id, "status": self.status, "phase": self.phase, "progress": self.progress(),
            "elapsed_s": round(end - self.started, 1), "time_budget_s": self.time_budget,
            "steps": [dict(s) for s in self.steps], "message": self.message,
        }
        if self.status == "needs_input":
            out["questions"] = self.questions
            out["next"] = "call answer_questions with {key: answer} for these keys (or 'use your judgement')"
        if self.status == "running" and self.cancel_requested.is_set():
            out["cancelling"] = True
        if self.error:
            out["error"] = self.error
        if self.status in ("completed", "failed", "cancelled"):
            out["next"] = "call task_result for the RunResult"
        return out

    def _touch(self) -> None:
        with self.changed:
            self.version += 1
            self.changed.notify_all()

    def on_event(self, event: Event) -> None:
        kind, data = event.kind, event.data
        if kind == "tool_start":
            self.phase = PHASES.get(data.get("name", ""), data.get("name", "working"))
            self.message = f"running {data.get('name')}"
            self.steps.append({"name": data.get("name"), "ok": None, "seconds": None})
        elif kind == "tool_end":
            if self.steps and self.steps[-1]["name"] == data.get("name") and self.steps[-1]["ok"] is None:
                self.steps[-1].update(ok=bool(data.get("ok")), seconds=round(float(data.get("seconds") or 0), 2))
            else:
                self.steps.append({"name": data.get("name"), "ok": bool(data.get("ok")), "seconds": None})
            if not data.get("ok"):
                self.steps[-1]["error"] = str(data.get("error"))[:300]
        elif kind == "tool_progress":
            self.message = f"{data.get('name')}: {data.get('message', '')}"
        elif kind == "text" and data.get("text"):
            self.message = str(data["text"])[:300]
        elif kind == "needs_input":
            self.questions = list(data.get("questions") or [])
        elif kind == "notice":
            self.message = str(data.get("message"))[:300]
        self._touch()

    def wait(self, timeout: float | None = None, since: int | None = None) -> bool:
        """Block until the task ends (or, with `since`, until anything changed). True if it did."""
        deadline = None if timeout is None else time.monotonic() + timeout
        with self.changed:
            while True:
                if self.status not in ("running",) or (since is not None and self.version != since):
                    return True
                left = None if deadline is None else deadline - time.monotonic()
                if left is not None and left <= 0:
                    return False
                self.changed.wait(left if left is not None else 1.0)


class TaskManager:
    """Starts, tracks, resumes and cancels whole runs, each in its own thread and session."""

    def __init__(self, sessions_dir: Path | None = None, roots: list[str | Path] | None = None, *,
                 backend: str = "auto", persona: str = "data-scientist", confine: bool = True):
        from dsagent.session import default_sessions_dir

        self.sessions_dir = Path(os.path.abspath(Path(sessions_dir) if sessions_dir else default_sessions_dir()))
        self.roots = resolve_roots(roots) if confine else []
        self.backend = backend
        self.persona = persona
        self.tasks: dict[str, Task] = {}
        self._lock = threading.Lock()

    # -- starting and resuming --------------------------------------------------------------
    def start(self, data: str | Path, *, goal: str | None = None, target: str | None = None,
              time_budget: float | None = None, answers: dict[str, Any] | Answers | None = None,
              backend: str | None = None, on_questions: str = "ask", max_trials: int | None = None,
              persona: str | None = None) -> Task:
        from dsagent.runtime import Run, RunOptions

        if on_questions not in ("ask", "assume"):
            raise BadInput(f"on_questions must be 'ask' or 'assume', not {on_questions!r}")
        path = confine_data_path(data, self.roots) if self.roots else Path(data)
        given = answers if isinstance(answers, Answers) else parse_answers(dict(answers or {}))
        if time_budget is not None and time_budget <= 0:
            raise BadInput("time_budget must be positive (seconds)")
        opts = RunOptions(data=path, target=target, goal=goal, answers=given, time_budget=time_budget,
                          backend=backend or self.backend, persona=persona or self.persona,
                          sessions_dir=self.sessions_dir, on_questions=on_questions, max_trials=max_trials,
                          roots=[str(r) for r in self.roots])
        self.sessions_dir.mkdir(parents=True, exist_ok=True)
        run = Run(opts)
        task = Task(id=run.session.id, data=str(path), backend=run.backend_name, on_questions=on_questions,
                    max_trials=max_trials, persona=opts.persona, time_budget=run.budget,
                    workflow=list(run.tools))
        with self._lock:
            self.tasks[task.id] = task
        self._launch(task, run)
        return task

    def answer(self, task_id: str, answers: dict[str, Any] | Answers) -> Task:
        """Resume a task paused on questions, with the answers (Answers keys)."""
        from dsagent.runtime import Run, RunOptions

        task = self.get(task_id)
        if task.status != "needs_input":
            raise BadInput(f"task {task_id} is {task.status}, not waiting for answers")
        raw = answers.given() if isinstance(answers, Answers) else dict(answers or {})
        from dsagent.goal import data_columns
        from dsagent.session import Session

        goal = (Session.load(self.sessions_dir, task.id).meta.get("answers") or {}).get("goal")
        raw, deferred = defer_to_defaults(raw, task.questions, goal, data_columns(task.data))
        # An answer to a pending question on a key outside the answers model is kept as a note.
        given = parse_answers(raw, source="answers", as_note={str(q.get("key")) for q in task.questions})
        opts = RunOptions(resume=task.id, answers=given, backend=task.backend, persona=task.persona,
                          sessions_dir=self.sessions_dir, on_questions=task.on_questions, max_trials=task.max_trials,
                          roots=[str(r) for r in self.roots])
        run = Run(opts)
        run.state.assumptions.extend(deferred)
        with task.changed:
            for step in task.steps:
                if step["name"] == "ask_user" and step["ok"] is None:
                    step.update(ok=True, answered=sorted(raw))
            task.status, task.phase, task.questions, task.error, task.result = "running", "resuming", [], None, None
            task.finished = None
            task.cancel_requested.clear()
            task.version += 1
            task.changed.notify_all()
        self._launch(task, run)
        return task

    def _launch(self, task: Task, run: Any) -> None:
        task.run = run
        task.thread = threading.Thread(target=self._drive, args=(task, run), name=f"dsagent-task-{task.id}", daemon=True)
        task.thread.start()

    def _drive(self, task: Task, run: Any) -> None:
        from dsagent.runtime import build_result

        events = run.events()
        crashed: str | None = None
        try:
            for event in events:
                if task.cancel_requested.is_set():
                    break
                task.on_event(event)
                if task.cancel_requested.is_set():
                    break
        except Exception as exc:  # a crash of the run must reach the client as a failed task
            crashed = f"{type(exc).__name__}: {exc}"[:500]
        finally:
            events.close()
        if task.cancel_requested.is_set():
            run.session.update(status="cancelled", error="cancelled by the client")
            result = build_result(run.session, "failed", time.time() - run.started, "cancelled by the client",
                                  assumptions=run.state.assumptions)
            status = "cancelled"
        elif crashed:
            run.session.update(status="failed", error=crashed)
            result = build_result(run.session, "failed", time.time() - run.started, crashed, assumptions=run.state.assumptions)
            status = "failed"
        else:
            result = run.result()
            status = result.status
        with task.changed:
            task.result = result
            task.status = status
            task.error = result.error
            task.questions = [q.model_dump() for q in result.questions] if status == "needs_input" else []
            task.phase = {"needs_input": "waiting for answers"}.get(status, status)
            task.finished = time.time()
            task.run = None
            task.version += 1
            task.changed.notify_all()

    # -- looking up ---------------------------------------------------------------------------
    def get(self, task_id: str) -> Task:
        """A task of this process, or one found on disk (a session started by an earlier server)."""
        check_session_id(task_id)
        with self._lock:
            task = self.tasks.get(task_id)
        if task is not None:
            return task
        from dsagent.runtime import build_result
        from dsagent.session import Session

        directory = session_dir(self.sessions_dir, task_id)
        session = Session.load(self.sessions_dir, directory.name)
        meta = session.meta
        status = meta.get("status") or "failed"
        if status not in ("running", "interrupted", "needs_input", "completed", "failed", "cancelled"):
            raise BadInput(f"session {task_id} is not a task (status {status!r}); start one with start_ml_task")
        if status in ("running", "interrupted"):
            status = "failed"  # its process is gone
            meta_error = meta.get("error") or "the run was interrupted (its server stopped); start a new task"
        else:
            meta_error = meta.get("error")
        task = Task(id=session.id, data=meta.get("data_path"), backend=meta.get("backend") or self.backend,
                    on_questions="ask", max_trials=None, persona=meta.get("persona") or self.persona,
                    time_budget=meta.get("time_budget"), status=status, phase=status, finished=time.time(),
                    error=meta_error)
        task.started = task.finished - float(meta.get("elapsed_s") or 0)
        if status == "needs_input":
            task.questions = _pending_questions(session.transcript_path)
        task.result = build_result(session, status if status in ("completed", "needs_input") else "failed",
                                   float(meta.get("elapsed_s") or 0), task.error, task.questions)
        with self._lock:
            self.tasks.setdefault(task.id, task)
            return self.tasks[task.id]

    def status(self, task_id: str) -> dict[str, Any]:
        return self.get(task_id).snapshot()

    def result(self, task_id: str):
        task = self.get(task_id)
        if task.status == "running" or task.result is None:
            raise BadInput(f"task {task_id} is still running ({task.phase}); poll task_status until it is done")
        return task.result

    def cancel(self, task_id: str) -> dict[str, Any]:
        task = self.get(task_id)
        if task.status == "running":
            task.cancel_requested.set()
            run = task.run
            if run is not None:
                _kill_worker(run.runner.worker)
            task.wait(timeout=30)
        elif task.status == "needs_input":
            from dsagent.session import Session

            Session.load(self.sessions_dir, task.id).update(status="cancelled", error="cancelled by the client")
            with task.changed:
                task.status, task.phase, task.error, task.questions = "cancelled", "cancelled", "cancelled by the client", []
                if task.result is not None:
                    task.result = task.result.model_copy(update={"status": "failed", "error": "cancelled by the client",
                                                                 "questions": []})
                task.version += 1
                task.changed.notify_all()
        return task.snapshot()

    def list(self) -> list[dict[str, Any]]:
        with self._lock:
            tasks = list(self.tasks.values())
        return [{"id": t.id, "status": t.status, "phase": t.phase, "data": t.data} for t in tasks]

    def shutdown(self, timeout: float = 10.0) -> None:
        """Cancel every running task (their workers would otherwise outlive the server)."""
        with self._lock:
            running = [t for t in self.tasks.values() if t.status == "running"]
        for task in running:
            task.cancel_requested.set()
            if task.run is not None:
                _kill_worker(task.run.runner.worker)
        for task in running:
            task.wait(timeout=timeout)


# ----------------------------------------------------------------------- direct tool calls


class DirectSession:
    """One session for a client's direct tool calls: a registered data file, a sandboxed worker,
    and the same validation, records and transcript as calls made by the loop."""

    def __init__(self, sessions_dir: Path, data: Path | None, *, roots: list[Path], answers: Answers | None = None,
                 time_budget: float | None = None, session_id: str | None = None, seed: int = 0):
        from dsagent.loop import LoopState, ToolRunner
        from dsagent.session import Session
        from dsagent.tools.registry import agent_tools

        answers = answers or Answers()
        time_budget = resolve_time_budget(time_budget, answers)
        sessions_dir = Path(os.path.abspath(sessions_dir))
        if session_id:
            self.session = Session.load(sessions_dir, session_dir(sessions_dir, session_id).name)
            path = self.session.data_path
            if path is not None and roots and not any(Path(os.path.realpath(path)) == r or r in Path(os.path.realpath(path)).parents
                                                      for r in roots):
                raise BadInput(f"session {session_id} reads data outside the allowed roots; it cannot be used here")
            saved = Answers.model_validate(self.session.meta.get("answers") or {})
            answers = saved.merged(answers)
        else:
            if data is None:
                raise BadInput("give a data path (or the session_id of an existing session)")
            sessions_dir.mkdir(parents=True, exist_ok=True)
            self.session = Session.create(sessions_dir, data_path=data, persona="mcp-client", backend="mcp-client",
                                          seed=seed, extra={"time_budget": time_budget, "origin": "mcp direct calls"})
        from dsagent.runtime import cluster_settings, start_cluster, worker_limits

        cluster, storage = cluster_settings(answers, roots=roots)
        self.session.update(answers=answers.given(), status="direct")
        self.time_budget = float(time_budget)
        self.tools = {n: s for n, s in agent_tools().items() if not s.runs_in_loop}
        self.cluster = start_cluster(cluster, storage, self.session)  # answers' cluster: tune_model uses it
        addresses = self.cluster.addresses() if self.cluster else []
        self.runner = ToolRunner(self.session, self.tools, worker_limits(None, cluster, storage, addresses),
                                 roots=[str(r) for r in roots], cluster=self.cluster.address if self.cluster else None,
                                 tuning_storage=storage)
        if self.session.data_path is not None:
            self.runner.worker.set_paths(data_paths=[self.session.data_path])
        self.state = LoopState(session=self.session, deadline=time.time() + self.time_budget,
                               time_budget=self.time_budget, answers=dict(answers.given()))
        self._lock = threading.Lock()
        self._calls = 0

    @property
    def id(self) -> str:
        return self.session.id

    def describe(self) -> dict[str, Any]:
        return {"session_id": self.id, "session_dir": str(self.session.dir),
                "data": str(self.session.data_path) if self.session.data_path else None,
                "answers": self.state.answers, "time_budget_s": self.time_budget,
                "tools": sorted(self.tools)}

    def call(self, name: str, arguments: dict[str, Any] | None,
             on_progress: Callable[[str, float | None], None] | None = None) -> dict[str, Any]:
        """Run one tool; returns the loop's result dict (ok, content, files, record, error...)."""
        from dsagent.asking import AssumeAsker
        from dsagent.loop import ToolCall, execute_call

        with self._lock:  # one worker per session: calls from one client run one at a time
            self._calls += 1
            self.state.steps += 1
            self.state.deadline = time.time() + self.time_budget  # each direct call gets the whole budget
            call = ToolCall(f"mcp-{self._calls}", name, dict(arguments or {}))
            gen = execute_call(call, self.tools, self.state, self.runner, AssumeAsker(), 30.0)
            while True:
                try:
                    event = next(gen)
                except StopIteration as stop:
                    result = stop.value
                    break
                if event.kind == "tool_progress" and on_progress is not None:
                    on_progress(str(event.data.get("message", "")), event.data.get("fraction"))
            # Its own event type: a direct session is not a conversation to resume.
            self.session.append({"type": "direct_call", "name": name, "arguments": call.arguments,
                                 "result": {k: v for k, v in result.items() if k != "content"}})
            return result

    def artifact_files(self, result: dict[str, Any]) -> dict[str, str]:
        return {label: str(self.session.artifacts_dir / rel) for label, rel in (result.get("files") or {}).items()}

    def close(self) -> None:
        self.runner.close()
        if self.cluster is not None:
            self.cluster.close()
            self.cluster = None


def result_json(result: Any) -> str:
    return result.model_dump_json() if hasattr(result, "model_dump_json") else json.dumps(result, default=str)
