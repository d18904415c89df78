"""The MCP surface: `dsagent mcp` (stdio, or streamable HTTP on 127.0.0.1 with --http PORT).

The only module that imports `mcp`. What a client sees:

- every registry tool except ask_user (the parent is the one asking), with the name and input
  schema of the Anthropic tool list: both come from the same ToolSpec, nothing is retyped here.
  Direct calls share one dsagent session per client: `load_data(path)` registers the data file
  (it must lie under a --root) and starts that session; the calls then run through the same
  sandboxed worker, validation, records and transcript as the loop's calls. Over stdio a client
  is a process; over HTTP, a client is an Mcp-Session-Id (stateless requests share one session).
- task tools for whole runs that outlast a request: start_ml_task, task_status,
  answer_questions, task_result, cancel_task, list_tasks (agent/tasks.py). Each task is its own
  session; its id is the session id.
- model tools on a finished task (agent/lifecycle.py, shared with the Python API): predict,
  explain, monitor, retrain.
- resources for a session's artifacts: dsagent://sessions/{id}/report, model-card, notebook,
  monitoring, monitoring-plan, leaderboard, evaluation, profile, result.

Confinement: data paths from the client resolve (symlinks and `..` included) under the --root
directories or are refused; everything the server writes goes into its sessions directory.
"""

from __future__ import annotations

import json
import os
import sys
import threading
import time
from pathlib import Path
from typing import Any, Literal

import anyio
import anyio.from_thread
import anyio.to_thread
from mcp.server import MCPServer
from mcp.server.mcpserver import Context
from mcp.server.mcpserver.exceptions import ResourceError, UnexpectedToolError
from mcp_types import CallToolResult, TextContent, ToolAnnotations
from mcp_types import Resource as MCPResource
from mcp_types import Tool as MCPTool
from pydantic import Field

from dsagent.answers import ANSWER_KEYS, DEFAULT_TIME_BUDGET, BadInput, parse_answers
from dsagent.tasks import DirectSession, TaskManager, confine_data_path, resolve_roots, session_dir
from dsagent.tools import paths
from dsagent.tools.task_types import SUPERVISED_STEPS

SERVER_NAME = "dsagent"

# Resource name -> (file inside artifacts/, MIME type, what it is). "result" is built, not read.
ARTIFACTS: dict[str, tuple[str, str, str]] = {
    "report": (paths.REPORT, "text/markdown", "the report: data, method, results, assumptions, limits"),
    "model-card": (paths.MODEL_CARD, "text/markdown", "the model card"),
    "notebook": (paths.NOTEBOOK, "application/x-ipynb+json", "the notebook that re-creates the model"),
    "monitoring": (paths.MONITORING_MD, "text/markdown", "the monitoring plan, for people"),
    "monitoring-plan": (paths.MONITORING, "application/json", "the monitoring plan `dsagent monitor` applies"),
    "leaderboard": (paths.LEADERBOARD, "application/json", "cross-validated candidates, best first"),
    "evaluation": (paths.EVALUATION, "application/json", "the held-out test evaluation"),
    "profile": (paths.PROFILE, "application/json", "the data profile"),
}

INSTRUCTIONS = """\
dsagent is an ML assistant for tabular data (CSV, Parquet, Excel, JSON lines).
Whole job: start_ml_task(data, goal, target?) returns a task id at once; poll task_status(id)
(it may report questions: answer them with answer_questions(id, answers)), then read
task_result(id) and the resources dsagent://sessions/{id}/report (model-card, notebook, monitoring,
leaderboard...). Step by step: load_data(path) first, then {steps}.
A finished task's model: predict(id, data), explain(id, data) (per-row contributions),
monitor(id, data) (drift and performance), retrain(id, new_data) (promoted only when better).
Data paths must lie under the server's --root directories."""
# The workflow is the task types' (dsagent.tools.task_types); ask_user is the parent's job here.
INSTRUCTIONS = INSTRUCTIONS.replace("{steps}", ", ".join(s for s in SUPERVISED_STEPS if s != "ask_user"))

