"""The Python API: `run_task`, `Assistant` and `as_anthropic_tool` (re-exported by `agent`).

    from dsagent import run_task
    result = run_task("predict the species for the field guide", "penguins.csv", target="species")

A run returns a RunResult whatever happens: `completed`, `failed` (with `error`), or
`needs_input` with the questions to answer; answer them with `Assistant().resume(session_id,
answers)`. Bad arguments raise `dsagent.answers.BadInput` (a one-line message saying what to fix).

`data` is a file path or a pandas DataFrame. A DataFrame is written once, as Parquet (CSV when
its column names cannot be Parquet's), under `<sessions_dir>/inputs/`, named by its content hash,
so the session's notebook can re-read and verify it. pandas is never imported here: the frame
is written through its own methods.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any, Callable, Iterator

from dsagent.answers import DEFAULT_TIME_BUDGET, Answers, BadInput, parse_answers
from dsagent.loop import Event
from dsagent.result import RunResult

INPUTS_DIR = "inputs"


def _answers(answers: dict[str, Any] | Answers | None) -> Answers:
    if answers is None:
        return Answers()
    if isinstance(answers, Answers):
        return answers
    if not isinstance(answers, dict):
        raise BadInput("answers must be a dict of answer keys (target, metric, cost_fp, ...) or an Answers object")
    return parse_answers(answers)


def _is_dataframe(data: Any) -> bool:
    return type(data).__module__.split(".")[0] == "pandas" and hasattr(data, "to_parquet") and hasattr(data, "columns")


def write_frame(frame: Any, directory: Path, name: str = "dataframe") -> Path:
    """Write a DataFrame under `directory`, content-addressed; the same frame gives the same file."""
    directory.mkdir(parents=True, exist_ok=True)
    if any(n is not None for n in getattr(frame.index, "names", [None])):
        frame = frame.reset_index()  # a named index is data (an id, a date): keep it as a column
    tmp = directory / f".{name}.{os.getpid()}.tmp"
    try:
        if all(isinstance(c, str) for c in frame.columns):
            frame.to_parquet(tmp, index=False)
            suffix = ".parquet"
        else:
            raise ValueError("non-string column names")
    except (ValueError, TypeError, ImportError):  # Parquet wants string column names and pyarrow
        frame.to_csv(tmp, index=False)
        suffix = ".csv"
    digest = hashlib.sha256(tmp.read_bytes()).hexdigest()[:16]
    final = directory / f"{name}-{digest}{suffix}"
    if final.exists():
        tmp.unlink()
    else:
        os.replace(tmp, final)
    return final


def _data_path(data: Any, sessions_dir: Path) -> Path:
    if _is_dataframe(data):
        if len(data) == 0:
            raise BadInput("the DataFrame has no rows")
        return write_frame(data, sessions_dir / INPUTS_DIR)
    if isinstance(data, (str, os.PathLike)):
        path = Path(data).expanduser()
        if not path.is_file():
            raise BadInput(f"data file {path} not found; pass an existing CSV/Parquet/Excel/JSON-lines file or a DataFrame")
        return path
    raise BadInput(f"data must be a file path or a pandas DataFrame, not {type(data).__name__}")


class Assistant:
    """dsagent as an object: runs, streams and resumes tasks with one set of defaults.

        assistant = Assistant(backend="offline", sessions_dir="runs")
        for event in assistant.events("predict churn", "customers.csv", target="churned"):
            print(event.kind, event.data)
        result = assistant.result            # the RunResult of the last run
        if result.status == "needs_input":
            result = assistant.resume(result.session_id, {"cost_fp": 1, "cost_fn": 5})
    """

    def __init__(self, *, backend: str = "auto", persona: str = "data-scientist", on_questions: str = "ask",
                 time_budget: float | None = None, sessions_dir: str | Path | None = None,
                 max_trials: int | None = None, model: str | None = None, seed: int = 0,
                 roots: list[str | Path] | None = None):
        from dsagent.session import default_sessions_dir

        if on_questions not in ("ask", "assume"):
            raise BadInput(f"on_questions must be 'ask' or 'assume', not {on_questions!r}")
        self.backend = backend
        self.persona = persona
        self.on_questions = on_questions
        self.time_budget = time_budget
        # Absolute: tools run with the artifacts directory as their cwd, so a relative path would
        # land their files in a nested copy of it.
        self.sessions_dir = Path(os.path.abspath(Path(sessions_dir).expanduser() if sessions_dir else default_sessions_dir()))
        self.max_trials = max_trials
        self.model = model
        self.seed = seed
        self.roots = [str(r) for r in roots] if roots else []
        self.result: RunResult | None = None

    def _options(self, **overrides: Any):
        from dsagent.runtime import RunOptions

        opts = RunOptions(backend=self.backend, persona=self.persona, on_questions=self.on_questions,
                          time_budget=self.time_budget, sessions_dir=self.sessions_dir, max_trials=self.max_trials,
                          model=self.model, seed=self.seed, roots=list(self.roots))
        for key, value in overrides.items():
            if value is not None:
                setattr(opts, key, value)
        return opts

    def _new_run(self, goal: str | None, data: Any, target: str | None, answers: Any, **overrides: Any):
        from dsagent.runtime import Run

        self.sessions_dir.mkdir(parents=True, exist_ok=True)
        opts = self._options(data=_data_path(data, self.sessions_dir), goal=goal, target=target,
                             answers=_answers(answers), **overrides)
        return Run(opts)

    def _drive(self, run: Any) -> Iterator[Event]:
        for event in run.events():
            if event.kind == "done":
                self.result = run.result()
                event = Event("done", {**event.data, "result": self.result})
            yield event

    def events(self, goal: str | None, data: Any, target: str | None = None, *, answers: Any = None,
               **overrides: Any) -> Iterator[Event]:
        """Stream a run: dsagent.loop.Event objects (text_delta, text, tool_start, tool_progress,
        tool_end, needs_input, notice, done). The `done` event carries the RunResult under
        data["result"]; it is also left in `self.result`. Overrides: time_budget, backend,
        on_questions, max_trials, metric, persona, model."""
        return self._drive(self._new_run(goal, data, target, answers, **overrides))

    def run(self, goal: str | None, data: Any, target: str | None = None, *, answers: Any = None,
            **overrides: Any) -> RunResult:
        for _ in self.events(goal, data, target, answers=answers, **overrides):
            pass
        assert self.result is not None
        return self.result

    def resume_events(self, session_id: str, answers: Any = None, **overrides: Any) -> Iterator[Event]:
        from dsagent.runtime import Run

        opts = self._options(resume=session_id, answers=_answers(answers), **overrides)
        if "time_budget" not in overrides:
            opts.time_budget = None  # the session's own budget
        return self._drive(Run(opts))

    def resume(self, session_id: str, answers: Any = None, **overrides: Any) -> RunResult:
        """Continue a session (e.g. one that returned needs_input) with these answers."""
        for _ in self.resume_events(session_id, answers, **overrides):
            pass
        assert self.result is not None
        return self.result


def run_task(goal: str | None, data: Any, target: str | None = None, *, answers: dict[str, Any] | Answers | None = None,
             time_budget: float | None = None, backend: str = "auto", persona: str = "data-scientist",
             on_questions: str = "ask", sessions_dir: str | Path | None = None, max_trials: int | None = None,
             metric: str | None = None, model: str | None = None, seed: int = 0) -> RunResult:
    """Run one ML task to its end and return the RunResult.

    goal: what the model is for, in words. data: a file path or a pandas DataFrame.
    target: the column to predict (asked, or taken from `answers`, when omitted).
    answers: answers to clarifying questions (keys of dsagent.answers.Answers).
    time_budget: wall-clock seconds; when None, `answers["time_budget"]`, else DEFAULT_TIME_BUDGET.
    on_questions: "ask" returns status needs_input with the questions when one is not answered;
    "assume" proceeds on stated defaults and lists them as assumptions.
    backend: "auto" (Claude when ANTHROPIC_API_KEY is set), "claude" or "offline".
    """
    assistant = Assistant(backend=backend, persona=persona, on_questions=on_questions, time_budget=time_budget,
                          sessions_dir=sessions_dir, max_trials=max_trials, model=model, seed=seed)
    return assistant.run(goal, data, target, answers=answers, metric=metric)


def ask_about(session: Any, question: str, *, sessions_dir: str | Path | None = None) -> dict[str, Any]:
    """Answer a question about a finished task from its saved artifacts (no model, no network).

    session: a RunResult, a session directory, or a session id (looked up in sessions_dir, default
    the usual sessions directory). Returns {"intent", "answer" (markdown with the numbers),
    "plots" (file paths), "action"}; a follow-up such as "use recall instead" is not run here:
    its answer says which run_task call would do it, and `action` carries the answers for it.
    An unmatched question gets the list of what can be asked."""
    from dsagent.about import ask_about as answer

    return answer(_session(session, sessions_dir), question).to_dict()


# ------------------------------------------------------- a finished session's model (dsagent.lifecycle)


def _session(session: Any, sessions_dir: str | Path | None) -> Path:
    """A RunResult, a session directory or a session id (looked up in sessions_dir)."""
    from dsagent.session import default_sessions_dir
    from dsagent.tasks import session_dir

    if isinstance(session, RunResult):
        session = session.session_dir
    path = Path(str(session)).expanduser()
    if (path / "session.json").is_file():
        return path
    return session_dir(Path(sessions_dir).expanduser() if sessions_dir else default_sessions_dir(), str(session))


def _table(data: Any) -> Any:
    if _is_dataframe(data):
        return data
    return _data_path(data, Path("."))


def predict(session: Any, data: Any, *, version: str | None = None, sessions_dir: str | Path | None = None):
    """Predictions of a finished session's model (its active version unless `version`): a DataFrame,
    one row per row of `data` (a DataFrame or a file), in order, with the columns of `dsagent predict`.
    Schema warnings go to the `warnings` attribute of the frame (`frame.attrs["warnings"]`)."""
    from dsagent.lifecycle import predict_table

    frame, warnings, _ = predict_table(_session(session, sessions_dir), _table(data), version)
    frame.attrs["warnings"] = warnings
    return frame


def explain(session: Any, data: Any, *, version: str | None = None, sessions_dir: str | Path | None = None):
    """Per-row explanations: a DataFrame of the predict columns, `base_value` and one
    `contrib_<feature>` per feature; `frame.attrs["method"]` says how they were computed."""
    from dsagent.lifecycle import explain_table

    frame, info, warnings = explain_table(_session(session, sessions_dir), _table(data), version)
    frame.attrs.update(info, warnings=warnings)
    return frame


def monitor(session: Any, data: Any = None, *, from_log: bool = False, since: str | None = None,
            version: str | None = None, sessions_dir: str | Path | None = None) -> dict[str, Any]:
    """Drift, data quality and (with labels) performance of `data` (or of the served traffic with
    from_log=True) against `version`'s plan (default the active version): the `dsagent monitor --json`
    report, with `exit_code` 0 ok, 3 investigate, 4 retrain."""
    from dsagent.lifecycle import monitor as check

    return check(_session(session, sessions_dir), None if data is None else _table(data), from_log=from_log, since=since,
                 version=version)


def retrain(session: Any, data: Any, *, time_budget: float | None = None, seed: int = 0,
            sessions_dir: str | Path | None = None) -> dict[str, Any]:
    """Refit on new labelled data and promote only when better beyond the CI (`dsagent retrain
    --json`'s result, with `exit_code` 0 promoted, 5 champion kept). A DataFrame is saved under the
    sessions directory's inputs/ first, so the new version records the file it learned from."""
    from dsagent.lifecycle import retrain as run

    path = _session(session, sessions_dir)
    if _is_dataframe(data):
        data = write_frame(data, path.parent / INPUTS_DIR)
    return run(path, _data_path(data, path.parent), time_budget=time_budget, seed=seed)


# ------------------------------------------------------------------------- delegate tool


def as_anthropic_tool(*, name: str = "dsagent", backend: str = "auto", sessions_dir: str | Path | None = None,
                      time_budget: float | None = None, max_trials: int | None = None,
                      on_questions: str = "ask", roots: list[str | Path] | None = None
                      ) -> tuple[dict[str, Any], Callable[[dict[str, Any]], str]]:
    """dsagent as one tool for a parent agent on the anthropic SDK: (tool definition, handler).

    Put the definition in `tools=[...]`; when the model calls it, pass the tool_use block's
    `input` to the handler and send back its string as the tool_result content. The string is a
    RunResult as JSON; with status needs_input the model answers by calling the tool again with
    `session_id` and `answers`. When `roots` is given, data paths outside them are refused.
    """
    answers_schema = Answers.model_json_schema()
    answers_schema.pop("title", None)
    for prop in answers_schema.get("properties", {}).values():
        prop.pop("title", None)
    answers_schema["description"] = ("answers to dsagent's clarifying questions (give what you know up front; "
                                     "'use your judgement' accepts dsagent's default)")
    definition = {
        "name": name,
        "description": (
            "Delegate a predictive-modeling task on a tabular data file (CSV, Parquet, Excel, JSON lines) to dsagent, "
            "a data-scientist sub-agent. It profiles the data, trains and tunes models against a baseline, evaluates "
            "on held-out data, and writes a report, model card, notebook and monitoring plan. Returns a JSON "
            "RunResult. If its status is needs_input, ask the user the listed questions (or decide) and call this "
            "tool again with session_id and answers."),
        "input_schema": {
            "type": "object",
            "properties": {
                "goal": {"type": "string", "description": "what the model is for: the decision it supports"},
                "data": {"type": "string", "description": "path of the data file"},
                "target": {"type": "string", "description": "column to predict, if known"},
                "answers": answers_schema,
                "time_budget": {"type": "number", "exclusiveMinimum": 0,
                                "description": "seconds for the whole run (default: answers.time_budget, else "
                                               f"{time_budget or DEFAULT_TIME_BUDGET:.0f})"},
                "session_id": {"type": "string",
                               "description": "to continue a run that returned needs_input: its session_id"},
            },
            "additionalProperties": False,
        },
    }
    assistant = Assistant(backend=backend, on_questions=on_questions, time_budget=time_budget,
                          sessions_dir=sessions_dir, max_trials=max_trials)
    allowed = None
    if roots:
        from dsagent.tasks import resolve_roots

        allowed = resolve_roots(roots)

    def handler(tool_input: dict[str, Any]) -> str:
        try:
            args = dict(tool_input or {})
            unknown = set(args) - set(definition["input_schema"]["properties"])
            if unknown:
                raise BadInput(f"unknown argument(s) {', '.join(sorted(unknown))}")
            budget = args.get("time_budget")
            overrides = {"time_budget": float(budget)} if budget else {}
            if args.get("session_id"):
                result = assistant.resume(args["session_id"], args.get("answers"), **overrides)
            else:
                if not args.get("data"):
                    raise BadInput("give `data` (a file path), or `session_id` to continue a run")
                data = args["data"]
                if allowed is not None:
                    from dsagent.tasks import confine_data_path

                    data = confine_data_path(data, allowed)
                result = assistant.run(args.get("goal"), data, args.get("target"), answers=args.get("answers"),
                                       **overrides)
            return result.model_dump_json()
        except BadInput as exc:
            return json.dumps({"status": "failed", "error": str(exc)})

    return definition, handler


def claude_code_subagent(persona: str = "data-scientist") -> str:
    """A persona as a Claude Code subagent file (.claude/agents/<name>.md) for use with the MCP server.

    The persona's tools are spelled mcp__dsagent__<tool>; `load_data` and the task tools are added,
    since direct tool calls need a registered data file and whole runs go through tasks.
    """
    import re

    from dsagent.persona import MCP_PREFIX, load_persona, to_claude_code
    from dsagent.tasks import MCP_SESSION_TOOLS

    text = to_claude_code(load_persona(persona))
    match = re.search(r"^tools: *(.*)$", text, re.M)
    listed = [t.strip() for t in match.group(1).split(",") if t.strip()] if match else []
    tools = list(dict.fromkeys(listed + [MCP_PREFIX + t for t in MCP_SESSION_TOOLS]))
    line = "tools: " + ", ".join(tools)
    if match:
        return text[:match.start()] + line + text[match.end():]
    return text.replace("\n---\n", f"\n{line}\n---\n", 1)
