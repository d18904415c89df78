"""`dsagent predict` on data larger than one process: Parquet parts in, Parquet parts out (issue 23).

A directory of Parquet parts is scored part by part, so memory holds one part at a time; output part
i holds the predictions of input part i, row for row and in order (the columns of `dsagent predict`).
With --cluster the parts are scored on the Dask workers (`map_partitions`) and written by them, so
the output directory must be one every worker reaches (a shared file system; any path for local:N).
Either way the model is the saved skops model: no Dask is needed to have trained it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable

import pandas as pd

from dsagent.tools.registry import ToolError
from dsagent.tools.serving import predict_frame

PARQUET = (".parquet", ".pq")


def input_parts(data: Path) -> list[Path]:
    if data.is_dir():
        parts = sorted(p for p in data.rglob("*") if p.is_file() and p.suffix.lower() in PARQUET)
        if not parts:
            raise ToolError(f"{data} has no Parquet parts (*.parquet); pass a directory of parts or a data file")
        return parts
    return [data]


def output_dir(out: Path | None) -> Path:
    if out is None or out.suffix.lower() in (".csv", ".tsv", ".txt"):
        raise ToolError("predicting on Parquet parts writes Parquet parts: give -o a directory (e.g. -o predictions/)")
    if out.is_file():
        raise ToolError(f"-o {out} is a file; Parquet parts need a directory")
    out.mkdir(parents=True, exist_ok=True)
    if any(out.glob("part-*.parquet")):
        raise ToolError(f"{out} already holds Parquet parts; choose an empty directory")
    return out


def predict_parts(model_ref: str | Path, data: Path, out: Path | None, *, cluster: str | None = None,
                  warn: Callable[[str], None] = print, version: str | None = None) -> dict[str, Any]:
    from dsagent.tools.model_io import load_model

    model, manifest = load_model(model_ref, version)
    parts = input_parts(Path(data))
    folder = output_dir(Path(out) if out is not None else None)
    if cluster:
        rows, columns, n_parts = _on_cluster(model, manifest, Path(data), folder, cluster)
    else:
        rows, columns, said = 0, [], set()

        def once(note: str) -> None:  # every part would repeat the same schema warning
            if note not in said:
                said.add(note)
                warn(note)

        for i, part in enumerate(parts):
            preds = predict_frame(model, manifest, pd.read_parquet(part), once)
            preds.to_parquet(folder / f"part-{i:05d}.parquet", index=False)
            rows, columns = rows + len(preds), list(preds.columns)
        n_parts = len(parts)
    return {"rows": rows, "columns": columns, "out": str(folder), "parts": n_parts, "model": manifest.get("model"),
            "task": manifest.get("task"), "noun": f"predictions in {n_parts} Parquet part(s)"}


def write_part(part: pd.DataFrame, model: Any, manifest: dict[str, Any], folder: str,
               partition_info: dict[str, Any] | None = None) -> pd.DataFrame:
    """On a worker: score one partition and write its Parquet part (the same code as one process);
    only the row count and the columns travel back."""
    preds = predict_frame(model, manifest, part, warn=lambda _note: None)
    if partition_info is not None:  # Dask's meta inference calls this on an empty frame first: nothing to write
        preds.to_parquet(Path(folder) / f"part-{partition_info['number']:05d}.parquet", index=False)
    return pd.DataFrame({"rows": [len(preds)]})


def _on_cluster(model: Any, manifest: dict[str, Any], data: Path, folder: Path, cluster: str) -> tuple[int, list[str], int]:
    from dsagent.tools.cluster import Cluster
    from dsagent.tools.dask_train import read_frame

    with Cluster(cluster):  # the Client becomes Dask's default scheduler while it is open
        ddf = read_frame(data)
        done = ddf.map_partitions(write_part, model, manifest, str(folder), meta={"rows": "int64"}).compute()
    import pyarrow.parquet as pq

    first = folder / "part-00000.parquet"
    return int(done["rows"].sum()), pq.read_schema(first).names if first.is_file() else [], len(done)