_GUIDE_NO_DATA = ("no data registered for direct tool calls: call load_data(path) with a file under the server's "
                  "roots first (or use start_ml_task for a whole run)")


def _text(text: str, error: bool = False) -> CallToolResult:
    return CallToolResult(content=[TextContent(type="text", text=text)], is_error=error)


def _client_key(context: Context | None) -> str:
    """Which client a direct call comes from: its Mcp-Session-Id over HTTP; over stdio the
    server serves one client, so one key is enough."""
    if context is None:
        return "default"
    try:
        headers = context.headers or {}
    except (ValueError, AttributeError):
        return "default"
    return str(headers.get("mcp-session-id") or "default")


class DsagentApp:
    """State of one server: roots, sessions directory, tasks and the direct-call sessions."""

    def __init__(self, roots: list[str | Path] | None = None, sessions_dir: Path | None = None, *,
                 backend: str = "auto", persona: str = "data-scientist"):
        from dsagent.session import default_sessions_dir

        self.roots = resolve_roots(roots)
        self.sessions_dir = Path(os.path.abspath(sessions_dir or default_sessions_dir()))
        self.tasks = TaskManager(self.sessions_dir, self.roots, backend=backend, persona=persona)
        self.direct: dict[str, DirectSession] = {}
        # Importing the tool modules (pandas, scikit-learn, xgboost...) takes seconds: do it in the
        # background so the client's handshake is answered at once; tool calls wait for it.
        self._specs: dict[str, Any] | None = None
        self._loader = threading.Thread(target=self._load_specs, name="dsagent-load-tools", daemon=True)
        self._loader.start()

    def _load_specs(self) -> None:
        from dsagent.tools.registry import agent_tools

        # One declaration: the exposed tools are the registry's ToolSpecs, minus the loop-run ones.
        self._specs = {name: spec for name, spec in agent_tools().items() if not spec.runs_in_loop}

    @property
    def specs(self) -> dict[str, Any]:
        if self._specs is None:
            self._loader.join()
            if self._specs is None:  # the import failed in the thread: raise its error here
                self._load_specs()
        return self._specs  # type: ignore[return-value]

    async def specs_ready(self) -> dict[str, Any]:
        if self._specs is None:
            return await anyio.to_thread.run_sync(lambda: self.specs)
        return self._specs

    # -- direct calls -----------------------------------------------------------------------------
    def load_data(self, key: str, path: str | None, *, target: str | None, answers: dict[str, Any] | None,
                  time_budget: float | None, session_id: str | None) -> dict[str, Any]:
        given = parse_answers(dict(answers or {}))
        if target:
            given = given.merged({"target": target})
        data = confine_data_path(path, self.roots) if path else None
        running = self.tasks.tasks.get(session_id) if session_id else None
        if running is not None and running.status == "running":
            raise BadInput(f"task {session_id} is still running; wait for it (task_status) before calling tools in it")
        session = DirectSession(self.sessions_dir, data, roots=self.roots, answers=given, time_budget=time_budget,
                                session_id=session_id)
        old = self.direct.pop(key, None)
        if old is not None:
            old.close()
        self.direct[key] = session
        return session.describe() | {"next": "call profile_data, then define_task(target=...), train_models, ..."}

    def known_sessions(self) -> list[str]:
        ids = [t["id"] for t in self.tasks.list()] + [d.id for d in self.direct.values()]
        return list(dict.fromkeys(ids))

    # -- resources --------------------------------------------------------------------------------
    def read_artifact(self, session_id: str, name: str) -> str:
        try:
            if name == "result":
                return self.tasks.result(session_id).model_dump_json(indent=2)
            d = session_dir(self.sessions_dir, session_id)
        except BadInput as exc:
            raise ResourceError(str(exc)) from None
        rel = ARTIFACTS[name][0]
        artifacts = Path(os.path.realpath(d / "artifacts"))
        path = Path(os.path.realpath(artifacts / rel))
        if artifacts not in path.parents:  # a symlink planted in artifacts/ must not lead outside
            raise ResourceError(f"{name} of session {session_id} resolves outside its artifacts directory")
        if not path.is_file():
            raise ResourceError(f"session {session_id} has no {name} yet ({rel}); wait for the task to finish")
        return path.read_text(encoding="utf-8", errors="replace")

    def close(self) -> None:
        self.tasks.shutdown()
        for session in list(self.direct.values()):
            session.close()
        self.direct.clear()


