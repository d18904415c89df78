"""Loading tabular data: CSV/TSV/other delimiters, Parquet, Excel (.xlsx), JSON lines and JSON arrays.

Every guess (format, encoding, delimiter, decimal comma, header, renamed columns, cleaned
cells) is written to `LoadInfo.notes`, so nothing is silently wrong. Broken or hostile input
raises `DataError` with one line: what is wrong and what to do.

The file's bytes decide the format (magic bytes), not its extension: a Parquet file named .csv
is read as Parquet, with a note. Sizes are checked against the memory this process can still
use before anything big is read, and compressed input (gzip/bz2/xz/zip, and the zip inside an
.xlsx) is capped while it is expanded, so a small bomb cannot fill memory.
"""

from __future__ import annotations

import bz2
import codecs
import csv
import functools
import gzip
import io
import json
import lzma
import math
import os
import re
import resource
import sys
import warnings
import zipfile
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from dsagent.tools.registry import ToolContext, ToolError


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
            head = fh.read(SAMPLE_BYTES)
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
        df = _read_text(data, data[:SAMPLE_BYTES], ext, info, budget, name)
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
        return _read_text(data, data[:SAMPLE_BYTES], inner_ext, info, budget, name)
    # Plain text. A file named .parquet/.xlsx with text content is read as text, with a note.
    if expected in ("parquet", "excel", "xls", "gzip", "zip", "bz2", "xz"):
        info.notes.append(f"file is named {ext} but its content is plain text; read it as text")
    return _read_text(p, head, ext, info, budget, name)


def _note_ext_mismatch(info: LoadInfo, name: str, ext: str, expected: str | None, actual: str, label: str) -> None:
    if expected is not None and expected != actual:
        info.notes.append(f"file is named {ext} but its content is {label} (magic bytes); read it as {label}")


# ---------------------------------------------------------------------------------------------
# Compressed input


def _decompress_capped(p: Path, kind: str, info: LoadInfo, budget: int | None) -> bytes:
    opener = {"gzip": gzip.open, "bz2": bz2.open, "xz": lzma.open}[kind]
    compressed = p.stat().st_size
    cap = _decompress_cap(budget)
    out = bytearray()
    try:
        with opener(p, "rb") as fh:
            while True:
                chunk = fh.read(1 << 22)
                if not chunk:
                    break
                out += chunk
                _check_expansion(p.name, kind, compressed, len(out), cap)
    except (OSError, EOFError, lzma.LZMAError, ValueError) as exc:
        if isinstance(exc, DataError):
            raise
        raise DataError(f"{p.name} is a corrupt or truncated {kind} file ({exc}); re-create or re-download it") from None
    info.notes.append(f"{kind}-compressed: {_human(compressed)} expanded to {_human(len(out))} in memory")
    return bytes(out)


def _decompress_cap(budget: int | None) -> int:
    cap = MAX_DECOMPRESSED_BYTES
    if budget is not None:
        # The expanded bytes and the parsed frame live together: leave room for both.
        cap = min(cap, int(budget / (1 + MEMORY_FACTOR["text"])))
    return max(cap, 1 << 20)


def _check_expansion(name: str, kind: str, compressed: int, expanded: int, cap: int) -> None:
    ratio = expanded / max(compressed, 1)
    if expanded > cap or (ratio > BOMB_RATIO and expanded > BOMB_MIN_BYTES):
        raise DataError(
            f"{name} ({kind}) expands beyond {_human(min(expanded, cap) if expanded > cap else expanded)} "
            f"(over {ratio:.0f}x its compressed size) and was not decompressed further (possible decompression bomb); "
            "decompress it yourself and load a sample"
        )


