"""dsagent run | predict | monitor | serve | models | chat | mcp | sessions | tools | doctor

Exit codes: 0 success; 1 the run failed; 2 bad usage or bad input; 130 interrupted;
monitor: 0 ok, 3 investigate, 4 retrain. Bad input is one line on stderr, no traceback unless
--debug, and nothing already saved is touched.
"""

from __future__ import annotations

import time

# When this process began its work, as near as Python lets us: the run's budget counts from here,
# so the seconds spent importing the tools (several on a busy machine) are not free.
LAUNCHED = time.time()

import argparse  # noqa: E402
import json  # noqa: E402
import os  # noqa: E402
import sys  # noqa: E402
from pathlib import Path
from typing import Any

from dsagent.answers import DEFAULT_TIME_BUDGET, Answers, BadInput, load_answers

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_INTERRUPTED = 0, 1, 2, 130
MONITOR_EXIT = {"ok": 0, "investigate": 3, "retrain": 4}
EXIT_KEPT_CHAMPION = 5  # retrain: the challenger was not better beyond the CI


class UsageError(BadInput):
    pass


class Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # one line, exit 2 (argparse's own format has two)
        raise UsageError(f"{message}; see `{self.prog} --help`")


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--sessions-dir", type=Path, help="where sessions live (default ./sessions or $DSAGENT_SESSIONS_DIR)")
    p.add_argument("--json", action="store_true", help="print exactly one JSON object on stdout")
    p.add_argument("--debug", action="store_true", help="show tracebacks")


def _agent_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--target", help="column to predict")
    p.add_argument("--goal", help="what the model is for, in words")
    from dsagent.tools.task_types import task_names  # the installed task types, plugins' too (no ML library)

    p.add_argument("--task", choices=["auto", *task_names()],
                   help="the kind of task; clustering (segments) and anomaly (unusual rows) need no --target")
    p.add_argument("--time-budget", type=float, metavar="SECONDS", help=f"wall-clock budget for the whole run (default: the answers' time_budget, else {DEFAULT_TIME_BUDGET:g})")
    p.add_argument("--metric", help="metric to optimise (roc_auc, pr_auc, log_loss, rmse, ...)")
    p.add_argument("--horizon", type=int, metavar="N", help="forecast: steps ahead (default: the answers' horizon, else from the frequency)")
    p.add_argument("--answers", type=Path, metavar="FILE", help="YAML/JSON answers to the clarifying questions")
    p.add_argument("--backend", default="auto", choices=["auto", "claude", "offline"],
                   help="auto = Claude when ANTHROPIC_API_KEY is set, else the offline autopilot")
    p.add_argument("--model", help="Claude model ID (default from DSAGENT_MODEL or the built-in default)")
    p.add_argument("--persona", default="data-scientist", help="persona NAME or PATH to a persona .md file")
    p.add_argument("--max-trials", type=int, metavar="N", help="cap tuning trials (deterministic for a fixed N)")
    p.add_argument("--resume", metavar="SESSION", help="continue a session from its transcript")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--memory-mb", type=int, help="memory cap of the tool worker (default 8192)")
    p.add_argument("--cluster", metavar="ADDRESS",
                   help="run tuning trials on Dask: local[:N] (N worker processes here) or tcp://HOST:PORT "
                        "(an existing scheduler); default $DSAGENT_CLUSTER, else none")
    p.add_argument("--tuning-storage", metavar="URL",
                   help="Optuna study storage shared by the workers: a journal file (journal:///path or a path) "
                        "or a database URL (default: in the session)")
    p.add_argument("--allow-unsandboxed", action="store_true",
                   help="let run_python execute without filesystem/network confinement (not recommended)")