class DsagentMCPServer(MCPServer):
    """MCPServer whose tool list starts with the registry's tools, declared from their ToolSpecs."""

    def __init__(self, app: DsagentApp, **kwargs: Any):
        super().__init__(**kwargs)
        self.app = app

    async def list_tools(self) -> list[MCPTool]:
        specs = await self.app.specs_ready()
        own = [MCPTool(name=spec.name, description=spec.description, input_schema=spec.input_schema)
               for spec in specs.values()]
        return own + await super().list_tools()

    def _tool_input_schema(self, name: str) -> dict[str, Any] | None:
        spec = self.app.specs.get(name)
        return spec.input_schema if spec is not None else super()._tool_input_schema(name)

    async def call_tool(self, name: str, arguments: dict[str, Any], context: Context | None = None):
        if name in await self.app.specs_ready():
            return await self._call_registry_tool(name, arguments, context)
        try:
            return await super().call_tool(name, arguments, context)
        except UnexpectedToolError as exc:
            from dsagent.tools.registry import ToolError

            # bad input (a bad file, an unknown version, data without labels) is the caller's to fix: say what
            if isinstance(exc.__cause__, (BadInput, ToolError)):
                return _text(str(exc.__cause__), error=True)
            raise

    async def _call_registry_tool(self, name: str, arguments: dict[str, Any], context: Context | None):
        session = self.app.direct.get(_client_key(context))
        if session is None:
            return _text(_GUIDE_NO_DATA, error=True)
        reporter = _ProgressReporter(context)
        result = await anyio.to_thread.run_sync(lambda: session.call(name, arguments, reporter.from_thread))
        if not result.get("ok"):
            return _text(str(result.get("content")), error=True)
        content = result.get("content", "")
        try:
            summary: Any = json.loads(content)
        except (TypeError, json.JSONDecodeError):
            summary = content
        payload = {"session_id": session.id, "summary": summary, "files": session.artifact_files(result),
                   "seconds": result.get("seconds")}
        return _text(json.dumps(payload, default=str))

    async def list_resources(self) -> list[MCPResource]:
        found = await super().list_resources()
        for sid in self.app.known_sessions():
            try:
                art = session_dir(self.app.sessions_dir, sid) / "artifacts"
            except BadInput:
                continue
            for name, (rel, mime, what) in ARTIFACTS.items():
                if (art / rel).is_file():
                    found.append(MCPResource(uri=f"dsagent://sessions/{sid}/{name}", name=f"{sid}/{name}",
                                             description=what, mime_type=mime))
        return found


class _ProgressReporter:
    """Tool progress from the worker thread -> MCP progress notifications (a no-op unless the
    client sent a progressToken with its request)."""

    def __init__(self, context: Context | None):
        self.context = context
        self.count = 0.0

    def from_thread(self, message: str, fraction: float | None) -> None:
        if self.context is None:
            return
        # Progress must increase: use the tool's fraction when it gives one, else count messages.
        value = max(self.count + 0.001, float(fraction) * 100 if fraction is not None else self.count + 1)
        self.count = value
        total = 100.0 if fraction is not None else None
        try:
            anyio.from_thread.run(self.context.report_progress, value, total, message)
        except Exception:  # a client that went away must not fail the tool call
            pass