def _read_zip(p: Path, ext: str, expected: str | None, info: LoadInfo, budget: int | None) -> pd.DataFrame:
    name = p.name
    try:
        zf = zipfile.ZipFile(p)
        members = [m for m in zf.infolist() if not m.is_dir()]
    except (zipfile.BadZipFile, OSError, ValueError) as exc:
        label = "Excel workbook" if expected == "excel" else "zip archive"
        raise DataError(f"{name} is a corrupt {label} ({exc}); re-export or re-download it") from None
    with zf:
        names = {m.filename for m in members}
        if "xl/workbook.xml" in names or "[Content_Types].xml" in names and any(n.startswith("xl/") for n in names):
            _note_ext_mismatch(info, name, ext, expected, "excel", "an Excel workbook")
            _check_zip_bomb(name, members, p.stat().st_size, budget, "spreadsheet")
            return _read_excel(p, info, budget, sum(m.file_size for m in members))
        if "[Content_Types].xml" in names:
            raise DataError(f"{name} is an Office document but not an Excel workbook; export the table as .xlsx or CSV")
        data_members = [m for m in members if not m.filename.startswith(("__MACOSX/", "."))]
        if len(data_members) != 1:
            listing = ", ".join(m.filename for m in data_members[:5]) or "nothing"
            raise DataError(
                f"{name} is a zip archive with {len(data_members)} files ({listing}); extract the one table you want and load it"
            )
        member = data_members[0]
        _check_zip_bomb(name, [member], p.stat().st_size, budget, "zip")
        cap = _decompress_cap(budget)
        out = bytearray()
        try:
            with zf.open(member) as fh:
                while True:
                    chunk = fh.read(1 << 22)
                    if not chunk:
                        break
                    out += chunk
                    # The size in the zip header can lie: cap what is actually produced.
                    _check_expansion(name, "zip", member.compress_size or 1, len(out), cap)
        except (zipfile.BadZipFile, OSError, EOFError, ValueError, NotImplementedError) as exc:
            if isinstance(exc, DataError):
                raise
            raise DataError(f"{name}: cannot extract {member.filename} ({exc}); re-create the archive") from None
    data = bytes(out)
    info.compression = "zip"
    info.notes.append(f"zip archive: read its single member {member.filename!r} ({_human(len(data))})")
    inner = _sniff_kind(data[:16])
    if inner == "parquet":
        return _read_parquet(io.BytesIO(data), info, budget, name=name)
    if inner != "text":
        raise DataError(f"{name}: member {member.filename} is {_KIND_LABEL.get(inner, inner)}, not a table; extract it first")
    return _read_text(data, data[:SAMPLE_BYTES], Path(member.filename).suffix.lower(), info, budget, name)


def _check_zip_bomb(name: str, members: list[zipfile.ZipInfo], compressed: int, budget: int | None, what: str) -> None:
    total = sum(m.file_size for m in members)
    cap = _decompress_cap(budget)
    for m in members:
        ratio = m.file_size / max(m.compress_size, 1)
        if ratio > BOMB_RATIO and m.file_size > BOMB_MIN_BYTES:
            raise DataError(
                f"{name}: member {m.filename} expands {ratio:.0f}x to {_human(m.file_size)} (possible {what} bomb); "
                "refusing to open it; re-save the data as CSV or Parquet"
            )
    if total > cap:
        raise DataError(
            f"{name} expands to {_human(total)} ({total / max(compressed, 1):.0f}x its size), more than the "
            f"{_human(cap)} allowed here (possible {what} bomb or simply too large); re-save a sample as CSV or Parquet"
        )


# ---------------------------------------------------------------------------------------------
# Parquet and Excel


def _read_parquet(src: Path | io.BytesIO, info: LoadInfo, budget: int | None, name: str | None = None) -> pd.DataFrame:
    import pyarrow as pa
    import pyarrow.parquet as pq

    name = name or Path(str(src)).name
    info.format = "parquet"
    try:
        pf = pq.ParquetFile(src)
        meta = pf.metadata
        uncompressed = sum(meta.row_group(i).total_byte_size for i in range(meta.num_row_groups))
        if meta.num_columns > MAX_COLUMNS:
            raise DataError(
                f"{name} has {meta.num_columns:,} columns, more than the {MAX_COLUMNS:,} supported; select the columns you need"
            )
        _check_memory(name, uncompressed, "parquet", budget, f"{meta.num_rows:,} rows ({_human(uncompressed)} uncompressed)")
        table = pf.read()
        df = table.to_pandas()
    except DataError:
        raise
    except MemoryError:
        raise
    except (pa.ArrowException, OSError, ValueError, TypeError, IndexError) as exc:
        msg = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise DataError(f"{name} is a corrupt or unreadable Parquet file ({msg}); re-export it") from None
    if not isinstance(df.index, pd.RangeIndex):
        df = df.reset_index()
        info.notes.append("Parquet file stored an index; it was kept as ordinary column(s)")
    return df


