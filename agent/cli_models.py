"""`dsagent predict | monitor | serve | models | explain | retrain`: the commands that use a saved
model (split out of agent/cli.py). A MODEL argument is a session id, a session directory or a
model.skops file."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

from dsagent.answers import BadInput
from dsagent.cli_parser import EXIT_KEPT_CHAMPION, EXIT_OK, UsageError


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


def cmd_predict(args) -> int:
    from dsagent.tools.task_types import model_task_type

    ref = _resolve_model_ref(args)
    notes: list[str] = []
    # The model's task type decides: rows in, rows out (tabular), or steps after the history (forecast).
    info = model_task_type(ref, args.version).predict_file(ref, args.data, args.output, horizon=args.horizon,
                                                          version=args.version, warn=notes.append)
    cluster = getattr(args, "cluster", None)  # explicit only: $DSAGENT_CLUSTER must not turn a CSV into Parquet parts
    if info is None and args.data is not None and (args.data.is_dir() or cluster):  # Parquet parts out
        from dsagent.tools.cluster import parse_cluster
        from dsagent.tools.predict_parts import predict_parts

        if cluster:
            parse_cluster(cluster)  # a bad address is one line of bad input
        info = predict_parts(ref, args.data, args.output, cluster=cluster, warn=notes.append, version=args.version)
    if info is None:  # one prediction per input row
        from dsagent.tools.registry import ToolError
        from dsagent.tools.serving import predict_file

        if args.data is None or args.output is None:
            raise ToolError("dsagent predict MODEL DATA -o OUT.csv: a tabular model needs the rows to score and an output file")
        info = predict_file(ref, args.data, args.output, warn=notes.append, version=args.version)
    for note in notes:
        print(f"warning: {note}", file=sys.stderr)
    if info.get("out") == "-":  # the rows went to stdout
        return EXIT_OK
    if args.json:
        print(json.dumps({k: v for k, v in info.items() if k != "noun"} | {"warnings": notes}))
    else:
        print(f"wrote {info['rows']} {info.get('noun', 'predictions')} to {info['out']}", file=sys.stderr)
    return EXIT_OK


def cmd_monitor(args) -> int:
    from dsagent.tools.data import load_table
    from dsagent.tools.monitor import VERDICT_EXIT, apply_plan

    model_ref = _resolve_model_ref(args)
    if args.compare:
        return _monitor_compare(model_ref, args)
    if args.from_log == (args.data is not None):
        raise UsageError("dsagent monitor needs either a DATA file or --from-log (not both); see `dsagent monitor --help`")
    if args.since and not args.from_log:
        raise UsageError("--since only applies with --from-log")
    if args.from_log:
        from dsagent.tools.traffic import served_rows

        data = served_rows(model_ref, args.since)
    else:
        data, _ = load_table(args.data)
    report = apply_plan(model_ref, data, version=args.version)
    if args.json:
        print(json.dumps(report, default=str))
        return VERDICT_EXIT[report["verdict"]]
    from rich.console import Console
    from rich.table import Table

    console = Console(stderr=False, highlight=False)
    colour = {"ok": "green", "investigate": "yellow", "retrain": "red", "alert": "red", "warn": "yellow"}
    of = f"{report['model_version']}'s" if report.get("model_version") else "the"
    table = Table(title=f"drift of {report['rows']} rows against {of} training reference")
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
    if report["features"] or "prediction" in report:  # a forecast's report has no drift table
        console.print(table)
    for line in report.get("summary_lines", []):
        console.print(line, markup=False)
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


def _monitor_compare(model_ref, args) -> int:
    from dsagent.tools.shadow import compare

    if args.data is not None or args.from_log or args.version:
        raise UsageError("--compare reads the traffic log, whose rows name their versions: give no DATA file, "
                         "--from-log or --version")
    report = compare(model_ref, args.since)
    if args.json:
        print(json.dumps(report, default=str))
        return EXIT_OK
    pairs = ", ".join(f"{p['shadow']} shadowing {p['champion']}" for p in report["versions"])
    print(f"{report['rows']} logged rows with a shadow prediction ({pairs}); shadow failed on {report['shadow_errors']}")
    for col, a in (report.get("agreement") or {}).items():
        print(f"  {col}: " + ", ".join(f"{k.replace('_', ' ')} {v}" for k, v in a.items()))
    lab = report.get("labelled")
    if lab:
        ci = lab["difference_ci"]
        ci_text = f"95% CI of the difference, positive = shadow better: {ci[0]:+.4f} to {ci[1]:+.4f}" if ci else "too few rows for a CI"
        print(f"  {lab['metric']} on {lab['rows']} labelled rows: champion {lab['champion']:.4f}, shadow "
              f"{lab['shadow']:.4f} ({ci_text}); better: {lab['better']}")
    if report.get("note"):
        print(f"note: {report['note']}")
    return EXIT_OK


def cmd_serve(args) -> int:
    from dsagent.serve import serve

    return serve(_resolve_model_ref(args), host=args.host, port=args.port, workers=args.workers, log=not args.no_log,
                 max_body_mb=args.max_body_mb, version=args.version, shadow=args.shadow)


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