def build_server(roots: list[str | Path] | None = None, sessions_dir: Path | None = None, *,
                 backend: str = "auto", persona: str = "data-scientist", debug: bool = False) -> DsagentMCPServer:
    app = DsagentApp(roots, sessions_dir, backend=backend, persona=persona)
    server = DsagentMCPServer(app, name=SERVER_NAME, instructions=INSTRUCTIONS, debug=debug,
                              log_level="DEBUG" if debug else "WARNING")
    _add_task_tools(server, app)
    _add_model_tools(server, app)
    _add_resources(server, app)
    return server


def _add_task_tools(server: DsagentMCPServer, app: DsagentApp) -> None:
    answers_doc = "answers to clarifying questions, keys: " + ", ".join(ANSWER_KEYS)
    tasks = app.tasks

    @server.tool(annotations=ToolAnnotations(read_only_hint=False, open_world_hint=False))
    async def load_data(
        ctx: Context,
        path: str | None = Field(None, description="data file (CSV/TSV/Parquet/Excel/JSON lines) under the server's "
                                                   "roots; relative paths are taken from the first root"),
        target: str | None = Field(None, description="column to predict, if known"),
        answers: dict[str, Any] | None = Field(None, description=answers_doc),
        time_budget: float | None = Field(None, gt=0, description="seconds each direct tool call may spend (default: "
                                                                  f"answers.time_budget, else {DEFAULT_TIME_BUDGET:g})"),
        session_id: str | None = Field(None, description="continue in an existing session (e.g. a finished task's) "
                                                         "instead of loading a new file"),
    ) -> str:
        """Register a data file for direct tool calls (profile_data, define_task, train_models, ...).

        Starts the dsagent session those calls share; calling it again starts a new one. Returns
        the session id and directory. For a whole job in one go, use start_ml_task instead."""
        if not path and not session_id:
            raise BadInput("give the data path (or the session_id of an existing session)")
        info = await anyio.to_thread.run_sync(lambda: app.load_data(
            _client_key(ctx), path, target=target, answers=answers, time_budget=time_budget, session_id=session_id))
        return json.dumps(info, default=str)

    @server.tool(annotations=ToolAnnotations(read_only_hint=False, open_world_hint=False))
    async def start_ml_task(
        data: str = Field(description="data file under the server's roots (relative paths: from the first root)"),
        goal: str = Field(description="what the model is for, in words (the decision it supports)"),
        target: str | None = Field(None, description="column to predict; if omitted it is asked"),
        time_budget: float | None = Field(None, gt=0, description="wall-clock seconds for the whole run (default: "
                                                                  f"answers.time_budget, else {DEFAULT_TIME_BUDGET:g})"),
        answers: dict[str, Any] | None = Field(None, description=answers_doc),
        on_questions: Literal["ask", "assume"] = Field(
            "ask", description="ask: pause with status needs_input when a question is not answered; "
                               "assume: proceed on stated defaults and record each as an assumption"),
        backend: Literal["auto", "offline", "claude"] = Field(
            "auto", description="auto: Claude when the server has ANTHROPIC_API_KEY, else the offline autopilot"),
        max_trials: int | None = Field(None, gt=0, description="cap on tuning trials (deterministic for a fixed cap)"),
    ) -> str:
        """Start a whole ML task in the background: profile, clarify, frame, train, tune, evaluate,
        explain, report, monitoring plan and notebook. Returns the task id at once; poll task_status."""
        task = await anyio.to_thread.run_sync(lambda: tasks.start(
            data, goal=goal, target=target, time_budget=time_budget, answers=answers, backend=backend,
            on_questions=on_questions, max_trials=max_trials))
        return json.dumps({"task_id": task.id, "status": task.status, "session_dir": str(app.sessions_dir / task.id),
                           "next": "poll task_status(task_id)"})

    @server.tool(annotations=ToolAnnotations(read_only_hint=True, open_world_hint=False))
    async def task_status(
        ctx: Context,
        task_id: str = Field(description="the id start_ml_task returned"),
        wait_s: float = Field(0, ge=0, le=300, description="wait up to this many seconds for the task to finish or "
                                                           "need input, sending progress notifications meanwhile"),
    ) -> str:
        """Phase, progress (0-1), elapsed seconds, steps done, and pending questions of a task."""
        task = tasks.get(task_id)
        deadline = time.monotonic() + wait_s
        seen = -1
        while task.status == "running" and time.monotonic() < deadline:
            if task.version != seen:
                seen = task.version
                try:
                    await ctx.report_progress(task.progress() * 100, 100, f"{task.phase}: {task.message}"[:200])
                except Exception:
                    pass
            await anyio.sleep(0.25)
        return json.dumps(task.snapshot(), default=str)

    @server.tool(annotations=ToolAnnotations(read_only_hint=False, open_world_hint=False))
    async def answer_questions(
        task_id: str = Field(description="a task with status needs_input"),
        answers: dict[str, Any] = Field(description=answers_doc + "; 'use your judgement' accepts the stated default"),
    ) -> str:
        """Answer a paused task's questions and resume it (the same session continues)."""
        task = await anyio.to_thread.run_sync(lambda: tasks.answer(task_id, answers))
        return json.dumps({"task_id": task.id, "status": task.status, "next": "poll task_status(task_id)"})

    @server.tool(annotations=ToolAnnotations(read_only_hint=True, open_world_hint=False))
    async def task_result(task_id: str = Field(description="a finished task's id")) -> str:
        """The RunResult of a finished task (or one paused with needs_input): scores with confidence
        interval, baseline, chosen model, leaderboard, artifact paths, assumptions, recommendations."""
        return tasks.result(task_id).model_dump_json()

    @server.tool(annotations=ToolAnnotations(read_only_hint=False, destructive_hint=True, open_world_hint=False))
    async def cancel_task(task_id: str = Field(description="the task to stop")) -> str:
        """Stop a running task: kills its sandboxed worker and ends its loop. What it saved stays."""
        snap = await anyio.to_thread.run_sync(lambda: tasks.cancel(task_id))
        return json.dumps(snap, default=str)

    @server.tool(annotations=ToolAnnotations(read_only_hint=True, open_world_hint=False))
    async def ask_about(
        task_id: str = Field(description="a finished task's id (its session id)"),
        question: str = Field(description="e.g. what drives the predictions? how good is it? why this model? "
                                          "where is it weak? how do I use it? what is <column>?"),
    ) -> str:
        """Answer a question about a finished task from its saved artifacts (no model needed): intent,
        answer with the numbers, plot paths, and for a follow-up (another metric, more time, drop a
        column) the answers a new start_ml_task would take. Unmatched questions get the menu."""
        from dsagent.about import ask_about as answer

        return json.dumps(answer(session_dir(app.sessions_dir, task_id), question).to_dict(), default=str)

    @server.tool(annotations=ToolAnnotations(read_only_hint=True, open_world_hint=False))
    async def list_tasks() -> str:
        """Tasks started by this server: id, status, phase, data file."""
        return json.dumps(tasks.list())