def _read_excel(p: Path, info: LoadInfo, budget: int | None, uncompressed: int) -> pd.DataFrame:
    info.format = "excel"
    _check_memory(p.name, uncompressed, "excel", budget, f"a workbook of {_human(uncompressed)} uncompressed XML")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # openpyxl warns about styles and data validation
            book = pd.ExcelFile(p, engine="openpyxl")
            sheets = book.sheet_names
            if not sheets:
                raise DataError(f"{p.name} has no worksheets; save the table in the first sheet")
            df = book.parse(sheets[0])
            book.close()
    except DataError:
        raise
    except MemoryError:
        raise
    except Exception as exc:  # openpyxl raises many unrelated types on corrupt input
        msg = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise DataError(f"{p.name} is a corrupt or unreadable Excel workbook ({msg[:200]}); re-save it as .xlsx or CSV") from None
    info.sheet = str(sheets[0])
    if len(sheets) > 1:
        others = ", ".join(repr(s) for s in sheets[1:6]) + (" ..." if len(sheets) > 6 else "")
        info.notes.append(f"read the first sheet {sheets[0]!r} of {len(sheets)} (others: {others})")
    else:
        info.notes.append(f"read sheet {sheets[0]!r}")
    # pandas names blank header cells "Unnamed: N": rename them like the CSV path does.
    df.columns = [f"unnamed_{m.group(1)}" if isinstance(c, str) and (m := re.fullmatch(r"Unnamed: (\d+)", c)) else c
                  for c in df.columns]
    return df


# ---------------------------------------------------------------------------------------------
# Text: encoding, delimiter, decimal comma, header


def _detect_encoding(sample: bytes, info: LoadInfo) -> str:
    if sample.startswith(codecs.BOM_UTF8):
        info.notes.append("encoding: UTF-8 with BOM")
        return "utf-8-sig"
    if sample.startswith((codecs.BOM_UTF32_LE, codecs.BOM_UTF32_BE)):
        info.notes.append("encoding: UTF-32 (byte-order mark)")
        return "utf-32"
    if sample.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        info.notes.append("encoding: UTF-16 (byte-order mark)")
        return "utf-16"
    probe = sample[:4096]
    if len(probe) >= 4:
        even_nul = probe[0::2].count(0) / len(probe[0::2])
        odd_nul = probe[1::2].count(0) / max(len(probe[1::2]), 1)
        if odd_nul > 0.4 and even_nul < 0.05:
            info.notes.append("encoding: UTF-16 little-endian without byte-order mark (detected from NUL pattern)")
            return "utf-16-le"
        if even_nul > 0.4 and odd_nul < 0.05:
            info.notes.append("encoding: UTF-16 big-endian without byte-order mark (detected from NUL pattern)")
            return "utf-16-be"
    decoder = codecs.getincrementaldecoder("utf-8")("strict")
    try:
        decoder.decode(sample, final=False)  # an incomplete character at the cut is fine
        return "utf-8"
    except UnicodeDecodeError as exc:
        return _guess_legacy_encoding(sample, info, exc.start)


_LATIN = {"cp1252", "latin_1", "iso8859_15", "iso8859_1", "cp1250", "cp1257", "iso8859_2", "iso8859_10",
          "cp850", "cp852", "cp775", "mac_roman", "mac_latin2", "mac_iceland", "iso8859_3", "iso8859_4",
          "iso8859_9", "cp1254", "iso8859_13", "iso8859_14", "iso8859_16", "cp437", "cp858", "cp1258"}
_NON_LATIN_TRUSTED = {"cp1251", "koi8_r", "koi8_u", "mac_cyrillic", "cp866", "iso8859_5", "cp932", "shift_jis",
                      "euc_jp", "iso2022_jp", "gb2312", "gbk", "gb18030", "big5", "big5hkscs", "cp949",
                      "euc_kr", "cp1253", "iso8859_7", "cp1255", "iso8859_8", "cp1256", "iso8859_6", "cp874",
                      "tis_620"}


def _guess_legacy_encoding(sample: bytes, info: LoadInfo, bad_offset: int) -> str:
    """Not UTF-8. Western files are most often cp1252 (a superset of Latin-1's printable range);
    charset-normalizer decides only when it is confident about a non-Latin script."""
    guess = None
    try:
        from charset_normalizer import from_bytes

        results = from_bytes(sample[:262144])
        best = results.best()
        if best is not None:
            enc = best.encoding
            candidates = [m.encoding for m in results][:3]
            multibyte = enc in {"cp932", "shift_jis", "euc_jp", "gb2312", "gbk", "gb18030", "big5", "cp949", "euc_kr"}
            if enc in _NON_LATIN_TRUSTED and "cp1252" not in candidates and (multibyte or best.coherence >= 0.0):
                guess = enc
    except Exception:  # detection is a hint only
        guess = None
    if guess is None:
        try:
            sample.decode("cp1252")
            guess = "cp1252"
        except UnicodeDecodeError:
            guess = "latin-1"
    info.notes.append(
        f"encoding: not valid UTF-8 (first invalid byte at offset {bad_offset}); read as {guess} — "
        "if accented letters look wrong, re-save the file as UTF-8"
    )
    return guess


