"""Loading tabular data: CSV/TSV/other delimiters, Parquet, Excel (.xlsx), JSON lines and JSON arrays.

Every guess (format, encoding, delimiter, decimal comma, header, renamed columns, cleaned
cells) is written to `LoadInfo.notes`, so nothing is silently wrong. Broken or hostile input
raises `DataError` with one line: what is wrong and what to do.

The file's bytes decide the format (magic bytes), not its extension: a Parquet file named .csv
is read as Parquet, with a note. Sizes are checked against the memory this process can still
use before anything big is read, and compressed input (gzip/bz2/xz/zip, and the zip inside an
.xlsx) is capped while it is expanded, so a small bomb cannot fill memory.

The loader in sections: this module (entry points and format dispatch), tools/data_limits.py
(errors, limits, roots, memory), tools/data_archives.py (compressed input, Parquet, Excel),
tools/data_text.py (encoding, delimiter, CSV, JSON), tools/data_clean.py (after any format).
"""

from __future__ import annotations

import functools
import io
import os
from pathlib import Path

import pandas as pd

from dsagent.tools import data_limits as limits
from dsagent.tools.data_archives import _decompress_capped, _read_parquet, _read_zip
from dsagent.tools.data_clean import _postprocess, normalize_columns
from dsagent.tools.data_limits import (DataError, LoadInfo, _EXT_FORMAT, _KIND_LABEL, _human, _note_ext_mismatch,
                                       _sniff_kind, available_memory, require_within_roots)
from dsagent.tools.data_text import _read_text
from dsagent.tools.registry import ToolContext


# ---------------------------------------------------------------------------------------------
# Entry points


def load_table(path: str | Path, *, memory_budget: int | None = None) -> tuple[pd.DataFrame, LoadInfo]:
    """Read one data file into a DataFrame. Raises DataError (one line) when it cannot.

    `memory_budget` (bytes) overrides the detected free memory used for the size check.
    """
    p = Path(path)
    name = p.name
    if not p.exists():
        raise DataError(f"data file {p} not found; check the path")
    if p.is_dir():
        raise DataError(f"{p} is a directory; pass a single data file (CSV, Parquet, Excel or JSON)")
    if not p.is_file():
        raise DataError(f"{p} is not a regular file (device, FIFO or socket); pass a data file")
    try:
        size = p.stat().st_size
        with open(p, "rb") as fh:
            head = fh.read(limits.SAMPLE_BYTES)
    except PermissionError:
        raise DataError(f"cannot read {p}: permission denied; check the file's permissions") from None
    except OSError as exc:
        raise DataError(f"cannot read {p}: {exc.strerror or exc}; check the file") from None
    if size == 0:
        raise DataError(f"{name} is empty (0 bytes); export the data again")
    budget = memory_budget if memory_budget is not None else available_memory()
    info = LoadInfo(path=str(p), format="unknown", size_bytes=size)

    kind = _sniff_kind(head)
    ext = p.suffix.lower()
    try:
        df = _dispatch(p, head, kind, ext, info, budget)
    except DataError:
        raise
    except MemoryError:
        raise DataError(
            f"ran out of memory reading {name} ({_human(size)}); load a sample instead or raise the memory limit"
        ) from None
    df = _postprocess(df, info, name)
    info.n_rows, info.n_cols = int(df.shape[0]), int(df.shape[1])
    return df, info


# Up to this size the surfaces read the whole file to check the column names callers give
# (answers naming columns); above it only Parquet, whose schema is cheap, is checked up front.
COLUMN_CHECK_BYTES = 64 << 20


def column_names(path: str | Path, max_bytes: int = COLUMN_CHECK_BYTES) -> list[str] | None:
    """The column names the tools will see for this file, or None when finding them would mean
    reading a non-Parquet file larger than `max_bytes` (then nothing is checked before the run)."""
    p = Path(path)
    if p.is_dir():  # Parquet parts (read with Dask on a cluster): the first part's schema names the columns
        parts = sorted(q for q in p.rglob("*") if q.is_file() and q.suffix.lower() in (".parquet", ".pq"))
        if not parts:
            raise DataError(f"{p} is a directory without Parquet parts (*.parquet); pass a data file or a directory of parts")
        p = parts[0]
    st = p.stat()
    if st.st_size <= max_bytes:
        return list(_read_column_names(str(p.resolve()), st.st_size, st.st_mtime_ns))
    if p.suffix.lower() in (".parquet", ".pq"):
        import pyarrow.parquet as pq

        names, _ = normalize_columns(list(pq.read_schema(p).names))
        return [str(c) for c in names]
    return None


