"""run_python: model-written analysis code, run in a confined child process of the worker.

The code never runs in the worker itself: a child process (started fresh for every call, so a
crash, a fork bomb or a leaked global cannot hurt the worker or the next call) inherits every
layer of the worker (bubblewrap, Landlock, seccomp, rlimits, pids cgroup) and, through
DSAGENT_CONFINE_PREFIX, gets a stricter seccomp filter (no setsid/setpgid, so all it starts stays
in one process group that is killed at the end) and a CPU-time limit.

The tool refuses to run unless filesystem and network confinement are both active, unless the
user started dsagent with --allow-unsandboxed (DSAGENT_ALLOW_UNSANDBOXED=1).
"""

from __future__ import annotations

import ast
import json
import os
import select
import signal
import subprocess
import sys
import time
from pathlib import Path

from dsagent.tools.registry import ToolContext, ToolError, ToolOutput, artifact_path, tool

OUTPUT_BUDGET = 6000  # characters the model reads
OUTPUT_HARD_CAP = 8 * 1024 * 1024  # bytes; past this the code is stopped (printing 1 GB)
# Which layers confine what, when the layers dict does not say (see agent/sandbox/layer.py).
DEFAULT_CONFINES = {"bubblewrap": ["filesystem", "network"], "landlock": ["filesystem"], "seccomp": ["network"]}


def missing_confinement(sandbox: dict) -> list[str]:
    """What run_python needs and the sandbox lacks, in words a user can act on."""
    covered: set[str] = set()
    for name, info in (sandbox.get("layers") or {}).items():
        if isinstance(info, dict) and info.get("active"):
            covered.update(info.get("confines") or DEFAULT_CONFINES.get(name, []))
    missing = []
    if "filesystem" not in covered:
        missing.append("filesystem confinement (bubblewrap or Landlock)")
    if "network" not in covered:
        missing.append("network confinement (bubblewrap or seccomp)")
    return missing


@tool
def run_python(ctx: ToolContext, code: str, timeout_s: float = 60) -> ToolOutput:
    """Run Python analysis code on the session's data and return what it prints.

    The dataset is preloaded as `df` (a pandas DataFrame), with `pd`, `np` and `plt`
    (matplotlib) imported; scikit-learn is available. The value of a final expression is
    printed, as in a notebook. Open matplotlib figures are saved as PNG files. Each call starts
    fresh: nothing carries over between calls. There is no network, and files can be written
    only in the working directory (the session's artifacts/python/). Output beyond a few
    thousand characters is truncated: print summaries, not whole tables.

    Args:
        code: Python source to execute.
        timeout_s: wall-clock limit in seconds (1 to 600).
    """
    missing = missing_confinement(ctx.sandbox)
    if missing and os.environ.get("DSAGENT_ALLOW_UNSANDBOXED") != "1":
        raise ToolError(f"run_python refuses to run model-written code without {' and '.join(missing)}; "
                        "install bubblewrap (apt install bubblewrap) or restart with --allow-unsandboxed "
                        "to accept the risk")
    timeout = max(1.0, min(float(timeout_s), 600.0))
    if ctx.deadline is not None:
        timeout = min(timeout, max(5.0, ctx.seconds_left() - 2))
    out_dir = artifact_path(ctx, "python/x").parent
    run = f"run-{len(list(out_dir.glob('run-*.py'))) + 1:03d}"
    (out_dir / f"{run}.py").write_text(code, encoding="utf-8")

    started = time.monotonic()
    status, output, exit_code = _execute(ctx, code, run, out_dir, timeout)
    seconds = round(time.monotonic() - started, 2)
    text = output.decode("utf-8", errors="replace")
    (out_dir / f"{run}.txt").write_text(text, encoding="utf-8")
    shown = _truncate(text, f"python/{run}.txt")
    files = {"code": f"python/{run}.py", "output": f"python/{run}.txt"}
    figures = sorted(p.name for p in out_dir.glob(f"{run}-fig*.png"))
    files.update({f"figure_{i + 1}": f"python/{name}" for i, name in enumerate(figures)})
    if status != "ok":
        hint = {
            "timeout": f"stopped by the wall-clock timeout after {timeout:.0f}s (make the code faster or raise timeout_s)",
            "output_limit": f"stopped after printing more than {OUTPUT_HARD_CAP // 2**20} MB (print less)",
            "error": f"the code failed (exit code {exit_code})",
        }.get(status, f"the process was killed by {status}"
              + (" (CPU time limit)" if status in ("SIGXCPU", "SIGKILL") else ""))
        raise ToolError(f"run_python: {hint}. Output:\n{shown}")
    return ToolOutput(
        summary={"status": status, "output": shown, "figures": [f"python/{n}" for n in figures], "seconds": seconds},
        record={"code": code, "status": status, "seconds": seconds, "output_chars": len(text), "files": files},
        files=files,
    )