def _decode_sample(head: bytes, encoding: str, complete: bool) -> str:
    dec = codecs.getincrementaldecoder(encoding)("replace")
    text = dec.decode(head, final=complete)
    if not complete:
        # Drop the last (possibly cut) line.
        cut = max(text.rfind("\n"), text.rfind("\r"))
        if cut > 0:
            text = text[:cut]
    return text


_CANDIDATE_DELIMITERS = [",", "\t", ";", "|"]
_DELIM_NAMES = {",": "comma", "\t": "tab", ";": "semicolon", "|": "pipe", ":": "colon", " ": "space"}


def _rows(sample: str, delim: str, limit: int = 200) -> list[list[str]]:
    out: list[list[str]] = []
    try:
        for row in csv.reader(io.StringIO(sample, newline=""), delimiter=delim, quotechar='"', doublequote=True):
            if not row or (len(row) == 1 and not row[0].strip()):
                continue
            out.append(row)
            if len(out) >= limit:
                break
    except csv.Error:
        pass  # an unterminated quote in the sample: keep the rows read so far
    return out


def _detect_delimiter(sample: str, ext: str, info: LoadInfo) -> str:
    """csv.Sniffer's guess, checked: the delimiter must split the header and the rows into the
    same number of fields. Falls back to the most consistent candidate."""
    sniffed = None
    try:
        sniffed = csv.Sniffer().sniff(sample[:65536], delimiters="".join(_CANDIDATE_DELIMITERS)).delimiter
    except csv.Error:
        sniffed = None
    scored = []
    for d in _CANDIDATE_DELIMITERS:
        rows = _rows(sample, d)
        if not rows:
            continue
        header_n = len(rows[0])
        data = [len(r) for r in rows[1:]]
        consistency = (sum(1 for n in data if n == header_n) / len(data)) if data else 1.0
        if header_n > 1:
            scored.append((consistency, d == sniffed, d == "\t" and ext in (".tsv", ".tab"), header_n, d))
    if not scored:
        info.notes.append("one column: no delimiter among , ; tab | splits the header (read as a single column)")
        return ","
    scored.sort(key=lambda t: (round(t[0], 2), t[1], t[2], t[3]), reverse=True)
    best = scored[0]
    delim = best[4]
    if sniffed and sniffed != delim:
        info.notes.append(
            f"delimiter: {_DELIM_NAMES[delim]} (csv.Sniffer suggested {_DELIM_NAMES.get(sniffed, repr(sniffed))}, "
            "but it does not split rows consistently)"
        )
    elif delim != "," or ext not in (".csv", ""):
        info.notes.append(f"delimiter: {_DELIM_NAMES[delim]} (detected)")
    if ext == ".tsv" and delim != "\t":
        info.notes.append(f"file is named .tsv but is {_DELIM_NAMES[delim]}-separated; read it as such")
    return delim


_DEC_COMMA = re.compile(r"^[+-]?(\d{1,3}(\.\d{3})+|\d+),\d+$")
_THOUSANDS_DOT = re.compile(r"^[+-]?\d{1,3}(\.\d{3})+(,\d+)?$")
_DEC_DOT = re.compile(r"^[+-]?\d*\.\d+$")


def _detect_decimal_comma(rows: list[list[str]], delim: str, info: LoadInfo) -> tuple[str, str | None]:
    if delim == "," or len(rows) < 2:
        return ".", None
    header, data = rows[0], rows[1:]
    hits: list[str] = []
    dot_hits = 0
    thousands = False
    for j in range(len(header)):
        cells = [r[j].strip() for r in data if j < len(r) and r[j].strip()]
        if not cells:
            continue
        n_comma = sum(1 for c in cells if _DEC_COMMA.match(c))
        dot_hits += sum(1 for c in cells if _DEC_DOT.match(c))
        if n_comma and n_comma >= 0.8 * len(cells):
            hits.append(header[j])
            thousands = thousands or any(_THOUSANDS_DOT.match(c) for c in cells)
    if not hits or dot_hits > 0 and not thousands:
        return ".", None
    shown = ", ".join(repr(h) for h in hits[:5]) + (" ..." if len(hits) > 5 else "")
    info.notes.append(
        f"decimal commas detected (e.g. in {shown}); numbers read with decimal=','"
        + (" and '.' as thousands separator" if thousands else "")
    )
    return ",", "." if thousands else None