def _add_model_tools(server: DsagentMCPServer, app: DsagentApp) -> None:
    """predict, explain, monitor, retrain on a finished session (thin over dsagent.lifecycle)."""
    from dsagent import lifecycle

    def place(task_id: str, data: str | None) -> tuple[Path, Path | None]:
        return session_dir(app.sessions_dir, task_id), confine_data_path(data, app.roots) if data else None

    task_doc = "a finished task's id (its session id)"
    data_doc = "data file under the server's roots (relative paths: from the first root)"
    version_doc = "a model version (v1, v2, ...; default the active one)"

    @server.tool(annotations=ToolAnnotations(read_only_hint=True, open_world_hint=False))
    async def predict(task_id: str = Field(description=task_doc), data: str = Field(description=data_doc),
                      version: str | None = Field(None, description=version_doc)) -> str:
        """Predict with a finished task's model: one row per input row, in order (`prediction`, and
        `proba_<class>` for classifiers), with the same schema checks and warnings as `dsagent predict`."""
        session, path = place(task_id, data)
        return json.dumps(await anyio.to_thread.run_sync(lambda: lifecycle.predict(session, path, version)), default=str)

    @server.tool(annotations=ToolAnnotations(read_only_hint=True, open_world_hint=False))
    async def explain(task_id: str = Field(description=task_doc), data: str = Field(description=data_doc),
                      version: str | None = Field(None, description=version_doc)) -> str:
        """Per-row explanations: each feature's contribution to each row's prediction, and the method
        (exact TreeSHAP for XGBoost, exact for linear models, sampled Shapley values otherwise)."""
        session, path = place(task_id, data)
        return json.dumps(await anyio.to_thread.run_sync(lambda: lifecycle.explain(session, path, version)), default=str)

    @server.tool(annotations=ToolAnnotations(read_only_hint=True, open_world_hint=False))
    async def monitor(task_id: str = Field(description=task_doc),
                      data: str | None = Field(None, description=data_doc + "; or from_log"),
                      from_log: bool = Field(False, description="check the rows `dsagent serve` scored instead"),
                      since: str | None = Field(None, description="with from_log: rows served at or after (ISO, UTC)")) -> str:
        """Drift, data quality and (when labels are present) performance of new data against the
        training reference; verdict ok / investigate / retrain."""
        session, path = place(task_id, data)
        return json.dumps(await anyio.to_thread.run_sync(
            lambda: lifecycle.monitor(session, path, from_log=from_log, since=since)), default=str)

    @server.tool(annotations=ToolAnnotations(read_only_hint=False, open_world_hint=False))
    async def retrain(task_id: str = Field(description=task_doc),
                      data: str = Field(description=data_doc + ", with the target column"),
                      time_budget: float | None = Field(None, gt=0, description="seconds for the comparison")) -> str:
        """Refit the task's model (same family and tuned parameters) on new labelled data, compare it
        with the active version on held-out new rows (paired bootstrap) and make it active only when
        it is better beyond the 95% CI. Both versions stay."""
        session, path = place(task_id, data)
        return json.dumps(await anyio.to_thread.run_sync(
            lambda: lifecycle.retrain(session, path, time_budget=time_budget)), default=str)


