"""Loading data: compressed input (gzip/bz2/xz/zip, expansion capped while it is read, so a
small bomb cannot fill memory), Parquet and Excel."""

from __future__ import annotations

import bz2
import gzip
import io
import lzma
import re
import warnings
import zipfile
from pathlib import Path

import pandas as pd

from dsagent.tools import data_limits as limits
from dsagent.tools.data_limits import (DataError, LoadInfo, _KIND_LABEL, _check_memory, _human, _note_ext_mismatch,
                                       _sniff_kind)
from dsagent.tools.data_text import _read_text


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
    cap = limits.MAX_DECOMPRESSED_BYTES
    if budget is not None:
        # The expanded bytes and the parsed frame live together: leave room for both.
        cap = min(cap, int(budget / (1 + limits.MEMORY_FACTOR["text"])))
    return max(cap, 1 << 20)


def _check_expansion(name: str, kind: str, compressed: int, expanded: int, cap: int) -> None:
    ratio = expanded / max(compressed, 1)
    if expanded > cap or (ratio > limits.BOMB_RATIO and expanded > limits.BOMB_MIN_BYTES):
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
    return _read_text(data, data[:limits.SAMPLE_BYTES], Path(member.filename).suffix.lower(), info, budget, name)


def _check_zip_bomb(name: str, members: list[zipfile.ZipInfo], compressed: int, budget: int | None, what: str) -> None:
    total = sum(m.file_size for m in members)
    cap = _decompress_cap(budget)
    for m in members:
        ratio = m.file_size / max(m.compress_size, 1)
        if ratio > limits.BOMB_RATIO and m.file_size > limits.BOMB_MIN_BYTES:
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
        if meta.num_columns > limits.MAX_COLUMNS:
            raise DataError(
                f"{name} has {meta.num_columns:,} columns, more than the {limits.MAX_COLUMNS:,} supported; select the columns you need"
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