_NUMBER = re.compile(r"^\s*[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?\s*$")


def _header_is_data(rows: list[list[str]]) -> bool:
    if len(rows) < 2:
        return False
    header = rows[0]
    return len(header) > 1 and all(_NUMBER.match(c) for c in header)


def _looks_like_json(text: str) -> bool:
    """A JSON array of records or JSON lines, not a CSV whose first header happens to be "[id]"."""
    if re.match(r"\[\s*(\{|\])", text):
        return True
    if text.startswith("{"):
        first = text.split("\n", 1)[0].strip()
        try:
            return isinstance(json.loads(first), dict)
        except ValueError:
            return bool(re.match(r"\{\s*(\"|\})", text))
    return False


def _read_text(src: Path | bytes, head: bytes, ext: str, info: LoadInfo, budget: int | None, name: str) -> pd.DataFrame:
    total = len(src) if isinstance(src, bytes) else info.size_bytes
    complete = len(head) >= total
    if not complete and head.count(b"\n") < 3 and isinstance(src, Path):
        # Very wide rows (thousands of columns): grow the sample until it holds a few lines.
        with open(src, "rb") as fh:
            head = fh.read(MAX_SAMPLE_BYTES)
        complete = len(head) >= total
    encoding = _detect_encoding(head, info)
    info.encoding = encoding
    sample = _decode_sample(head, encoding, complete)
    stripped = sample.lstrip("\ufeff \t\r\n")
    if not stripped:
        if complete:
            raise DataError(f"{name} is empty (only blank lines or whitespace); export the data again")
    if ext in (".json", ".jsonl", ".ndjson") or _looks_like_json(stripped):
        return _read_json(src, stripped, encoding, ext, info, budget, name)
    info.format = "csv"
    nul_ratio = head.count(0) / max(len(head), 1) if not encoding.startswith("utf-16") and not encoding.startswith("utf-32") else 0.0
    if nul_ratio > 0.1:
        raise DataError(f"{name} looks like binary data ({nul_ratio:.0%} NUL bytes), not text; pass a CSV, Parquet, Excel or JSON file")

    delim = _detect_delimiter(sample, ext, info)
    info.delimiter = delim
    rows = _rows(sample, delim)
    if rows:
        data_counts = [len(r) for r in rows[1:]]
        if data_counts and len(rows[0]) > 0:
            mode = max(set(data_counts), key=data_counts.count)
            if mode > len(rows[0]) and data_counts.count(mode) >= 0.9 * len(data_counts):
                raise DataError(
                    f"{name}: the header has {len(rows[0])} names but the rows have {mode} fields (from line 2); "
                    "add the missing column names or remove the trailing delimiter on each row"
                )
    decimal, thousands = _detect_decimal_comma(rows, delim, info)
    info.decimal = decimal
    header: int | None = 0
    names = None
    if _header_is_data(rows):
        header = None
        names = [f"col_{i}" for i in range(len(rows[0]))]
        info.notes.append("the first row looks like data (all numbers), not column names: read without a header as col_0, col_1, ...")
    _check_memory(name, total, "text", budget)

    if isinstance(src, bytes):
        source: Any = io.BytesIO(src)
    else:
        source = src
    df = None
    if isinstance(src, Path) and header == 0 and rows and sample.lstrip("\ufeff")[:1] not in ("\r", "\n"):
        # Arrow's reader, when switched on (DSAGENT_ARROW_CSV=1) and it gives the same frame; None: pandas.
        from dsagent.tools.arrow_csv import read_csv_arrow

        df = read_csv_arrow(src, encoding=encoding, delim=delim, decimal=decimal, thousands=thousands,
                            header_names=rows[0], size=total, sample_rows=rows[1:])
    info.reader = "pandas" if df is None else "arrow"
    if df is None:
        df = _parse_csv(source, name, encoding, delim, decimal, thousands, header, names, info, budget)
    if header == 0 and rows and len(rows[0]) == df.shape[1]:
        # Our own parse of the header keeps names pandas would mangle ("a.1", "Unnamed: 3").
        df.columns = rows[0]
    df = _clean_control_chars(df, src, encoding, info)
    return df


