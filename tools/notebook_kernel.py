"""Running a notebook in a fresh ipykernel, within a per-cell and a total time budget. A library
module (no @tool): write_notebook and the forecast notebook both run their notebooks with it.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import time
import uuid

import nbformat


def execute(nb: nbformat.NotebookNode, cwd: str, timeout_cell: float, timeout_total: float) -> None:
    """Run every cell in a fresh ipykernel. Each cell gets at most `timeout_cell` seconds and never
    more than what is left of `timeout_total`; the kernel is always shut down afterwards.

    DSAGENT_KERNEL_TRANSPORT=ipc (set by the sandbox, which has no network) makes the kernel talk
    over unix sockets; their paths must stay under 108 bytes, so they live in a short temp dir."""
    from jupyter_client.manager import AsyncKernelManager
    from jupyter_core.utils import run_sync
    from nbclient import NotebookClient

    transport = os.environ.get("DSAGENT_KERNEL_TRANSPORT") or ("ipc" if os.name == "posix" else "tcp")
    scratch = tempfile.mkdtemp(prefix="nb-")
    # The async manager: with the blocking one, nbclient 0.11's per-cell timeout never fires.
    km = AsyncKernelManager(kernel_name="python3", transport=transport,
                       connection_file=os.path.join(scratch, f"kernel-{uuid.uuid4().hex[:8]}.json"))
    if transport == "ipc":
        km.ip = os.path.join(scratch, "k")
    deadline = time.monotonic() + timeout_total

    def cell_timeout(_cell) -> int:
        left = deadline - time.monotonic()
        if left <= 0:
            raise TimeoutError(f"notebook execution exceeded its total budget of {timeout_total:.0f}s")
        return max(1, int(min(timeout_cell, left)))

    client = NotebookClient(nb, km=km, timeout_func=cell_timeout, startup_timeout=int(min(60, max(10, timeout_total))),
                            resources={"metadata": {"path": cwd}}, allow_errors=False, record_timing=False)
    try:
        client.execute(cwd=cwd)
    finally:
        try:
            if km.has_kernel:
                run_sync(km.shutdown_kernel)(now=True)
        except Exception:
            pass
        try:
            run_sync(km.cleanup_resources)()
        except Exception:
            pass
        shutil.rmtree(scratch, ignore_errors=True)
