"""One run, whatever the surface: open or resume a session, pick the backend and persona, drive the
loop, and assemble the RunResult from what the tools left on disk. The CLI, chat, MCP server and
Python API all go through `Run`."""

from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator

from dsagent.answers import Answers, BadInput, parse_answers, resolve_time_budget
from dsagent.asking import AssumeAsker, PauseAsker
from dsagent.loop import Asker, Event, LoopState, ToolRunner, run_loop
from dsagent.result import Answer, Question, RunResult, Usage
from dsagent.sandbox import Limits
from dsagent.session import Session, default_sessions_dir, read_transcript
from dsagent.tools import paths


@dataclass
class RunOptions:
    data: Path | None = None
    target: str | None = None
    goal: str | None = None
    answers: Answers = field(default_factory=Answers)
    time_budget: float | None = None
    metric: str | None = None
    backend: str = "auto"  # auto | claude | offline
    model: str | None = None
    persona: str = "data-scientist"
    sessions_dir: Path | None = None
    on_questions: str = "assume"  # assume | ask
    max_trials: int | None = None
    max_steps: int = 40
    seed: int = 0
    memory_mb: int | None = None
    roots: list[str] = field(default_factory=list)
    resume: str | None = None
    asker: Asker | None = None  # chat passes a terminal asker
    started: float | None = None  # epoch seconds the budget counts from (default: when Run is made)
    cluster: str | None = None  # local[:N] | tcp://HOST:PORT (else answers.cluster, else $DSAGENT_CLUSTER)
    tuning_storage: str | None = None  # a journal file or database URL for the Optuna study


# Answer keys that name columns of the data: a name that is not a column must stop the run up
# front, not be dropped silently by the tool that would have used it.
COLUMN_KEYS = ("target", "time_column", "group_column", "series_columns", "known_future_columns", "segment_columns", "sensitive_columns",
               "id_columns", "anomaly_label", "features_at_prediction_time")
NO_COLUMN = {"", "no", "none", "all"}  # "is there a time column?" -> "no"; "which columns are known?" -> "all"


def check_answer_columns(answers: Answers, data: Path) -> None:
    """Raise BadInput naming the first answer that names no column of `data`, with its closest
    matches. Large non-Parquet files are not read here (dsagent.tools.data.column_names)."""
    import difflib

    from dsagent.tools.data import column_names
    from dsagent.tools.registry import ToolError

    given = answers.given()
    named = [(key, v) for key in COLUMN_KEYS for v in ([given[key]] if isinstance(given.get(key), str) else given.get(key) or [])
             if str(v).strip().lower() not in NO_COLUMN]
    if not named:
        return
    try:
        columns = column_names(data)
    except ToolError as exc:  # unreadable data: say so now rather than after the session exists
        raise BadInput(str(exc)) from None
    if columns is None:
        return
    known = set(columns)
    for key, name in named:
        if name in known:
            continue
        folded = {c.lower(): c for c in columns}
        close = ([folded[name.lower()]] if name.lower() in folded else []) or difflib.get_close_matches(name, columns, n=3, cutoff=0.6)
        hint = f"did you mean {' or '.join(map(repr, close))}?" if close else f"the columns are {', '.join(columns[:12])}" + (
            f", ... ({len(columns)} in all)" if len(columns) > 12 else "") + "."
        raise BadInput(f"{key}: {name!r} is not a column of {data.name}; {hint} Fix the name and run again")


def choose_backend_name(requested: str) -> str:
    if requested not in ("auto", "claude", "offline"):
        raise BadInput(f"unknown backend {requested!r}; use auto, claude or offline")
    if requested == "auto":
        return "claude" if os.environ.get("ANTHROPIC_API_KEY") else "offline"
    if requested == "claude" and not (os.environ.get("ANTHROPIC_API_KEY") or os.environ.get("ANTHROPIC_AUTH_TOKEN")):
        raise BadInput("--backend claude needs ANTHROPIC_API_KEY; set it, or use --backend offline")
    return requested


