"""Loading data, the ground rules: DataError and LoadInfo, the limits (module-level, so a
deployment or a test can tune them here: the other loader modules read them through this module),
which paths may be read, the memory a read may use, and what a file's first bytes say it is."""

from __future__ import annotations

import csv
import os
import re
import resource
import sys
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from dsagent.tools.registry import ToolError


class DataError(ToolError):
    """The data cannot be read as a table: one line, what is wrong and what to do."""

    def __init__(self, message: str):
        # Messages are shown to people and to the model as one line, whatever the cause said.
        super().__init__(" ".join(str(message).split()))


@dataclass
class LoadInfo:
    path: str
    format: str
    encoding: str | None = None
    delimiter: str | None = None
    notes: list[str] = field(default_factory=list)
    decimal: str | None = None
    compression: str | None = None
    sheet: str | None = None
    size_bytes: int = 0
    n_rows: int = 0
    n_cols: int = 0
    reader: str | None = None  # which CSV parser read the text: "arrow" (multi-threaded) or "pandas"

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


# ---------------------------------------------------------------------------------------------
# Limits (module-level so a deployment or a test can tune them)

SAMPLE_BYTES = 1 << 20  # what delimiter/encoding detection looks at
MAX_SAMPLE_BYTES = 16 << 20  # grown up to this when the first lines are very wide
MAX_COLUMNS = 20_000  # 10,000 columns load; beyond this a table is almost surely mis-parsed
MAX_DECOMPRESSED_BYTES = 4 << 30  # absolute cap for gzip/bz2/xz/zip members, whatever memory says
BOMB_RATIO = 1000  # expansions beyond this ratio (and over BOMB_MIN_BYTES) are refused
BOMB_MIN_BYTES = 64 << 20
# Peak memory of a read, as a multiple of the bytes pandas parses (measured roughly: the C parser
# holds its buffers and the finished columns at the same time).
MEMORY_FACTOR = {"text": 3.0, "json": 6.0, "parquet": 2.5, "excel": 3.0}

# Fields over 128 KiB are legal (the pandas C parser has no such limit); our own sniffing uses
# the csv module, whose default limit is 128 KiB.
csv.field_size_limit(min(sys.maxsize, 2**31 - 1))

_CTRL_BYTES = bytes(list(range(0, 9)) + [11, 12] + list(range(14, 32)) + [127])
_CTRL_RE = r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]"
_CTRL_PY = re.compile(_CTRL_RE)

_MAGIC = [
    (b"PAR1", "parquet"),
    (b"PK\x03\x04", "zip"),
    (b"PK\x05\x06", "zip"),  # empty zip archive
    (b"\x1f\x8b", "gzip"),
    (b"BZh", "bz2"),
    (b"\xfd7zXZ\x00", "xz"),
    (b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1", "xls"),
    (b"\x28\xb5\x2f\xfd", "zstd"),
    (b"\x89PNG", "binary:a PNG image"),
    (b"%PDF", "binary:a PDF document"),
    (b"\x7fELF", "binary:an executable"),
    (b"7z\xbc\xaf\x27\x1c", "binary:a 7-Zip archive"),
    (b"Rar!", "binary:a RAR archive"),
    (b"SQLite format 3\x00", "binary:an SQLite database"),
    (b"ARROW1", "binary:an Arrow IPC/Feather file"),
    (b"\xff\xd8\xff", "binary:a JPEG image"),
]

_EXT_FORMAT = {
    ".csv": "text", ".tsv": "text", ".tab": "text", ".txt": "text", ".dat": "text", ".psv": "text",
    ".parquet": "parquet", ".pq": "parquet", ".xlsx": "excel", ".xlsm": "excel", ".xls": "xls",
    ".json": "json", ".jsonl": "json", ".ndjson": "json", ".gz": "gzip", ".zip": "zip",
    ".bz2": "bz2", ".xz": "xz",
}


# ---------------------------------------------------------------------------------------------
# Paths and memory


def is_within_roots(path: str | Path, roots: list[str] | list[Path]) -> bool:
    """True when `path`, with every symlink and `..` resolved, lies inside one of `roots`.

    An empty `roots` list means no restriction.
    """
    if not roots:
        return True
    real = Path(os.path.realpath(path))
    for root in roots:
        r = Path(os.path.realpath(root))
        if real == r or r in real.parents:
            return True
    return False


def require_within_roots(path: str | Path, roots: list[str] | list[Path]) -> None:
    if not is_within_roots(path, roots):
        real = os.path.realpath(path)
        shown = ", ".join(str(r) for r in roots)
        raise DataError(
            f"data path {path} resolves to {real}, outside the allowed data roots ({shown}); "
            "copy the file under an allowed root or add its directory as a root"
        )


def available_memory() -> int | None:
    """Bytes this process can still allocate: the tightest of RLIMIT_AS headroom, the cgroup
    limit and the system's MemAvailable. None when nothing can be read."""
    limits: list[int] = []
    try:
        soft, _ = resource.getrlimit(resource.RLIMIT_AS)
        if soft not in (resource.RLIM_INFINITY, -1):
            vm = 0
            with open("/proc/self/status") as fh:
                for line in fh:
                    if line.startswith("VmSize:"):
                        vm = int(line.split()[1]) * 1024
                        break
            limits.append(max(0, soft - vm))
    except (OSError, ValueError):
        pass
    try:
        raw = Path("/sys/fs/cgroup/memory.max").read_text().strip()
        if raw != "max":
            used = int(Path("/sys/fs/cgroup/memory.current").read_text().strip())
            limits.append(max(0, int(raw) - used))
    except (OSError, ValueError):
        pass
    try:
        with open("/proc/meminfo") as fh:
            for line in fh:
                if line.startswith("MemAvailable:"):
                    limits.append(int(line.split()[1]) * 1024)
                    break
    except (OSError, ValueError):
        pass
    return min(limits) if limits else None


def _human(n: float) -> str:
    for unit in ("B", "KB", "MB", "GB", "TB"):
        if abs(n) < 1024 or unit == "TB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} TB"


def _check_memory(name: str, nbytes: int, kind: str, budget: int | None, what: str = "") -> None:
    if budget is None:
        return
    need = int(nbytes * MEMORY_FACTOR[kind])
    if need > budget:
        raise DataError(
            f"{name} is too large for the memory available: {what or _human(nbytes)} needs about "
            f"{_human(need)} to load but only {_human(budget)} is available; load a sample instead "
            "(e.g. the first 1,000,000 rows: head -n 1000001 file.csv > sample.csv) or raise the memory limit"
        )


def _sniff_kind(head: bytes) -> str:
    for magic, kind in _MAGIC:
        if head.startswith(magic):
            return kind
    return "text"


_KIND_LABEL = {
    "parquet": "Parquet", "zip": "a zip archive", "gzip": "gzip-compressed", "bz2": "bz2-compressed",
    "xz": "xz-compressed", "xls": "a legacy Excel .xls workbook", "zstd": "zstd-compressed", "text": "text",
    "excel": "an Excel workbook", "json": "JSON",
}


def _note_ext_mismatch(info: LoadInfo, name: str, ext: str, expected: str | None, actual: str, label: str) -> None:
    if expected is not None and expected != actual:
        info.notes.append(f"file is named {ext} but its content is {label} (magic bytes); read it as {label}")
