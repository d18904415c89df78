"""Test-only tools, imported by the worker through DSAGENT_TOOL_MODULES=sandbox_tools."""

from __future__ import annotations

import os
import signal
import time

from dsagent.tools.registry import ToolContext, ToolOutput, tool

# A worker that is slow to start (as one importing the ML stack is): for Ctrl-C during start-up.
time.sleep(float(os.environ.get("T_IMPORT_SECONDS", "0")))


@tool
def t_echo(ctx: ToolContext, text: str = "hi") -> ToolOutput:
    """Echo text back, with the worker's pid and the layers the tool sees."""
    return ToolOutput(summary={"text": text, "pid": os.getpid(), "layers": ctx.sandbox.get("layers")})


@tool
def t_sleep(ctx: ToolContext, seconds: float = 60) -> ToolOutput:
    """Sleep (a runaway tool)."""
    time.sleep(seconds)
    return ToolOutput(summary="slept")


@tool
def t_hog(ctx: ToolContext, gigabytes: float = 20) -> ToolOutput:
    """Allocate memory (a memory hog)."""
    block = bytearray(int(gigabytes * 2**30))
    return ToolOutput(summary=str(len(block)))


@tool
def t_env(ctx: ToolContext) -> ToolOutput:
    """The worker's environment."""
    return ToolOutput(summary=dict(os.environ))


@tool
def t_big(ctx: ToolContext, megabytes: int = 8) -> ToolOutput:
    """A reply (record) larger than the cap."""
    return ToolOutput(summary="big", record={"blob": "x" * (megabytes * 2**20)})


@tool
def t_spam(ctx: ToolContext, megabytes: int = 8) -> ToolOutput:
    """Write a lot to stderr (the worker log)."""
    import sys

    for _ in range(megabytes):
        sys.stderr.write("y" * 2**20)
    return ToolOutput(summary="spammed")


@tool
def t_crash(ctx: ToolContext) -> ToolOutput:
    """Die hard (SIGSEGV)."""
    os.kill(os.getpid(), signal.SIGSEGV)
    return ToolOutput(summary="unreachable")


@tool
def t_probe(ctx: ToolContext, read: list[str] = [], write: list[str] = []) -> ToolOutput:
    """Try to read and write paths; report what happened."""
    out = {}
    for path in read:
        try:
            with open(path, "rb") as f:
                out[path] = f"read {len(f.read(100))} bytes"
        except OSError as exc:
            out[path] = type(exc).__name__
    for path in write:
        try:
            with open(path, "w") as f:
                f.write("x")
            out[path] = "wrote"
        except OSError as exc:
            out[path] = type(exc).__name__
    return ToolOutput(summary=out)


@tool
def t_notebook(ctx: ToolContext) -> ToolOutput:
    """Execute a 2-cell notebook in a Jupyter kernel the way the notebook tool should."""
    import uuid

    import nbformat
    from jupyter_client.manager import KernelManager
    from nbclient import NotebookClient

    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("x = 20 + 1"), nbformat.v4.new_code_cell("print(x * 2)")])
    runtime = os.environ.get("JUPYTER_RUNTIME_DIR", ".")
    os.makedirs(runtime, exist_ok=True)
    km = KernelManager(kernel_name="python3", transport=os.environ.get("DSAGENT_KERNEL_TRANSPORT", "tcp"),
                       connection_file=os.path.join(runtime, f"kernel-{uuid.uuid4().hex[:8]}.json"))
    NotebookClient(nb, km=km, timeout=60).execute()
    return ToolOutput(summary={"stdout": nb.cells[1].outputs[0]["text"], "transport": km.transport})


@tool
def t_sklearn(ctx: ToolContext) -> ToolOutput:
    """Parallel scikit-learn (loky), optuna on SQLite in artifacts, a matplotlib figure."""
    import matplotlib.pyplot as plt
    import optuna
    from sklearn.datasets import make_classification
    from sklearn.ensemble import RandomForestClassifier
    from sklearn.model_selection import cross_val_score

    X, y = make_classification(n_samples=300, random_state=0)
    scores = cross_val_score(RandomForestClassifier(n_estimators=20, random_state=0), X, y, cv=3, n_jobs=2)
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(storage=f"sqlite:///{ctx.artifacts_dir / 'study.db'}")
    study.optimize(lambda t: t.suggest_float("x", -1, 1) ** 2, n_trials=3)
    plt.plot([1, 2, 3])
    plt.savefig(ctx.artifacts_dir / "fig.png")
    return ToolOutput(summary={"cv": float(scores.mean()), "best": study.best_value})


@tool
def t_proc(ctx: ToolContext, pid: int, secret: str) -> ToolOutput:
    """Hostile tool code: read another process's environment and command line through /proc."""
    return ToolOutput(summary=proc_probe(pid, secret))


def proc_probe(pid: int, secret: str) -> dict:
    """What reading /proc/<pid>/{environ,cmdline} gives, and every visible process holding `secret`."""
    out: dict = {"leaks": []}
    for what in ("environ", "cmdline"):
        try:
            with open(f"/proc/{pid}/{what}", "rb") as f:
                out[what] = "read" if f.read() is not None else "?"
        except OSError as exc:
            out[what] = type(exc).__name__
    for entry in filter(str.isdigit, os.listdir("/proc")):
        for what in ("environ", "cmdline"):
            try:
                with open(f"/proc/{entry}/{what}", "rb") as f:
                    if secret.encode() in f.read():
                        out["leaks"].append(f"{entry}/{what}")
            except OSError:
                pass
    return out


@tool
def t_exec(ctx: ToolContext, code: str) -> ToolOutput:
    """Hostile tool code: run a few lines that fill the dict `out`; return it."""
    scope: dict = {"out": {}}
    exec(code, scope)
    return ToolOutput(summary=scope["out"])
