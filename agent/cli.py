"""dsagent run | predict | monitor | serve | models | chat | mcp | sessions | tools | doctor

Exit codes: 0 success; 1 the run failed; 2 bad usage or bad input; 130 interrupted;
monitor: 0 ok, 3 investigate, 4 retrain. Bad input is one line on stderr, no traceback unless
--debug, and nothing already saved is touched.

The parser and the exit codes are agent/cli_parser.py; the commands that use a saved model
(predict, monitor, serve, models, explain, retrain) are agent/cli_models.py.
"""

from __future__ import annotations

import time


def _process_started() -> float:
    """When the OS created this process (Linux: /proc), else now: the run's budget counts from there,
    so Python's own start-up and the imports (10-50 s on a loaded 2-core machine) are not free time."""
    try:
        with open("/proc/self/stat") as f:
            ticks = int(f.read().rsplit(")", 1)[1].split()[19])  # field 22, starttime, in clock ticks after boot
        with open("/proc/uptime") as f:  # to 0.01 s; /proc/stat's btime is whole seconds
            boot = time.time() - float(f.read().split()[0])
        import os

        started, now = boot + ticks / os.sysconf("SC_CLK_TCK"), time.time()
        # a container whose /proc/uptime is not the clock the ticks count from gives nonsense: then now
        return started if now - 300 < started <= now else now
    except (OSError, ValueError, IndexError):
        return time.time()


LAUNCHED = _process_started()

import json  # noqa: E402
import os  # noqa: E402
import sys  # noqa: E402
from pathlib import Path
from typing import Any

from dsagent.answers import Answers, BadInput, cli_answers, is_judgement, load_answers
from dsagent.cli_models import (_sessions_dir, cmd_explain, cmd_models, cmd_monitor, cmd_predict, cmd_retrain,
                                cmd_serve)
from dsagent.cli_parser import EXIT_FAILED, EXIT_INTERRUPTED, EXIT_OK, EXIT_USAGE, UsageError, build_parser


def _goal_target(goal: str | None, data, judged: bool = False) -> str | None:
    """The target the goal in words names, if any (the run itself records the rest it says); when
    the target is left to judgement (by the goal or the answers), the clear choice, or bad input
    saying why there is none (the run's asker then picks the same column and records why)."""
    if not goal and not judged:
        return None
    from dsagent.goal import clear_target, data_columns, understand

    columns = data_columns(data)
    understood = understand(goal or "", columns)
    if understood.values.get("target") or not (judged or understood.judgement):
        return understood.values.get("target")
    column, why = clear_target(goal, columns or [])
    if column is None:
        raise BadInput(f"no column is the clear target: {why}; pass --target COL")
    return column


def cmd_run(args) -> int:
    from dsagent.progress import ProgressPrinter
    from dsagent.runtime import Run, RunOptions

    if args.data is None and not args.resume:
        raise UsageError("dsagent run needs a DATA file (or --resume SESSION); see `dsagent run --help`")
    answers = cli_answers(args, load_answers(args.answers) if args.answers else Answers())
    judged = is_judgement(answers.for_asker().get("target"), "target")  # `target: use your judgement` in the answers file
    if not args.resume and not (args.target or answers.target or _goal_target(args.goal or answers.goal, args.data, judged)):
        from dsagent.tools.unsupervised.goal import unsupervised_kind  # plain text matching, no ML library

        if unsupervised_kind(answers.given() | ({"goal": args.goal} if args.goal else {})) is None:
            raise BadInput("no target column: pass --target COL, put `target:` in the --answers file, or name the column "
                           "in --goal (\"predict COL\"); for work without a target pass --task clustering or --task "
                           "anomaly, or say it in --goal ('segment these customers', 'flag unusual transactions')")
    if not args.resume and answers.task not in (None, "auto"):
        from dsagent.tools.task_types import get_task_type  # the registry: no ML library

        if problem := get_task_type(answers.task).answers_problem(answers.given()):
            raise BadInput(problem)
    if args.allow_unsandboxed:
        os.environ["DSAGENT_ALLOW_UNSANDBOXED"] = "1"
    opts = RunOptions(data=args.data, target=args.target, goal=args.goal, answers=answers, time_budget=args.time_budget,
                      metric=args.metric, backend=args.backend, model=args.model, persona=args.persona,
                      sessions_dir=args.sessions_dir, on_questions="assume", max_trials=args.max_trials, seed=args.seed,
                      memory_mb=args.memory_mb, resume=args.resume, started=LAUNCHED, cluster=args.cluster,
                      tuning_storage=args.tuning_storage)
    run = Run(opts)
    printer = ProgressPrinter(plain=args.json or None)
    if run.backend_name == "offline" and args.backend == "auto":
        printer.console.print("note: no ANTHROPIC_API_KEY set: using the offline autopilot (--backend offline)")
    printer.console.print(f"session {run.session.id} in {run.session.dir}")
    try:
        for event in run.events():
            printer(event)
    except KeyboardInterrupt:
        printer._stop_status()
        printer.console.print(f"interrupted; resume with: dsagent run --resume {run.session.id}"
                              + (f" --sessions-dir {args.sessions_dir}" if args.sessions_dir else ""))
        return EXIT_INTERRUPTED
    result = run.result()
    if args.json:
        print(result.model_dump_json())
    else:
        printer.final(result)
    return EXIT_OK if result.status == "completed" else EXIT_FAILED