def _version_option(p: argparse.ArgumentParser) -> None:
    p.add_argument("--version", metavar="VERSION", help="a version of the session's model (v1, v2, ...; "
                                                        "default the active one, see `dsagent models`)")


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(prog="dsagent", description="An ML assistant with a data-scientist persona.")
    sub = parser.add_subparsers(dest="command", parser_class=Parser)
    run = sub.add_parser("run", help="a scripted run on one dataset")
    run.add_argument("data", nargs="?", type=Path, help="CSV/TSV/Parquet/Excel/JSON-lines file")
    _agent_options(run)
    _common(run)
    pred = sub.add_parser(
        "predict", help="predict with a saved model",
        description="One output row per input row, in order: `prediction`, plus `proba_<class>` per class for "
                    "classifiers. Missing model columns are an error; extra columns are ignored with a warning.",
        epilog="only .skops models written by dsagent are loaded (pickle/joblib files are refused); exit 2 on bad input")
    pred.add_argument("model", help="session id or directory, or a model.skops file")
    pred.add_argument("data", nargs="?", type=Path, help="rows to score (CSV/TSV/Parquet/Excel/JSON-lines); for a forecast, "
                                                          "optional history that extends what the model saw")
    pred.add_argument("-o", "--output", type=Path, help="output CSV (required for tabular models; a forecast without it "
                                                        "prints CSV on stdout)")
    pred.add_argument("--horizon", type=int, metavar="N", help="forecast: steps ahead (default and maximum: the trained horizon)")
    _version_option(pred)
    _common(pred)
    mon = sub.add_parser(
        "monitor", help="check new data against a model's monitoring plan",
        description="Drift per feature and on the predictions (PSI, confirmed by KS / chi-squared), data-quality "
                    "rules, and performance when the target column is present, against the reference saved at "
                    "training time (monitoring.json).",
        epilog="exit codes: 0 ok, 3 investigate, 4 retrain; 2 bad input (unreadable data, missing columns, "
               "no model or plan); 1 unexpected failure")
    mon.add_argument("model", help="session id or directory, or a model.skops file")
    mon.add_argument("data", nargs="?", type=Path,
                     help="the new batch (CSV/TSV/Parquet/Excel/JSON-lines), target column optional")
    mon.add_argument("--from-log", action="store_true",
                     help="check the rows `dsagent serve` scored (the session's traffic log) instead of a file")
    mon.add_argument("--since", metavar="ISO", help="with --from-log: only rows served at or after this time (UTC)")
    _common(mon)
    srv = sub.add_parser(
        "serve", help="serve a saved model over HTTP",
        description="POST /predict (JSON records or CSV; the columns and checks of `dsagent predict`), GET /health, "
                    "/ready, /metadata, /metrics (Prometheus), /docs. Every scored row is logged to the session's "
                    "artifacts/traffic/ (Parquet) for `dsagent monitor SESSION --from-log`.",
        epilog="exit 2 on a bad model or an address that cannot be used; Ctrl-C stops it cleanly")
    srv.add_argument("model", help="session id or directory, or a model.skops file")
    srv.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1: this machine only)")
    srv.add_argument("--port", type=int, default=8000, help="port (default 8000; 0 picks a free one and prints it)")
    srv.add_argument("--workers", type=int, default=1, help="worker processes, each with its own copy of the model")
    srv.add_argument("--no-log", action="store_true", help="do not log served rows and predictions")
    srv.add_argument("--max-body-mb", type=float, default=32.0, help="largest request body accepted (413 above it)")
    _version_option(srv)
    _common(srv)
    mod = sub.add_parser(
        "models", help="list a session's model versions",
        description="Every version of the session's model (v1 from `dsagent run`, v2... from `dsagent retrain`) with "
                    "its scores and data hash; the active one is what predict, serve and monitor use by default.")
    mod.add_argument("model", help="session id or directory")
    mod.add_argument("--activate", metavar="VERSION", help="make this version the active one (e.g. roll back to v1)")
    _common(mod)
    exp = sub.add_parser(
        "explain", help="per-row explanations: how much each feature moved each prediction",
        description="One output row per input row, in order: the predict columns, then `base_value` and one "
                    "`contrib_<feature>` per feature (classifiers: `explained_class`). Exact TreeSHAP for XGBoost, exact "
                    "coefficient x value for linear models, sampled Shapley values otherwise; the method is printed.",
        epilog="exit 2 on bad input")
    exp.add_argument("model", help="session id or directory, or a model.skops file")
    exp.add_argument("data", type=Path, help="rows to explain (CSV/TSV/Parquet/Excel/JSON-lines)")
    exp.add_argument("-o", "--output", type=Path, help="output CSV (default: CSV on stdout)")
    _version_option(exp)
    _common(exp)
    ret = sub.add_parser(
        "retrain", help="refit the session's model on new data; promote it only when it is better",
        description="Replays the session's decisions (task, features, the shipped family and its tuned parameters; no "
                    "new search) on NEW_DATA, then scores the new model (challenger) and the active one (champion) on "
                    "the same held-out newest rows with a paired bootstrap. The challenger becomes the active version "
                    "only when the 95% CI of the difference favours it; both versions stay (`dsagent models`).",
        epilog="exit codes: 0 challenger promoted, 5 champion kept, 2 bad input")
    ret.add_argument("model", help="session id or directory")
    ret.add_argument("data", type=Path, help="new labelled rows (CSV/TSV/Parquet/Excel/JSON-lines) with the target column")
    ret.add_argument("--time-budget", type=float, metavar="SECONDS", help="bounds the comparison (the refit is one fit)")
    ret.add_argument("--seed", type=int, default=0)
    _common(ret)
    chat = sub.add_parser("chat", help="interactive terminal chat")
    chat.add_argument("data", nargs="?", type=Path)
    chat.add_argument("--plain", action="store_true", help="no colours or live widgets")
    _agent_options(chat)
    _common(chat)
    mcp = sub.add_parser("mcp", help="serve the tools and whole tasks over MCP (stdio)")
    mcp.add_argument("--root", action="append", type=Path, help="directory the client may read data from (default .)")
    mcp.add_argument("--http", type=int, metavar="PORT", help="serve streamable HTTP on 127.0.0.1:PORT instead of stdio")
    _common(mcp)
    ses = sub.add_parser("sessions", help="list saved sessions")
    _common(ses)
    tls = sub.add_parser("tools", help="list installed tools")
    _common(tls)
    doc = sub.add_parser("doctor", help="check the installation and the sandbox layers",
                         epilog="with --cluster (or $DSAGENT_CLUSTER): the workers, their memory and versions; exit 2 "
                                "when a worker's xgboost, scikit-learn or dsagent differs from this machine's")
    doc.add_argument("--cluster", metavar="ADDRESS", help="local[:N] or tcp://HOST:PORT: check this Dask cluster too")
    _common(doc)
    return parser