def make_backend(name: str, opts: RunOptions, persona: Any, target: str | None):
    if name == "offline":
        from dsagent.backends.autopilot import AutopilotBackend

        return AutopilotBackend(target=target, max_trials=opts.max_trials)
    from dsagent.backends.claude import ClaudeBackend  # imported only when used: it pulls the anthropic SDK

    # DSAGENT_API_RETRIES: how often the SDK retries 429/5xx before the turn fails (default 4).
    retries = int(os.environ.get("DSAGENT_API_RETRIES", "4"))
    return ClaudeBackend(model=opts.model, persona=persona, max_retries=retries)


def _load_persona(ref: str, known: list[str]):
    from dsagent.persona import load_persona

    return load_persona(ref, known_tools=known)


def _check_derived(answers: Answers, data: Path) -> None:
    """Derived features that read a column the data lacks stop the run before a session exists."""
    from dsagent.tools.derived import DerivedError, check_against_file

    time_column = answers.time_column if answers.time_column not in (None, "", "no") else None
    # Today's system as a column or a rule (current_baseline) is checked the same way.
    checks = [(answers.derived_features, "derived_features")]
    if isinstance(answers.current_baseline, str):
        checks.append(([f"current_baseline = {answers.current_baseline}"], "current_baseline"))
    for texts, key in checks:
        if not texts:
            continue
        try:
            check_against_file(texts, data, target=answers.target, time_column=time_column)
        except DerivedError as exc:
            raise BadInput(f"{exc}; fix {key} in the answers") from None


def cluster_settings(answers: Answers, cluster: str | None = None, storage: str | None = None,
                     roots: list[str] | list[Path] = ()) -> tuple[str | None, str | None]:
    """(cluster, tuning storage) as given: argument > answers > $DSAGENT_CLUSTER; checked here, so a
    bad address is bad input before anything starts. The journal path is made absolute.

    A study file's directory becomes writable in the sandbox: where the caller is confined to data
    roots (MCP), the file must lie under one of them, or an MCP client could open any directory."""
    from dsagent.tools.cluster import ClusterError, parse_cluster, parse_storage
    from dsagent.tools.data_limits import is_within_roots

    cluster = cluster or answers.cluster or os.environ.get("DSAGENT_CLUSTER") or None
    storage = storage or answers.tuning_storage or None
    try:
        if cluster:
            parse_cluster(cluster)
        if storage:
            kind, where = parse_storage(storage)
            storage = f"journal://{where}" if kind == "journal" else where
            path = where if kind == "journal" else (where.removeprefix("sqlite:///") if where.startswith("sqlite:///") else None)
            if path and roots and not is_within_roots(Path(path).absolute().parent, list(roots)):
                raise ClusterError(f"tuning storage {path} lies outside the allowed data roots; put the study file "
                                   "under one of them")
    except ClusterError as exc:
        raise BadInput(str(exc)) from None
    return cluster, storage


def worker_limits(memory_mb: int | None, cluster: str | None, storage: str | None, addresses: list[str] = ()) -> Limits:
    """The tool worker's limits: with a cluster (or a database on the network) it may open TCP
    connections (to the ports of `addresses`, the cluster's, and the database's, where Landlock can
    say so: dsagent.sandbox.net_rules), and it may write the directory of a study file outside the session."""
    limits = Limits(memory_mb=memory_mb) if memory_mb else Limits()
    if storage and storage.startswith("journal://"):
        limits.extra_write = (str(Path(storage.removeprefix("journal://")).parent),)
    elif storage and storage.startswith("sqlite:///"):
        limits.extra_write = (str(Path(storage.removeprefix("sqlite:///")).absolute().parent),)
    limits.tcp = bool(cluster) or bool(storage and not storage.startswith(("journal://", "sqlite:")))
    if limits.tcp:
        from dsagent.sandbox.net_rules import allowed_ports

        limits.tcp_ports = allowed_ports(addresses, storage)
    return limits