def _execute(ctx: ToolContext, code: str, run: str, cwd: Path, timeout: float) -> tuple[str, bytes, int | None]:
    prefix = json.loads(os.environ.get("DSAGENT_CONFINE_PREFIX", "[]"))
    if prefix:
        prefix = prefix + ["--cpu", str(int(timeout) + 5), "--"]
    argv = prefix + [sys.executable, "-m", "dsagent.tools.run_python", "--child"]
    payload = json.dumps({"code": code, "ctx": ctx.to_json(), "run": run}).encode()
    env = dict(os.environ)
    proc = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            cwd=cwd, env=env, process_group=0)  # its own group: killed whole at the end
    chunks: list[bytes] = []
    total, status = 0, None
    deadline = time.monotonic() + timeout
    try:
        try:
            proc.stdin.write(payload)
            proc.stdin.close()
        except BrokenPipeError:
            pass
        fd = proc.stdout.fileno()
        poller = select.poll()
        poller.register(fd, select.POLLIN)
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                status = "timeout"
                break
            if not poller.poll(min(left, 0.2) * 1000):
                if proc.poll() is not None:
                    break  # the code is done; a background process may hold the pipe open
                continue
            chunk = os.read(fd, 1 << 16)
            if not chunk:
                break
            total += len(chunk)
            if total > OUTPUT_HARD_CAP:
                status = "output_limit"
                break
            chunks.append(chunk)
    finally:
        _kill_group(proc)  # also whatever the code left running in the background
        proc.stdout.close()
        returncode = proc.wait()
    if status is None:
        if returncode == 0:
            status = "ok"
        elif returncode < 0:
            status = signal.Signals(-returncode).name
        else:
            status = "error"
    return status, b"".join(chunks), returncode


def _kill_group(proc: subprocess.Popen) -> None:
    # Repeat: a fork bomb may fork between our signal and its death. Processes cannot leave the
    # group (the confine step denies setsid/setpgid), and a pids cgroup bounds how many there are.
    pgid = proc.pid
    try:
        os.killpg(pgid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        return
    proc.wait()  # reap the leader: a zombie would keep the group "alive"
    for _ in range(400):
        try:
            os.killpg(pgid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            return
        time.sleep(0.005)


def _truncate(text: str, where: str) -> str:
    if len(text) <= OUTPUT_BUDGET:
        return text
    head, tail = text[: OUTPUT_BUDGET * 3 // 4], text[-OUTPUT_BUDGET // 4:]
    return f"{head}\n... [{len(text) - len(head) - len(tail)} characters omitted; full output in {where}] ...\n{tail}"


# ---------------------------------------------------------------- inside the child process


def _child() -> None:
    import traceback

    payload = json.loads(sys.stdin.read())
    sys.stdin = open(os.devnull)
    namespace: dict = {"__name__": "__main__"}
    exit_code = 0
    try:
        tree = ast.parse(payload["code"], "<run_python>")
        _preload(namespace, {n.id for n in ast.walk(tree) if isinstance(n, ast.Name)}, payload["ctx"])
        last = tree.body.pop() if tree.body and isinstance(tree.body[-1], ast.Expr) else None
        exec(compile(tree, "<run_python>", "exec"), namespace)
        if last is not None:
            value = eval(compile(ast.Expression(last.value), "<run_python>", "eval"), namespace)
            if value is not None:
                print(repr(value))
    except BaseException as exc:  # SystemExit included: report, then exit non-zero
        if not (isinstance(exc, SystemExit) and exc.code in (None, 0)):
            tb = exc.__traceback__.tb_next if exc.__traceback__ else None  # drop this frame
            traceback.print_exception(type(exc), exc, tb, file=sys.stdout)
            exit_code = 1
    finally:
        if "matplotlib.pyplot" in sys.modules:
            _save_figures(sys.modules["matplotlib.pyplot"], payload["run"])
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(exit_code)


def _preload(namespace: dict, names: set[str], ctx_json: dict) -> None:
    """Import pd/np/plt and load df only when the code uses them: pandas and pyplot take a
    second or two to import, and most hostile or tiny snippets need neither."""
    import importlib

    for alias, module in (("np", "numpy"), ("pd", "pandas"), ("plt", "matplotlib.pyplot")):
        if alias in names:
            if module == "matplotlib.pyplot":
                importlib.import_module("matplotlib").use("Agg")
            namespace[alias] = importlib.import_module(module)
    ctx = ToolContext.from_json(ctx_json)
    if "df" in names and ctx.data_path is not None:
        try:
            from dsagent.tools.data import load_dataset

            namespace["df"] = load_dataset(ctx)[0]
        except Exception as exc:  # the analysis may not need the data; say why it is missing
            print(f"[run_python] the dataset was not preloaded: {exc}")


def _save_figures(plt, run: str) -> None:
    for i, num in enumerate(plt.get_fignums()):
        try:
            plt.figure(num).savefig(f"{run}-fig{i + 1}.png", dpi=100, bbox_inches="tight")
        except Exception as exc:
            print(f"[run_python] figure {num} could not be saved: {exc}")


if __name__ == "__main__" and sys.argv[1:2] == ["--child"]:
    _child()