def _sessions_dir(args) -> Path:
    from dsagent.session import default_sessions_dir

    return args.sessions_dir or default_sessions_dir()


def _resolve_model_ref(args) -> str:
    """A session id is looked up in the sessions directory; anything else is a path."""
    ref = Path(args.model)
    if ref.exists():
        return str(ref)
    candidate = _sessions_dir(args) / args.model
    if candidate.exists():
        return str(candidate)
    raise BadInput(f"no model or session {args.model!r}; pass a session directory, a session id from `dsagent sessions`, "
                   "or a model.skops file")


def _goal_target(goal: str | None, data) -> str | None:
    """The target the goal in words names, if any (the run itself records the rest it says)."""
    if not goal:
        return None
    from dsagent.goal import data_columns, understand

    return understand(goal, data_columns(data)).values.get("target")


def cli_answers(args, answers: Answers) -> Answers:
    """Flags that are answers keys (--task, --horizon) beat the answers file: explicit > answers."""
    if args.horizon is not None and args.horizon < 1:
        raise UsageError(f"--horizon must be a positive number of steps, not {args.horizon}")
    return answers.merged({"task": args.task, "horizon": args.horizon})


def cmd_run(args) -> int:
    from dsagent.progress import ProgressPrinter
    from dsagent.runtime import Run, RunOptions

    if args.data is None and not args.resume:
        raise UsageError("dsagent run needs a DATA file (or --resume SESSION); see `dsagent run --help`")
    answers = cli_answers(args, load_answers(args.answers) if args.answers else Answers())
    if not args.resume and not (args.target or answers.target or _goal_target(args.goal or answers.goal, args.data)):
        from dsagent.tools.unsupervised.goal import unsupervised_kind  # plain text matching, no ML library

        if unsupervised_kind(answers.given() | ({"goal": args.goal} if args.goal else {})) is None:
            raise BadInput("no target column: pass --target COL, put `target:` in the --answers file, or name the column "
                           "in --goal (\"predict COL\"); for work without a target pass --task clustering or --task "
                           "anomaly, or say it in --goal ('segment these customers', 'flag unusual transactions')")
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


