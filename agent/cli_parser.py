"""The `dsagent` command line's parser, its usage errors and its exit codes (split out of
agent/cli.py, which runs the commands)."""

from __future__ import annotations

import argparse
from pathlib import Path

from dsagent.answers import DEFAULT_TIME_BUDGET, BadInput

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


def _version_option(p: argparse.ArgumentParser, what: str = "a version of the session's model") -> None:
    """--version VERSION, the same on every command that reads a saved model; `what` says what it picks."""
    p.add_argument("--version", metavar="VERSION", help=f"{what} (v1, v2, ...; default the active one, see `dsagent models`)")


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
    pred.add_argument("data", nargs="?", type=Path, help="rows to score (CSV/TSV/Parquet/Excel/JSON-lines, or a directory of Parquet parts: "
                                                          "Parquet parts out); for a forecast, "
                                                          "optional history that extends what the model saw")
    pred.add_argument("-o", "--output", type=Path, help="output CSV (required for tabular models; a forecast without it "
                                                        "prints CSV on stdout)")
    pred.add_argument("--horizon", type=int, metavar="N", help="forecast: steps ahead (default and maximum: the trained horizon)")
    pred.add_argument("--cluster", metavar="ADDRESS", help="local[:N] or tcp://HOST:PORT: score the partitions on this Dask "
                                                          "cluster and write Parquet parts into the -o directory")
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
    mon.add_argument("--since", metavar="ISO", help="with --from-log or --compare: only rows served at or after this time (UTC)")
    mon.add_argument("--compare", action="store_true",
                     help="compare the shadow (`dsagent serve --shadow VERSION`) with the champion on the traffic log: "
                          "agreement, and which scored better where requests carried the label")
    _version_option(mon, "check against this version's model and monitoring plan")
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
    srv.add_argument("--shadow", metavar="VERSION", help="a second version of the session's model scores every request "
                     "too; its predictions are logged beside the champion's, never returned (see monitor --compare)")
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
        description="Replays the session's decisions on NEW_DATA: the same task, features and derived features, and "
                    "one fit of the shipped model family with its already-tuned parameters (an ensemble keeps its "
                    "members and weights) on 70% of the rows. It runs no new search: no other family is "
                    "tried and nothing is re-tuned (for that, start a new `dsagent run` on the new data). Then it scores "
                    "the new model (challenger) and the active one (champion) on the same held-out 30% (the newest "
                    "by the session's time column, else a stratified sample) with a paired bootstrap. The challenger "
                    "becomes the active version only when the 95% CI of the "
                    "difference favours it; both versions stay (`dsagent models`), each with its own monitoring plan.",
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