def _add_resources(server: DsagentMCPServer, app: DsagentApp) -> None:
    def reader(name: str):
        def read(session_id: str) -> str:
            return app.read_artifact(session_id, name)
        return read

    for name, (_rel, mime, what) in {**ARTIFACTS, "result": ("", "application/json", "the RunResult of a task")}.items():
        server.resource(f"dsagent://sessions/{{session_id}}/{name}", name=name, description=what,
                        mime_type=mime)(reader(name))


def serve(args: Any) -> int:
    """`dsagent mcp`: stdio by default, streamable HTTP on 127.0.0.1:PORT with --http PORT."""
    roots = [Path(r) for r in (getattr(args, "root", None) or [Path.cwd()])]
    if any(Path(os.path.realpath(r)) == Path("/") for r in roots):
        print("warning: a root of / lets the client read any file; pass --root DIR", file=sys.stderr)
    server = build_server(roots, getattr(args, "sessions_dir", None), debug=bool(getattr(args, "debug", False)))
    try:
        if getattr(args, "http", None):
            print(f"dsagent MCP server on http://127.0.0.1:{args.http}/mcp (roots: "
                  f"{', '.join(map(str, server.app.roots))}; sessions: {server.app.sessions_dir})", file=sys.stderr)
            server.run("streamable-http", host="127.0.0.1", port=int(args.http))
        else:
            server.run("stdio")
    except KeyboardInterrupt:
        return 130
    finally:
        server.app.close()
    return 0


__all__ = ["build_server", "serve", "DsagentApp", "DsagentMCPServer", "ARTIFACTS"]