def _parse_csv(source: Any, name: str, encoding: str, delim: str, decimal: str, thousands: str | None,
               header: int | None, names: list[str] | None, info: LoadInfo, budget: int | None,
               retried: bool = False) -> pd.DataFrame:
    kwargs: dict[str, Any] = dict(sep=delim, encoding=encoding, decimal=decimal, thousands=thousands,
                                  header=header, names=names, index_col=False, engine="c",
                                  on_bad_lines="error", skip_blank_lines=True)
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            df = pd.read_csv(source, **kwargs)
    except UnicodeDecodeError as exc:
        if retried:
            raise DataError(f"{name}: cannot decode the text ({exc.reason}); re-save the file as UTF-8") from None
        raw = source.getvalue() if isinstance(source, io.BytesIO) else Path(source).read_bytes()
        try:
            raw.decode(encoding)
            bad = exc.start
        except UnicodeDecodeError as full_exc:
            bad = full_exc.start
        window = raw[max(0, bad - 65536): bad + 65536]
        new_enc = _guess_legacy_encoding(window, info, bad)
        info.encoding = new_enc
        if isinstance(source, io.BytesIO):
            source.seek(0)
        return _parse_csv(source, name, new_enc, delim, decimal, thousands, header, names, info, budget, retried=True)
    except pd.errors.EmptyDataError:
        raise DataError(f"{name} is empty (no header and no rows); export the data again") from None
    except pd.errors.ParserError as exc:
        raise DataError(_explain_parser_error(name, str(exc), delim)) from None
    except MemoryError:
        raise
    except (ValueError, OverflowError) as exc:
        msg = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise DataError(f"{name}: could not parse as delimited text ({msg[:200]}); check the file's format") from None
    for w in caught:
        msg = str(w.message)
        if "Length of header or names does not match" in msg:
            raise DataError(
                f"{name}: some rows have more fields than the header has names; add the missing column names "
                "or quote fields that contain the delimiter"
            )
    if isinstance(source, io.BytesIO):
        source.seek(0)
    return df


def _explain_parser_error(name: str, msg: str, delim: str) -> str:
    m = re.search(r"Expected (\d+) fields in line (\d+), saw (\d+)", msg)
    if m:
        exp, line, saw = m.groups()
        return (
            f"{name}: ragged rows — line {line} has {saw} fields but the header has {exp}; fix or remove that line, "
            f"or quote fields that contain the delimiter ({_DELIM_NAMES.get(delim, repr(delim))})"
        )
    m = re.search(r"EOF inside string starting at row (\d+)", msg)
    if m:
        line = int(m.group(1)) + 1
        return (
            f"{name}: unterminated quote — a quoted field starting on line {line} never closes; "
            "add the closing \" or remove the stray quote on that line"
        )
    if "EOF inside string" in msg or "unexpected end of data" in msg:
        return f"{name}: unterminated quote — a quoted field never closes before the end of the file; fix the stray \""
    first = msg.strip().splitlines()[0] if msg.strip() else "parser error"
    return f"{name}: could not parse as delimited text ({first[:200]}); check the delimiter and quoting"


# ---------------------------------------------------------------------------------------------
# JSON