def cmd_predict(args) -> int:
    from dsagent.tools.forecast.predict import is_forecast_model, predict_forecast
    from dsagent.tools.serving import predict_file

    ref = _resolve_model_ref(args)
    if is_forecast_model(ref):  # one row per series and step after the history, not one per input row
        if args.horizon is not None and args.horizon < 1:
            raise UsageError(f"--horizon must be a positive number of steps, not {args.horizon}")
        info = predict_forecast(ref, args.data, args.horizon, args.output)
        if args.json and args.output:
            print(json.dumps(info))
        elif args.output:
            print(f"wrote {info['rows']} forecast rows to {info['out']}", file=sys.stderr)
        return EXIT_OK
    if args.data is None or args.output is None:
        raise UsageError("dsagent predict MODEL DATA -o OUT.csv: a tabular model needs the rows to score and an output file")
    notes: list[str] = []
    info = predict_file(ref, args.data, args.output, warn=notes.append, version=args.version)
    for note in notes:
        print(f"warning: {note}", file=sys.stderr)
    if args.json:
        print(json.dumps(info | {"warnings": notes}))
    else:
        print(f"wrote {info['rows']} predictions to {info['out']}", file=sys.stderr)
    return EXIT_OK


def cmd_monitor(args) -> int:
    from dsagent.tools.data import load_table
    from dsagent.tools.monitor import VERDICT_EXIT, apply_plan

    model_ref = _resolve_model_ref(args)
    if args.from_log == (args.data is not None):
        raise UsageError("dsagent monitor needs either a DATA file or --from-log (not both); see `dsagent monitor --help`")
    if args.since and not args.from_log:
        raise UsageError("--since only applies with --from-log")
    if args.from_log:
        from dsagent.tools.traffic import served_rows

        data = served_rows(model_ref, args.since)
    else:
        data, _ = load_table(args.data)
    report = apply_plan(model_ref, data)
    if args.json:
        print(json.dumps(report, default=str))
        return VERDICT_EXIT[report["verdict"]]
    from rich.console import Console
    from rich.table import Table

    console = Console(stderr=False, highlight=False)
    colour = {"ok": "green", "investigate": "yellow", "retrain": "red", "alert": "red", "warn": "yellow"}
    table = Table(title=f"drift of {report['rows']} rows against the training reference")
    for col, justify in (("feature", "left"), ("PSI", "right"), ("p-value", "right"), ("status", "left"),
                         ("null rate", "right")):
        table.add_column(col, justify=justify)
    rows = list(report["features"].items())
    if "prediction" in report:
        rows.append((f"prediction: {report['prediction'].get('of')}", report["prediction"]))
    for name, f in rows:
        status = f["status"]
        p = f.get("p_value")
        table.add_row(str(name), f"{f['psi']:.3f}", "n/a" if p is None else f"{p:.2g}",
                      f"[{colour.get(status, 'default')}]{status}[/]", f"{f['null_rate']:.1%}" if "null_rate" in f else "")
    console.print(table)
    if report.get("segments"):
        s = report["segments"]
        console.print(f"segment shares: PSI {s['psi']:.3f}, [{colour.get(s['status'], 'default')}]{s['status']}[/]")
    if report.get("anomaly_rate"):
        a = report["anomaly_rate"]
        console.print(f"flag rate: {a['rate']:.2%} of {a['rows']} rows vs {a['expected']:.2%} expected (binomial p {a['p_value']:.2g}), "
                      f"[{colour.get(a['status'], 'default')}]{a['status']}[/]")
    for key, what in (("labels", "label distribution"), ("decisions", "predicted-positive rate")):
        if report.get(key):
            e = report[key]
            console.print(f"{what}: PSI {e['psi']:.3f}, [{colour.get(e['status'], 'default')}]{e['status']}[/]")
    for p in (report.get("performance") or {}).get("checks", []):
        ci = f", batch CI {p['ci'][0]:.4f} to {p['ci'][1]:.4f}" if p.get("ci") else ""
        console.print(f"{p['metric']}{' (' + p['at'] + ')' if p.get('at') else ''} on {p['rows']} labelled rows: "
                      f"{p['value']:.4f}{ci} (floor {p['floor']:.4f}, test {p['test_score']:.4f})", markup=False)
    for q in report["quality"]:
        console.print(f"data quality: {q}", markup=False)
    for n in report["notes"]:
        console.print(f"note: {n}", markup=False)
    v = report["verdict"]
    console.print(f"verdict: [bold {colour[v]}]{v.upper()}[/] (exit {VERDICT_EXIT[v]})")
    for r in report["reasons"]:
        console.print(f"  - {r}", markup=False)
    return VERDICT_EXIT[report["verdict"]]


def cmd_serve(args) -> int:
    from dsagent.serve import serve

    return serve(_resolve_model_ref(args), host=args.host, port=args.port, workers=args.workers, log=not args.no_log,
                 max_body_mb=args.max_body_mb, version=args.version)


