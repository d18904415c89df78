"""Loading data, after any format: column names made unique and usable, empty tables, inf,
mixed numeric columns and control characters, each change written to LoadInfo.notes."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd

from dsagent.tools import data_limits as limits
from dsagent.tools.data_limits import DataError, LoadInfo, _CTRL_PY, _CTRL_RE


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
    if df.shape[1] > limits.MAX_COLUMNS:
        raise DataError(
            f"{name} has {df.shape[1]:,} columns, more than the {limits.MAX_COLUMNS:,} supported; select the columns you need"
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
        if dtype.kind == "f":  # numpy, nullable and Arrow floats (is_float_dtype: the same, 10x slower)
            arr = df[c].to_numpy()
            # Exact, without a mask per column: fmax/fmin skip NaN and reach +-inf only if one is there
            # (two SIMD reductions, ~10x faster than np.isinf(arr).sum() on a clean column).
            if arr.dtype.kind == "f" and arr.size and (np.fmax.reduce(arr) == np.inf or np.fmin.reduce(arr) == -np.inf):
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
        col = df[c]
        if len(col) > 20_000:
            # Most text columns hold no number at all: 200 values from rows drawn at random say so with
            # one take of a few hundred rows, before the larger sample below is drawn and parsed.
            quick = _sample_values(col, 400)[:200]
            if len(quick) >= 5 and pd.to_numeric(pd.Series(quick, dtype=object), errors="coerce").notna().sum() == 0:
                continue
        if len(col) > 20_000:  # pick rows first, then drop the missing: not a pass over every row of every text column
            # drawn with replacement (a few repeats do not matter here): choice(replace=False) permutes all n rows
            at = np.sort(np.random.default_rng(0).integers(0, len(col), 8000))
            picked = col.iloc[at].dropna()
            col = picked if len(picked) >= 2000 else col
        vals = col.dropna()
        if len(vals) > 2000:
            vals = vals.sample(2000, random_state=0)
        if len(vals) < 5:
            continue
        # Most text columns hold no number at all: 200 values say so before 2,000 are parsed (under
        # half numeric in the 200 leaves the full check to decide only when some are).
        if len(vals) > 200 and pd.to_numeric(vals.iloc[:200], errors="coerce").notna().sum() == 0:
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


def _sample_values(col: pd.Series, n: int) -> list:
    """The non-missing values among `n` rows of `col` drawn at random (seeded, with replacement), taken
    from its Arrow data directly where it has some (no pandas index work), else through iloc."""
    at = np.sort(np.random.default_rng(1).integers(0, len(col), n))
    try:
        chunks = col.array.__arrow_array__().chunks
    except (AttributeError, TypeError):
        return col.iloc[at].dropna().tolist()
    # Chunk by chunk: a take on the whole ChunkedArray costs ~10x more (it gathers across the chunks).
    starts = np.cumsum([0] + [len(c) for c in chunks])
    cut = np.searchsorted(at, starts)
    out: list = []
    for chunk, start, lo, hi in zip(chunks, starts, cut[:-1], cut[1:]):
        if hi > lo:
            out += chunk.take(at[lo:hi] - start).drop_null().to_pylist()
    return out


def _has_control(chunk: Any) -> bool:
    """Whether the bytes (bytes or any buffer: an Arrow string column's data) hold a control character
    other than tab, CR and LF (_CTRL_BYTES). Counts the bytes below 0x20 and the LFs with numpy: where
    they are equal nothing else needs counting (~2.5x faster than bytes.translate, which copies)."""
    a = np.frombuffer(chunk, dtype=np.uint8)
    if not a.size:
        return False
    # Two reductions (no temporary arrays) clear the usual case, ASCII text without tab or newline.
    low, high = int(a.min()), int(a.max())
    if low >= 0x20:
        return high >= 0x7F and bool(np.count_nonzero(a == 0x7F))
    below, lf = int(np.count_nonzero(a < 0x20)), int(np.count_nonzero(a == 0x0A))
    if below != lf and below != lf + int(np.count_nonzero(a == 0x09)) + int(np.count_nonzero(a == 0x0D)):
        return True
    return bool(np.count_nonzero(a == 0x7F))


def _text_may_have_control(s: pd.Series) -> bool:
    """A cheap gate before the per-cell regex: scan the text column's character data as it lies in
    memory (an Arrow string column's data buffer: only the cells' bytes, not the file's numbers and
    delimiters, and no second read of the file). Object columns (mixed values) go straight to the regex."""
    try:
        chunks = s.array.__arrow_array__().chunks
    except (AttributeError, TypeError):
        return True
    # A sliced chunk's buffer may hold bytes outside the slice: a false alarm only costs the exact check.
    return any(c.buffers()[-1] is not None and _has_control(c.buffers()[-1]) for c in chunks)


def _clean_control_chars(df: pd.DataFrame, info: LoadInfo) -> pd.DataFrame:
    """NUL and other C0 control characters in cells: stripped (tabs and newlines kept), with a note.

    They break terminals (escape sequences) and downstream writers. Only text cells can hold one (a
    number with a control byte does not parse as a number), so the text columns are checked, each
    first by a byte count over its data in memory (fast), then cell by cell where that finds any."""
    cleaned: dict[str, int] = {}
    for c, dtype in list(df.dtypes.items()):
        if not (pd.api.types.is_string_dtype(dtype) or dtype == object):
            continue
        s = df[c]
        if not _text_may_have_control(s):
            continue
        has = s.str.contains(_CTRL_RE, regex=True, na=False)
        n = int(has.sum())
        if n:
            df[c] = s.str.replace(_CTRL_RE, "", regex=True)
            cleaned[str(c)] = n
    if cleaned:
        shown = ", ".join(f"{k} ({v})" for k, v in list(cleaned.items())[:8])
        info.notes.append(f"stripped NUL/control characters from {sum(cleaned.values())} cell(s) in: {shown}")
    return df