def _read_json(src: Path | bytes, stripped: str, encoding: str, ext: str, info: LoadInfo, budget: int | None,
               name: str) -> pd.DataFrame:
    total = len(src) if isinstance(src, bytes) else info.size_bytes
    _check_memory(name, total, "json", budget)
    raw = src if isinstance(src, bytes) else Path(src).read_bytes()
    text = raw.decode(encoding, errors="replace").lstrip("\ufeff")
    first_line = stripped.split("\n", 1)[0].strip()
    lines_mode = ext in (".jsonl", ".ndjson")
    if not lines_mode and stripped.startswith("{"):
        try:
            json.loads(first_line)
            lines_mode = "\n" in stripped.strip()
        except ValueError:
            lines_mode = False
    records: list[Any]
    if lines_mode:
        info.format = "jsonl"
        records = []
        for i, line in enumerate(text.splitlines(), start=1):
            if not line.strip():
                continue
            try:
                obj = json.loads(line)
            except ValueError as exc:
                raise DataError(
                    f"{name}: line {i} is not valid JSON ({exc.msg}); fix that line or remove it"
                ) from None
            if not isinstance(obj, dict):
                raise DataError(f"{name}: line {i} is a JSON {type(obj).__name__}, not an object; each line must be one record {{...}}")
            records.append(obj)
    else:
        info.format = "json"
        try:
            obj = json.loads(text)
        except ValueError as exc:
            raise DataError(
                f"{name} is not valid JSON ({exc.msg} at line {getattr(exc, 'lineno', '?')}, column {getattr(exc, 'colno', '?')}); fix the file"
            ) from None
        if isinstance(obj, dict):
            lists = {k: v for k, v in obj.items() if isinstance(v, list)}
            if lists and len(lists) == len(obj) and len({len(v) for v in lists.values()}) == 1 and not any(
                isinstance(x, dict) for v in lists.values() for x in v[:1]
            ):
                info.notes.append("JSON object of equal-length lists: read as columns")
                return pd.DataFrame(obj)
            record_lists = [k for k, v in lists.items() if v and all(isinstance(x, dict) for x in v[:100])]
            if len(record_lists) == 1:
                key = record_lists[0]
                info.notes.append(f"JSON object: read the list of records under key {key!r}")
                obj = obj[key]
            else:
                raise DataError(
                    f"{name} is a JSON object, not a table; pass an array of records [{{...}}, ...] or JSON lines"
                )
        if not isinstance(obj, list):
            raise DataError(f"{name} is a JSON {type(obj).__name__}, not a table; pass an array of records or JSON lines")
        bad = next((i for i, r in enumerate(obj) if not isinstance(r, dict)), None)
        if bad is not None:
            raise DataError(
                f"{name}: element {bad} of the JSON array is a {type(obj[bad]).__name__}, not an object; "
                "each element must be one record {...}"
            )
        records = obj
    if not records:
        raise DataError(f"{name} holds no records; export the data again")
    df = pd.DataFrame.from_records(records)
    nested = [c for c in df.columns if df[c].dtype == object and df[c].map(lambda v: isinstance(v, (dict, list))).any()]
    for c in nested:
        df[c] = df[c].map(lambda v: json.dumps(v, sort_keys=True) if isinstance(v, (dict, list)) else v)
    if nested:
        info.notes.append(f"nested JSON values kept as JSON text in columns: {', '.join(map(str, nested[:10]))}")
    return df


# ---------------------------------------------------------------------------------------------
# After any format: names, empty tables, inf, mixed types, control characters


def normalize_columns(names: list[Any]) -> tuple[list[str], list[str]]:
    """Deterministic, unique, printable string names. Returns (names, list of changes)."""
    out: list[str] = []
    changes: list[str] = []
    base: list[str] = []
    for i, raw in enumerate(names):
        s = "" if raw is None or (isinstance(raw, float) and math.isnan(raw)) else str(raw)
        s = _CTRL_PY.sub("", s).strip()
        if not s:
            s = f"unnamed_{i}"
        base.append(s)
    taken = set(base)
    seen: dict[str, int] = {}
    for i, s in enumerate(base):
        if s in seen:
            k = seen[s]
            new = f"{s}.{k}"
            while new in taken:
                k += 1
                new = f"{s}.{k}"
            seen[s] = k + 1
            taken.add(new)
            out.append(new)
        else:
            seen[s] = 1
            out.append(s)
    for i, (raw, new) in enumerate(zip(names, out)):
        blank = raw is None or (isinstance(raw, float) and math.isnan(raw)) or (isinstance(raw, str) and not raw.strip())
        if blank:
            changes.append(f"column {i} (blank)->{new!r}")
        elif isinstance(raw, str) and raw != new:
            changes.append(f"{raw!r}->{new!r}")
        # non-string names (ints from JSON/Parquet) simply become strings: nothing is lost
    return out, changes