def cmd_sessions(args) -> int:
    from dsagent.session import list_sessions

    rows = list_sessions(_sessions_dir(args))
    if args.json:
        print(json.dumps(rows, default=str))
        return EXIT_OK
    if not rows:
        print(f"no sessions in {_sessions_dir(args)}", file=sys.stderr)
        return EXIT_OK
    from rich.console import Console
    from rich.table import Table

    table = Table()
    for col in ("id", "status", "backend", "target", "data"):
        table.add_column(col)
    for r in rows:
        table.add_row(r.get("id", "?"), str(r.get("status")), str(r.get("backend")),
                      str((r.get("answers") or {}).get("target")), Path(str(r.get("data_path", ""))).name)
    Console().print(table)
    return EXIT_OK


def cmd_tools(args) -> int:
    """Tools, task types, then model families, each with the package that provides it (plugins included)."""
    from dsagent.tools.families import model_families
    from dsagent.tools.registry import all_tools, package_of
    from dsagent.tools.task_types import task_types

    specs = all_tools()
    families = model_families()
    if args.json:  # the list of tools keeps its shape; each entry names its package
        print(json.dumps([s.to_anthropic() | {"module": s.module, "package": package_of(s.module)}
                          for s in specs.values()]))
        return EXIT_OK
    print("tools:")
    for spec in specs.values():
        print(f"  {spec.name:18} {package_of(spec.module):14} {spec.description.splitlines()[0]}")
    print("task types:")
    for tt in task_types().values():
        shape = f"predicts {tt.prediction}" if tt.prediction else ("its own models" if tt.needs_target else "no target")
        print(f"  {tt.name:18} {tt.package:14} {shape}; {tt.description}")
    print("model families:")
    for fam in families.values():
        tasks = ", ".join(sorted(fam.tasks))
        print(f"  {fam.name:18} {fam.package:14} {tasks}{'; tunable' if fam.tunable else ''}")
    return EXIT_OK


def cmd_doctor(args) -> int:
    from dsagent.session import library_versions

    report: dict[str, Any] = {"python": sys.version.split()[0], "versions": library_versions(),
                              "anthropic_key": bool(os.environ.get("ANTHROPIC_API_KEY"))}
    try:
        from dsagent.sandbox import layers

        report["sandbox"] = layers()
    except ImportError:
        report["sandbox"] = {"process": {"active": True, "reason": "worker process with rlimits and timeouts"}}
    cluster = args.cluster or os.environ.get("DSAGENT_CLUSTER")
    if cluster:
        report["cluster"] = _doctor_cluster(cluster)
    if args.json:
        print(json.dumps(report, default=str))
        return _cluster_verdict(report)
    print(f"python {report['python']}")
    for k, v in report["versions"].items():
        print(f"  {k} {v}")
    print(f"backend: {'claude (ANTHROPIC_API_KEY set)' if report['anthropic_key'] else 'offline autopilot (no ANTHROPIC_API_KEY)'}")
    print("sandbox layers:")
    for name, info in report["sandbox"].items():
        print(f"  {'on ' if info.get('active') else 'off'} {name}: {info.get('reason', '')}")
    if cluster:
        c = report["cluster"]
        print(f"cluster {cluster}: scheduler {c['scheduler']}, {len(c['workers'])} worker(s)")
        for w in c["workers"]:
            v = w["versions"]
            mem = f"{w['memory_limit'] / 2**30:.1f} GB" if w.get("memory_limit") else "no memory limit"
            print(f"  {w['address']} on {w['host']}: {w['threads']} thread(s), {mem}; "
                  + ", ".join(f"{k} {v.get(k)}" for k in ("dsagent", "xgboost", "scikit-learn", "optuna", "python")))
        from dsagent.sandbox.landlock import landlock_abi
        from dsagent.sandbox.layer import disabled
        from dsagent.sandbox.net_rules import doctor_note

        print("  " + doctor_note(0 if "landlock" in disabled() else landlock_abi()))
    return _cluster_verdict(report)


def _doctor_cluster(address: str) -> dict[str, Any]:
    from dsagent.tools.cluster import Cluster, describe

    with Cluster(address) as cluster:
        return describe(cluster.client)


def _cluster_verdict(report: dict[str, Any]) -> int:
    """Exit 2 with one line when the cluster cannot be used (versions differ, no workers)."""
    if "cluster" in report:
        from dsagent.tools.cluster import check_versions

        check_versions(report["cluster"])  # ClusterError: one line, exit 2 (main)
    return EXIT_OK


def cmd_chat(args) -> int:
    from dsagent.chat import run_chat

    return run_chat(args)


def cmd_mcp(args) -> int:
    from dsagent.mcp_server import serve

    return serve(args)


COMMANDS = {"run": cmd_run, "predict": cmd_predict, "monitor": cmd_monitor, "serve": cmd_serve, "models": cmd_models, "retrain": cmd_retrain, "explain": cmd_explain,
            "sessions": cmd_sessions, "tools": cmd_tools,
            "doctor": cmd_doctor, "chat": cmd_chat, "mcp": cmd_mcp}


def _terminate(signum, frame):
    # SIGTERM takes the same path as Ctrl-C: workers are stopped, the session is marked
    # interrupted and can be resumed.
    raise KeyboardInterrupt


def main(argv: list[str] | None = None) -> int:
    import signal

    signal.signal(signal.SIGTERM, _terminate)
    parser = build_parser()
    debug = "--debug" in (argv if argv is not None else sys.argv[1:])
    try:
        args = parser.parse_args(argv)
        if not args.command:
            parser.print_help()
            return EXIT_USAGE
        return COMMANDS[args.command](args)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except BadInput as exc:
        if debug:
            raise
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except Exception as exc:
        from dsagent.tools.registry import ToolError

        if debug:
            raise
        if isinstance(exc, ToolError):  # bad data or model files given on the command line
            print(f"error: {exc}", file=sys.stderr)
            return EXIT_USAGE
        print(f"error: {type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''} (run with --debug for details)",
              file=sys.stderr)
        return EXIT_FAILED


if __name__ == "__main__":
    sys.exit(main())