def start_cluster(cluster: str | None, storage: str | None, session: Session):
    """Start (local[:N]) or connect to (tcp://) the cluster for a session, recorded in session.json;
    None without one. A cluster that cannot be used is bad input."""
    if not cluster:
        return None
    from dsagent.tools.cluster import Cluster, ClusterError

    try:
        found = Cluster(cluster)
    except ClusterError as exc:
        session.update(status="failed", error=str(exc))
        raise BadInput(str(exc)) from None
    from dsagent.tools.scale import dask_reason  # stdlib only

    # `dask`: why the data go through Dask (a directory of parts, a file over the threshold), read by the
    # autopilot (its cluster workflow) and profile_data; None: the in-memory workflow.
    data = session.data_path
    session.update(cluster={"given": cluster, "scheduler": found.address}, tuning_storage=storage,
                   dask=dask_reason(data, cluster) if data is not None and data.exists() else None)
    return found


class Run:
    """A run in progress. Iterate `events()` to drive it; then read `result()`."""

    # A scripted run ends with its one turn; the chat keeps its worker warm between turns and
    # calls close() itself.
    close_worker_after_turn = True

    def __init__(self, opts: RunOptions):
        from dsagent.tools.registry import agent_tools

        # First: a bad address or storage is bad input before the tools load or a session exists.
        # (A resumed run is given its cluster again: a cluster does not outlive its run.)
        cluster, storage = cluster_settings(opts.answers, opts.cluster, opts.tuning_storage, opts.roots)
        self.opts = opts
        self.started = opts.started or time.time()
        sessions_dir = Path(os.path.abspath(opts.sessions_dir)) if opts.sessions_dir else default_sessions_dir().absolute()
        registry = agent_tools()  # the catalogue: this process does not import the tool modules
        self.persona = _load_persona(opts.persona, list(registry))
        self.tools = {name: spec for name, spec in registry.items() if name in set(self.persona.tools)}
        answers = opts.answers
        if opts.target:
            answers = answers.merged({"target": opts.target})
        if opts.metric:
            answers = answers.merged({"metric": opts.metric})
        if opts.goal:
            answers = answers.merged({"goal": opts.goal})
        if opts.resume:
            self.session = Session.load(sessions_dir, opts.resume)
            saved = parse_answers(self.session.meta.get("answers") or {}, source="session.json answers", as_note=True)
            answers = saved.merged(answers)
            self.backend_name = self.session.meta.get("backend", "offline") if opts.backend == "auto" else choose_backend_name(opts.backend)
            # Answers given now beat the budget the session saved; the saved answers do not (the
            # saved budget already is what they resolved to, or an explicit argument that beat them).
            budget = resolve_time_budget(opts.time_budget, opts.answers, self.session.meta.get("time_budget"))
            if self.session.data_path is not None and self.session.data_path.is_file():
                check_answer_columns(answers, self.session.data_path)
        else:
            if opts.data is None:
                raise BadInput("no data file given; pass a CSV/Parquet/Excel/JSON-lines file")
            data = Path(opts.data)
            if data.is_dir() and not cluster:  # a directory of Parquet parts is read by Dask workers only
                raise BadInput(f"{data} is a directory; `dsagent run` reads one data file, or a directory of Parquet "
                               "parts with --cluster local[:N] or tcp://HOST:PORT (see docs/scaling.md)")
            if not data.exists():
                raise BadInput(f"data file {data} not found; check the path")
            self.backend_name = choose_backend_name(opts.backend)
            budget = resolve_time_budget(opts.time_budget, answers)
            check_answer_columns(answers, data)
            _check_derived(answers, data)
            sessions_dir.mkdir(parents=True, exist_ok=True)
            self.session = Session.create(sessions_dir, data_path=data, persona=self.persona.name, backend=self.backend_name,
                                          model=opts.model, seed=opts.seed, extra={"time_budget": budget})
        self.budget = float(budget)
        self.answers = answers
        target = answers.target
        self.backend = make_backend(self.backend_name, opts, self.persona, target)
        from dsagent.sandbox import layers

        self.session.update(answers=answers.for_asker(), backend=self.backend_name, model=getattr(self.backend, "model", None),
                            status="running", time_budget=self.budget, sandbox=layers())
        self.state = LoopState(session=self.session, deadline=self.started + self.budget, time_budget=self.budget,
                               answers=dict(answers.given()),
                               assumptions=list(self.session.meta.get("assumptions") or []))
        self.echo: str | None = None  # the "Understood from your goal" line, shown when the run starts
        # The goal said "use your judgement on anything you need to ask" (kept for a resumed run).
        self.leave_to_judgement = bool((self.session.meta.get("understood") or {}).get("judgement"))
        if not opts.resume:
            explicit = opts.time_budget or answers.time_budget
            self.session.update(answer_sources={"time_budget": "given" if explicit else "assumed"})
            if answers.goal:
                from dsagent.goal import data_columns

                self.echo = self.take_goal(answers.goal, data_columns(self.session.data_path)).line()
        given = answers.for_asker()
        # A goal that says "use your judgement on anything you need to ask" answers every question by judgement.
        self.asker = opts.asker or (PauseAsker(given, judge_all=self.leave_to_judgement) if opts.on_questions == "ask"
                                    else AssumeAsker(given))
        self.cluster = start_cluster(cluster, storage, self.session)  # closed with the run
        limits = worker_limits(opts.memory_mb, cluster, storage, self.cluster.addresses() if self.cluster else [])
        if limits.tcp:  # session.json must not say the network is confined when it is not
            from dsagent.sandbox.layer import without_network

            self.session.update(sandbox=without_network(layers(), "TCP allowed to reach the Dask cluster (--cluster)"))
        self.runner = ToolRunner(self.session, self.tools, limits, roots=opts.roots,
                                 cluster=self.cluster.address if self.cluster else None, tuning_storage=storage)
        self.conversation = self._conversation()
        # Keep numbering records after the steps already taken (a resumed run must not overwrite them).
        self.state.steps = sum(1 for m in self.conversation if m["role"] == "assistant")
        self.status = "running"
        self.error: str | None = None
        self.questions: list[dict[str, Any]] = []

    def take_goal(self, goal: str, columns: list[str] | None):
        """What the goal says fills the answers keys nobody gave (precedence: explicit argument >
        answers > understood from the goal > default); recorded, with its source, in session.json."""
        from dsagent.goal import understand

        understood = understand(goal, columns)
        self.leave_to_judgement |= understood.judgement
        known = set(self.state.answers) | ({"time_budget"} if self.opts.time_budget or self.answers.time_budget else set())
        understood.values = {k: v for k, v in understood.values.items() if k not in known}
        if "time_budget" in understood.values:
            extra = understood.values["time_budget"] - self.budget
            self.budget += extra
            self.state.time_budget = self.budget
            self.state.deadline += extra
        self.state.answers.update(understood.values)
        sources = {**(self.session.meta.get("answer_sources") or {}), **{k: "understood" for k in understood.values}}
        self.session.update(answers={**(self.session.meta.get("answers") or {}), **self.state.answers},
                            answer_sources=sources, time_budget=self.budget,
                            understood={"goal": goal, "line": understood.line(), "reasons": understood.reasons,
                                        "notes": understood.notes, "judgement": self.leave_to_judgement})
        return understood

    def _conversation(self) -> list[dict[str, Any]]:
        events = list(read_transcript(self.session.transcript_path))
        conv: list[dict[str, Any]] = []
        for e in events:
            if e["type"] == "user":
                conv.append({"role": "user", "text": e["text"]})
            elif e["type"] == "assistant":
                conv.append({k: e[k] for k in ("text", "tool_calls", "stop_reason", "raw") if k in e} | {"role": "assistant"})
            elif e["type"] == "tool_results":
                if conv and conv[-1]["role"] == "tool":
                    continue  # a second record for the same turn (an interrupt note): keep the first
                conv.append({"role": "tool", "results": e["results"]})
        # A turn whose tool calls never got results (killed or interrupted), or one that paused
        # for input: drop it, so the backend issues it again with what is known now.
        while conv and conv[-1]["role"] == "assistant" and conv[-1].get("tool_calls"):
            conv.pop()
        if conv and conv[-1]["role"] == "tool" and any(r.get("kind") in ("needs_input", "interrupted") for r in conv[-1]["results"]):
            conv.pop()
            if conv and conv[-1]["role"] == "assistant":
                conv.pop()
        if not conv:
            text = self._opening_message()
            self.session.append({"type": "user", "text": text})
            conv.append({"role": "user", "text": text})
        elif events:
            self.session.append({"type": "resume", "steps_kept": len(conv)})
        return conv

    def _opening_message(self) -> str:
        a = self.answers
        parts = [f"Data file: {self.session.data_path.name if self.session.data_path else 'none'}."]
        if a.goal:
            parts.append(f"Goal: {a.goal}.")
        target = self.state.answers.get("target")
        if target:
            parts.append(f"Target column: {target}.")
        if self.echo:
            parts.append(self.echo)
        parts.append(f"Time budget: {self.budget:.0f} seconds.")
        parts.append("Build, evaluate and document the best model you can, following your workflow.")
        return " ".join(parts)

    def events(self) -> Iterator[Event]:
        from dsagent.loop import NeedsInput  # noqa: F401  (documented: askers raise it)

        if self.echo:
            yield Event("notice", {"message": self.echo})
            self.echo = None
        try:
            for event in run_loop(self.backend, self.state, self.tools, self.runner, self.asker, self.conversation,
                                  max_steps=self.opts.max_steps):
                if event.kind == "needs_input":
                    self.questions = event.data["questions"]
                yield event
            if self.questions:
                self.status = "needs_input"
            elif (self.session.artifacts_dir / paths.EVALUATION).exists():
                self.status = "completed"
            else:
                self.status = "failed"
                self.error = self.state.stopped or (self.state.final_text or "the run ended without an evaluated model")[:500]
        except (KeyboardInterrupt, GeneratorExit):
            # GeneratorExit: an interrupt (Ctrl-C, SIGTERM) that landed while the caller held control
            # between two events only closes this generator later; the session must not stay
            # "running" (test_resume's SIGTERM test saw it under load).
            self.status = "failed"
            self.error = "interrupted"
            self.session.update(status="interrupted")
            raise
        except Exception as exc:
            from dsagent.backends.errors import BackendError

            if not isinstance(exc, BackendError):
                raise
            self.status = "failed"
            self.error = str(exc)
        finally:
            if self.close_worker_after_turn:
                self.close()
            self._save_usage()
            if self.status != "running":
                self.session.update(status=self.status, assumptions=self.state.assumptions,
                                    elapsed_s=round(time.time() - self.started, 2), error=self.error)
        yield Event("done", {"status": self.status, "error": self.error})

    def close(self) -> None:
        self.runner.close()
        if self.cluster is not None:
            self.cluster.close()
            self.cluster = None

    def run(self) -> RunResult:
        for _ in self.events():
            pass
        return self.result()

    def _save_usage(self) -> None:
        usage = dict(self.state.usage)
        cost = None
        if self.backend_name == "claude":
            from dsagent.backends.config import cost_usd

            cost = cost_usd(getattr(self.backend, "model", None), usage)
        self.session.update(usage=usage | {"cost_usd": cost, "model": getattr(self.backend, "model", None)})

    def result(self) -> RunResult:
        return build_result(self.session, self.status, time.time() - self.started, self.error, self.questions,
                            self.state.assumptions)


