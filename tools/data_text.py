"""Loading data from text: encoding, delimiter, decimal comma and header detection, the CSV
parse (pyarrow when it can, pandas otherwise), and JSON lines / JSON arrays."""

from __future__ import annotations

import codecs
import csv
import io
import json
import re
import warnings
from pathlib import Path
from typing import Any

import pandas as pd

from dsagent.tools import data_limits as limits
from dsagent.tools.data_clean import _clean_control_chars
from dsagent.tools.data_limits import DataError, LoadInfo, _check_memory


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
            head = fh.read(limits.MAX_SAMPLE_BYTES)
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
    df = _clean_control_chars(df, info)
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