@functools.lru_cache(maxsize=4)  # at start-up the CLI, the answers check, the goal and derived features all ask
def _read_column_names(path: str, size: int, mtime_ns: int) -> tuple[str, ...]:
    return tuple(str(c) for c in load_table(path)[0].columns)


def load_bytes(data: bytes, name: str, fmt: str, *, memory_budget: int | None = None) -> tuple[pd.DataFrame, LoadInfo]:
    """A table sent over the wire (an HTTP body): `fmt` is "csv" or "json" (an array of records,
    JSON lines, or one list of records under a key). The same detection and clean-up as a file
    read by `load_table`, so `dsagent serve` and `dsagent predict` see the same frame."""
    if not data.strip():
        raise DataError(f"{name} is empty; send CSV with a header row or a JSON array of records")
    info = LoadInfo(path=name, format="unknown", size_bytes=len(data))
    budget = memory_budget if memory_budget is not None else available_memory()
    ext = ".json" if fmt == "json" else ".csv"
    try:
        df = _read_text(data, data[:limits.SAMPLE_BYTES], ext, info, budget, name)
    except MemoryError:
        raise DataError(f"ran out of memory reading {name} ({_human(len(data))}); send fewer rows per request") from None
    df = _postprocess(df, info, name)
    info.n_rows, info.n_cols = int(df.shape[0]), int(df.shape[1])
    return df, info


_CACHE: dict[tuple[str, int, int], tuple[pd.DataFrame, LoadInfo]] = {}


def load_dataset(ctx: ToolContext) -> tuple[pd.DataFrame, LoadInfo]:
    """The session's dataset, cached in the (long-lived) worker by (path, mtime, size).

    Callers must not mutate the returned frame in place (copy first, or derive new frames:
    pandas copy-on-write makes derived frames safe).
    """
    if ctx.data_path is None:
        raise DataError("this session has no dataset; start it with a data file")
    path = Path(ctx.data_path)
    require_within_roots(path, ctx.roots)
    if not path.exists():
        raise DataError(f"data file {path} not found; check the path")
    st = path.stat()
    key = (os.path.realpath(path), st.st_mtime_ns, st.st_size)
    if key not in _CACHE:
        _CACHE.clear()
        _CACHE[key] = load_table(path)
    return _CACHE[key]


# ---------------------------------------------------------------------------------------------
# Format dispatch


def _dispatch(p: Path, head: bytes, kind: str, ext: str, info: LoadInfo, budget: int | None) -> pd.DataFrame:
    name = p.name
    expected = _EXT_FORMAT.get(ext)
    if kind.startswith("binary:"):
        raise DataError(
            f"{name} is not a table: its content is {kind.split(':', 1)[1]}; pass a CSV, Parquet, Excel or JSON file"
        )
    if kind == "xls":
        raise DataError(
            f"{name} is a legacy Excel .xls workbook, which is not supported; save it as .xlsx or CSV and load that"
        )
    if kind == "zstd":
        raise DataError(f"{name} is zstd-compressed, which is not supported; decompress it (zstd -d) or save as gzip")
    if kind == "parquet":
        _note_ext_mismatch(info, name, ext, expected, "parquet", "Parquet")
        return _read_parquet(p, info, budget)
    if kind == "zip":
        return _read_zip(p, ext, expected, info, budget)
    if kind in ("gzip", "bz2", "xz"):
        info.compression = kind
        data = _decompress_capped(p, kind, info, budget)
        inner = _sniff_kind(data[:16])
        if inner == "parquet":
            info.notes.append(f"{kind}-compressed Parquet: decompressed in memory")
            return _read_parquet(io.BytesIO(data), info, budget, name=name)
        if inner != "text":
            raise DataError(f"{name} decompresses to {_KIND_LABEL.get(inner, inner)}, not a table; extract it first")
        inner_ext = Path(p.stem).suffix.lower() if ext in (".gz", ".bz2", ".xz") else ext
        return _read_text(data, data[:limits.SAMPLE_BYTES], inner_ext, info, budget, name)
    # Plain text. A file named .parquet/.xlsx with text content is read as text, with a note.
    if expected in ("parquet", "excel", "xls", "gzip", "zip", "bz2", "xz"):
        info.notes.append(f"file is named {ext} but its content is plain text; read it as text")
    return _read_text(p, head, ext, info, budget, name)