def _json(path: Path) -> Any:
    try:
        return json.loads(path.read_text())
    except (OSError, json.JSONDecodeError):
        return None


def answers_used(meta: dict[str, Any], assumptions: list[str]) -> dict[str, Answer]:
    """Each answers key the run used, marked given, understood (from the goal) or assumed."""
    from dsagent.asking import is_judgement

    sources = meta.get("answer_sources") or {}
    answers = {**(meta.get("answers") or {}), "time_budget": meta.get("time_budget")}
    out: dict[str, Answer] = {}
    for key, value in answers.items():
        if is_judgement(value, key):
            continue  # a key left to judgement and never asked: nothing was used
        assumed = any(a.startswith(f"{key} = ") for a in assumptions)
        out[key] = Answer(value=value, source=sources.get(key) or ("assumed" if assumed else "given"))
    return out


def _decided(target: Any) -> Any:
    """A target somebody decided; "use your judgement" is a request, not a column."""
    from dsagent.asking import is_judgement

    return None if is_judgement(target, "target") else target


def build_result(session: Session, status: str, elapsed: float, error: str | None = None,
                 questions: list[dict[str, Any]] | None = None, assumptions: list[str] | None = None) -> RunResult:
    art = session.artifacts_dir
    # An unsupervised run has no task.json: its record (tools/unsupervised) names the task instead.
    # A cluster run (train_on_cluster) has neither: its training record names the task.
    task = _json(art / paths.TASK) or _json(art / paths.UNSUPERVISED) or _json(art / "cluster_training.json") or {}
    ev = _json(art / paths.EVALUATION) or {}
    board = _json(art / paths.LEADERBOARD) or []
    plan = _json(art / paths.MONITORING) or {}

    def existing(rel: str) -> str | None:
        p = art / rel
        return str(p) if p.exists() else None

    artifacts = {
        "model": existing(paths.MODEL), "report": existing(paths.REPORT), "model_card": existing(paths.MODEL_CARD),
        "notebook": existing(paths.NOTEBOOK), "monitoring": existing(paths.MONITORING), "profile": existing(paths.PROFILE),
        "transcript": str(session.transcript_path),
    }
    recommendations = list(plan.get("retraining_triggers", []))
    if ev and ev.get("baseline_score") is not None:
        beats = (ev["test_score"] > ev["baseline_score"]) == ev.get("greater_is_better", True)
        if not beats:
            recommendations.insert(0, "The model does not beat the baseline on the test split: do not deploy it; "
                                      "revisit the features or the framing.")
    if (ev.get("verdict") or {}).get("decision") == "no-go":
        recommendations.insert(0, f"Do not deploy: {ev['verdict']['reason']}.")
    from dsagent.tools.business import serving_mode  # stdlib only

    mode = serving_mode((session.meta.get("answers") or {}).get("prediction_volume"),
                        (session.meta.get("answers") or {}).get("latency_ms"), ev.get("latency") or {})
    if mode:
        recommendations.append(f"Serve by {mode['mode']} scoring: {mode['why']}.")
    usage = session.meta.get("usage") or {}
    assumed = list(assumptions if assumptions is not None else session.meta.get("assumptions") or [])
    result = RunResult(
        status=status,  # type: ignore[arg-type]
        session_id=session.id,
        session_dir=str(session.dir),
        questions=[Question(**{k: q.get(k) for k in ("key", "question", "why", "options", "default") if q.get(k) is not None})
                   for q in (questions or [])],
        task=task.get("task"),
        target=task.get("target") or _decided((session.meta.get("answers") or {}).get("target")),
        metric=task.get("metric") or ev.get("metric"),
        test_score=ev.get("test_score"),
        test_ci=tuple(ev["test_ci"]) if ev.get("test_ci") else None,
        baseline_score=ev.get("baseline_score"),
        best_model=ev.get("model"),
        leaderboard=[{k: r.get(k) for k in ("name", "family", "cv_mean", "cv_std", "fit_s")} for r in board[:5]],
        artifacts=artifacts,
        assumptions=assumed,
        recommendations=recommendations,
        usage=Usage(input_tokens=int(usage.get("input_tokens", 0)), output_tokens=int(usage.get("output_tokens", 0)),
                    cache_read_tokens=int(usage.get("cache_read_tokens", 0)),
                    cache_write_tokens=int(usage.get("cache_write_tokens", 0)), cost_usd=usage.get("cost_usd"),
                    model=usage.get("model")),
        elapsed_s=round(elapsed, 2),
        error=error,
        answers=answers_used(session.meta, assumed),
        verdict=ev.get("verdict"),
    )
    missing = result.not_written()
    if missing and artifacts.get("model"):
        # A run stopped by its budget (or a failed step) before its documents would otherwise look
        # done: say which are missing and how to finish them (resume continues the workflow).
        result.recommendations.insert(0, f"Not written: {', '.join(missing)} (the run stopped before them); "
                                         f"`dsagent run --resume {session.id} --time-budget 60` writes them.")
    return result
