"""When a run's data goes through Dask instead of one process's memory (issue 23). Standard library
only: the runtime and the autopilot decide with it before any ML library loads.

With a cluster (--cluster), a directory of Parquet parts always does (nothing else reads one), and a
single file does when it is at least the threshold's size on disk (DSAGENT_DASK_MIN_MB, default
1024 MB): below it the in-memory workflow, with its every deliverable, is the better one and the
cluster runs its tuning trials. The runtime records the decision in session.json (`dask`), which
the tools and the autopilot read.
"""

from __future__ import annotations

import os
from pathlib import Path

MIN_MB_ENV = "DSAGENT_DASK_MIN_MB"
DEFAULT_MIN_MB = 1024.0
READABLE = (".parquet", ".pq", ".csv", ".txt")


def data_bytes(path: Path) -> int:
    if path.is_dir():
        return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())
    return path.stat().st_size


def threshold_mb() -> float:
    raw = os.environ.get(MIN_MB_ENV, "").strip()
    try:
        return float(raw) if raw else DEFAULT_MIN_MB
    except ValueError:
        return DEFAULT_MIN_MB


def dask_reason(path: Path, cluster: str | None) -> str | None:
    """Why this run reads its data with Dask (one line for session.json and the report), or None."""
    if not cluster:
        return None
    if path.is_dir():
        return f"{path.name} is a directory of parts, read partition by partition on the cluster"
    if path.suffix.lower() not in READABLE:
        return None
    mb, limit = data_bytes(path) / 2**20, threshold_mb()
    if mb >= limit:
        return f"{path.name} is {mb:,.0f} MB, at least the {limit:,.0f} MB threshold ({MIN_MB_ENV}) for reading it with Dask"
    return None