def _postprocess(df: pd.DataFrame, info: LoadInfo, name: str) -> pd.DataFrame:
    if df.shape[1] == 0:
        raise DataError(f"{name} has no columns; export the data again with a header row")
    if df.shape[1] > MAX_COLUMNS:
        raise DataError(
            f"{name} has {df.shape[1]:,} columns, more than the {MAX_COLUMNS:,} supported; select the columns you need"
        )
    names, changes = normalize_columns(list(df.columns))
    if changes:
        shown = ", ".join(changes[:6]) + (f" (+{len(changes) - 6} more)" if len(changes) > 6 else "")
        info.notes.append(f"renamed {len(changes)} blank, duplicate or unprintable column name(s): {shown}")
    df.columns = names
    if df.shape[0] == 0:
        raise DataError(
            f"{name} has a header ({df.shape[1]} columns) but no data rows; export the data again with its rows"
        )
    if df.shape[1] == 1:
        info.notes.append(
            f"only one column ({names[0]!r}): if the file has more, its delimiter was not recognised — check it"
        )
    if df.shape[1] >= 1000:
        info.notes.append(f"wide table: {df.shape[1]:,} columns")

    inf_cols: dict[str, int] = {}
    obj_fixed: list[str] = []
    # Only float and object columns need work; look at dtypes first (column access is not free
    # on a 10,000-column frame).
    for c, dtype in list(df.dtypes.items()):
        if pd.api.types.is_float_dtype(dtype):
            arr = df[c].to_numpy()
            if arr.dtype.kind == "f":
                inf = np.isinf(arr)
                n_inf = int(inf.sum())
                if n_inf:
                    df[c] = df[c].mask(inf)
                    inf_cols[c] = n_inf
        elif dtype == object:
            s = df[c]
            kinds = list(s.dropna().map(type).unique())
            if len(kinds) > 1 or (kinds and kinds[0] not in (str, bool)):
                if all(k in (int, float, np.int64, np.float64) for k in kinds):
                    df[c] = pd.to_numeric(s, errors="coerce")
                else:
                    df[c] = s.astype("str")
                    obj_fixed.append(c)
            elif kinds and kinds[0] is str:
                df[c] = s.astype("str")
    if inf_cols:
        shown = ", ".join(f"{k} ({v})" for k, v in list(inf_cols.items())[:8])
        info.notes.append(f"replaced {sum(inf_cols.values())} inf value(s) with missing in: {shown}")
    if obj_fixed:
        info.notes.append(f"columns with mixed value types kept as text: {', '.join(obj_fixed[:10])}")
    _note_mixed_numeric(df, info)
    if df.shape[1] > 200:
        df = df.copy()  # consolidate: read_csv leaves one block per column, slow for every later step
    return df


def _note_mixed_numeric(df: pd.DataFrame, info: LoadInfo) -> None:
    """Text columns that are mostly numbers: say so (a missing-value marker or a typo is likely)."""
    found = []
    for c, dtype in list(df.dtypes.items()):
        if not pd.api.types.is_string_dtype(dtype):
            continue
        vals = df[c].dropna()
        if len(vals) > 2000:
            vals = vals.sample(2000, random_state=0)
        if len(vals) < 5:
            continue
        num = pd.to_numeric(vals, errors="coerce")
        frac = float(num.notna().mean())
        if 0.5 <= frac < 1.0:
            odd = vals[num.isna()].astype(str).unique()[:3]
            found.append(f"{c} ({frac:.0%} numeric; e.g. {', '.join(repr(v[:20]) for v in odd)})")
    if found:
        info.notes.append(
            "mixed numbers and text, kept as text: " + "; ".join(found[:6])
            + " — if these values mean 'missing', say so and they can be treated as missing"
        )


def _clean_control_chars(df: pd.DataFrame, src: Path | bytes, encoding: str, info: LoadInfo) -> pd.DataFrame:
    """NUL and other C0 control characters in cells: stripped (tabs and newlines kept), with a note.

    They break terminals (escape sequences) and downstream writers; a byte scan of the file
    (fast) decides whether the per-column work is needed."""
    ascii_compatible = not encoding.lower().startswith(("utf-16", "utf-32"))
    if ascii_compatible:
        found = False
        if isinstance(src, bytes):
            found = len(src.translate(None, _CTRL_BYTES)) != len(src)
        else:
            with open(src, "rb") as fh:
                while chunk := fh.read(1 << 24):
                    if len(chunk.translate(None, _CTRL_BYTES)) != len(chunk):
                        found = True
                        break
        if not found:
            return df
    cleaned: dict[str, int] = {}
    for c, dtype in list(df.dtypes.items()):
        if not (pd.api.types.is_string_dtype(dtype) or dtype == object):
            continue
        s = df[c]
        has = s.str.contains(_CTRL_RE, regex=True, na=False)
        n = int(has.sum())
        if n:
            df[c] = s.str.replace(_CTRL_RE, "", regex=True)
            cleaned[str(c)] = n
    if cleaned:
        shown = ", ".join(f"{k} ({v})" for k, v in list(cleaned.items())[:8])
        info.notes.append(f"stripped NUL/control characters from {sum(cleaned.values())} cell(s) in: {shown}")
    return df
