"""An opt-in path for plain CSV files: Arrow's multi-threaded reader (`pyarrow.csv`).

Off by default (DSAGENT_ARROW_CSV=1 turns it on): measured at 1M rows x 50 columns on the 2-core
development machine (benchmarks/bench_load.py, docs/BENCHMARKS.md), `load_table` through Arrow was
slower than through pandas 3.1's reader, with or without threads; the gap to `pandas.read_csv` is
load_table's own checks after the read, not the parser. Worth trying on many idle cores.

When on, it is used only where it gives the frame `pandas.read_csv` would give with the options
tools/data.py passes, and the caller falls back to pandas whenever this returns None:

- only UTF-8 text, a dot decimal, no thousands separator, a header row (the other cases are the
  tricky ones data.py's detection handles: legacy encodings, UTF-16, decimal commas, no header);
- the NA markers, true/false words and whitespace rules are pandas' own, passed to Arrow;
- date/time columns Arrow would infer are read as text, as pandas (no parse_dates) leaves them;
- any column whose values pandas would still turn into numbers or booleans (padded numbers like
  " 3", which Arrow keeps as text), integers beyond int64, and any parse error (ragged rows, a
  stray quote, an odd number of quote characters) send the whole file back to pandas, which also words the error message.

Floats: Arrow rounds every decimal string correctly; pandas' default parser can differ from it
in the last bit for some 17-digit inputs (tests compare exactly on typical data).
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

# Below this size the single-threaded reader is already fast and the extra checks cost more
# than they save. Module-level so tests can send small files down the Arrow path.
MIN_BYTES = 4 << 20

# pandas' default NA markers (pandas._libs.parsers.STR_NA_VALUES) and bool words.
PANDAS_NA = ["", "#N/A", "#N/A N/A", "#NA", "-1.#IND", "-1.#QNAN", "-NaN", "-nan", "1.#IND", "1.#QNAN",
             "<NA>", "N/A", "NA", "NULL", "NaN", "None", "n/a", "nan", "null"]
TRUE_WORDS = ["True", "TRUE", "true"]
FALSE_WORDS = ["False", "FALSE", "false"]
_PLAIN = {"int64", "double", "bool", "string", "large_string", "null"}
_INT64_LIMIT = 2.0**63
_WHOLE = re.compile(r"^[+-]?\d+$")
_DATELIKE = re.compile(r"^\s*(\d{4}-\d{1,2}-\d{1,2}|\d{1,2}:\d{2})")  # what Arrow would infer as date/time


def read_csv_arrow(path: Path, *, encoding: str, delim: str, decimal: str, thousands: str | None,
                   header_names: list[str] | None, size: int,
                   sample_rows: list[list[str]] = ()) -> pd.DataFrame | None:
    """The frame pandas would read from `path`, read by Arrow; None when Arrow cannot promise
    that (then the caller reads with pandas). `header_names` is data.py's own parse of the header,
    `sample_rows` its parse of the first rows (columns that look like dates there are read as text
    up front, which saves a second read)."""
    if os.environ.get("DSAGENT_ARROW_CSV", "0") != "1" or size < MIN_BYTES:
        return None
    if encoding not in ("utf-8", "utf-8-sig") or decimal != "." or thousands is not None or not header_names:
        return None
    if len(set(header_names)) != len(header_names):
        return None  # column_types below is keyed by name
    quotes = _count_quotes(path)
    if quotes % 2:
        return None  # an unterminated quote: Arrow reads it to the end of the file, pandas names the line
    try:
        import pyarrow as pa
        import pyarrow.csv as pacsv
    except ImportError:
        return None

    def read(as_text: list[str]) -> Any:
        return pacsv.read_csv(
            path,
            # DSAGENT_ARROW_THREADS=0: one thread (on a machine whose cores are all busy, threads contend)
            read_options=pacsv.ReadOptions(use_threads=os.environ.get("DSAGENT_ARROW_THREADS", "1") != "0",
                                           skip_rows=1, column_names=header_names),
            # Quoted newlines need Arrow's slower, quote-aware chunking: only when there are quotes.
            parse_options=pacsv.ParseOptions(delimiter=delim, quote_char='"', double_quote=True,
                                             newlines_in_values=quotes > 0, ignore_empty_lines=True),
            convert_options=pacsv.ConvertOptions(
                null_values=PANDAS_NA, strings_can_be_null=True, quoted_strings_can_be_null=True,
                true_values=TRUE_WORDS, false_values=FALSE_WORDS,
                column_types={name: pa.string() for name in as_text}),
        )

    datelike = [name for j, name in enumerate(header_names)
                if any(j < len(r) and _DATELIKE.match(r[j]) for r in sample_rows)]
    try:
        table = read(datelike)
        other = [f.name for f in table.schema if str(f.type) not in _PLAIN]
        if other:  # dates or times the sample did not show: pandas keeps them as text
            table = read(datelike + other)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError, OSError, ValueError):
        return None  # pandas reads it again and explains what is wrong
    if not _same_types_as_pandas(table, _integer_like(header_names, sample_rows)):
        return None
    df = table.to_pandas(split_blocks=False)
    for name in [f.name for f in table.schema if str(f.type) == "null"]:
        df[name] = np.nan  # pandas reads an all-missing column as float64 NaN, Arrow as None objects
    if df.columns.tolist() != header_names:
        return None
    return df


def _count_quotes(path: Path) -> int:
    """Quote characters in the file (a memchr-speed scan): odd means some quoted field never closes."""
    count = 0
    with open(path, "rb") as fh:
        while chunk := fh.read(1 << 24):
            count += chunk.count(b'"')
    return count


def _integer_like(names: list[str], rows: list[list[str]]) -> set[str]:
    """Columns whose sampled values are all whole numbers (or empty). Only these can hold integers
    beyond int64; a column with a decimal point anywhere is float64 for pandas too."""
    out = set()
    for j, name in enumerate(names):
        cells = [r[j].strip() for r in rows if j < len(r) and r[j].strip()]
        if all(_WHOLE.match(c) for c in cells):
            out.add(name)
    return out


def _same_types_as_pandas(table: Any, integer_like: set[str]) -> bool:
    """False when pandas would type some column differently from what Arrow inferred."""
    import pyarrow.compute as pc

    for field, column in zip(table.schema, table.columns):
        kind = str(field.type)
        if kind == "double" and field.name in integer_like:
            # Integers beyond int64: Arrow falls back to double, pandas to uint64 or text.
            lo, hi = pc.min_max(column).values()
            if (hi.is_valid and hi.as_py() >= _INT64_LIMIT) or (lo.is_valid and lo.as_py() < -_INT64_LIMIT):
                return False
        elif kind in ("string", "large_string"):
            if _pandas_would_convert(column):
                return False
    return True


def _pandas_would_convert(column: Any) -> bool:
    """pandas turns a text column into numbers (or booleans) only when every value converts, and
    its parser skips blanks around numbers where Arrow does not. A sample with one value that
    does not convert settles it cheaply; otherwise the whole column is checked."""
    values = column.drop_null()
    if len(values) == 0:
        return False
    for chunk in (values.slice(0, 100), values):
        s = pd.Series(chunk.to_pylist() if len(chunk) <= 100 else chunk.to_pandas(), dtype=object).astype(str)
        stripped = s.str.strip()
        numeric = pd.to_numeric(stripped, errors="coerce").notna() | stripped.isin(PANDAS_NA)
        boolean = stripped.isin(TRUE_WORDS + FALSE_WORDS)
        if not (numeric.all() or boolean.all()):
            return False
    return True