def cmd_models(args) -> int:
    from dsagent.tools import versions

    ref = _resolve_model_ref(args)
    if args.activate:
        versions.set_active(versions.model_dir(ref) or Path(ref), args.activate)
    info = versions.listing(ref)
    if args.json:
        print(json.dumps(info, default=str))
        return EXIT_OK
    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"model versions in {info['model_dir']}")
    for col in ("", "version", "model", "scores", "data sha256", "created"):
        table.add_column(col)
    for v in info["versions"]:
        scores = ", ".join(f"{k} {x:.4f}" for k, x in (v["scores"] or {}).items() if isinstance(x, (int, float)))
        table.add_row("*" if v["active"] else "", v["version"], str(v["model"]), scores, str(v["data_sha256"] or "")[:12],
                      str(v["created_at"] or ""))
    Console().print(table)
    print(f"active: {info['active']}", file=sys.stderr)
    return EXIT_OK


def cmd_explain(args) -> int:
    from dsagent.tools.contributions import explain_frame
    from dsagent.tools.data import load_table
    from dsagent.tools.serving import escape_cells, write_csv_atomic

    if args.json and not args.output:
        raise UsageError("--json prints a summary; pass -o OUT.csv for the table")
    data, _ = load_table(args.data)
    notes: list[str] = []
    frame, info = explain_frame(_resolve_model_ref(args), data, version=args.version, warn=notes.append)
    for note in notes:
        print(f"warning: {note}", file=sys.stderr)
    if args.output:
        write_csv_atomic(frame, args.output)
    else:
        escape_cells(frame).to_csv(sys.stdout, index=False)
    if args.json:
        print(json.dumps({"rows": len(frame), "out": str(args.output), "columns": list(frame.columns), **info,
                          "warnings": notes}))
    else:
        print(f"explained {len(frame)} rows with {info['method']}; contributions to {info['explains']} "
              f"({info['space']}){f', written to {args.output}' if args.output else ''}", file=sys.stderr)
    return EXIT_OK


def cmd_retrain(args) -> int:
    from dsagent.tools.retrain import PROMOTED, retrain

    if args.time_budget is not None and args.time_budget <= 0:
        raise BadInput("--time-budget must be a positive number of seconds")
    result = retrain(_resolve_model_ref(args), args.data, time_budget=args.time_budget, seed=args.seed)
    for note in result["warnings"]:
        print(f"warning: {note}", file=sys.stderr)
    if args.json:
        print(json.dumps(result, default=str))
    else:
        ci = result["difference_ci"]
        print(f"{result['metric']} on {result['holdout_rows']} held-out new rows: challenger {result['version']} "
              f"{result['scores']['challenger']:.4f}, champion {result['parent']} {result['scores']['champion']:.4f}; "
              f"difference 95% CI {'n/a' if ci is None else f'{ci[0]:+.4f} to {ci[1]:+.4f}'} (positive = challenger better)")
        print(f"{'promoted' if result['status'] == PROMOTED else 'kept the champion'}: active version is "
              f"{result['active']}")
    return EXIT_OK if result["status"] == PROMOTED else EXIT_KEPT_CHAMPION


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


def _package_of(module: str) -> str:
    """The installed distribution that provides a module (its top-level import package)."""
    from importlib.metadata import packages_distributions

    return (packages_distributions().get(module.split(".")[0]) or ["?"])[0]


def cmd_tools(args) -> int:
    """Tools, task types, then model families, each with the package that provides it (plugins included)."""
    from dsagent.tools.families import model_families
    from dsagent.tools.registry import all_tools
    from dsagent.tools.task_types import task_types

    specs = all_tools()
    families = model_families()
    if args.json:  # the list of tools keeps its shape; each entry names its package
        print(json.dumps([s.to_anthropic() | {"module": s.module, "package": _package_of(s.module)}
                          for s in specs.values()]))
        return EXIT_OK
    print("tools:")
    for spec in specs.values():
        print(f"  {spec.name:18} {_package_of(spec.module):14} {spec.description.splitlines()[0]}")
    print("task types:")
    for tt in task_types().values():
        shape = f"predicts {tt.prediction}" if tt.prediction else ("forecasts a series" if tt.needs_target else "no target")
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
        from dsagent.isolation import layers

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
        from dsagent.isolation import disabled, landlock_abi
        from dsagent.net_rules import doctor_note

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
