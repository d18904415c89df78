"""tools/data.py and its sections (data_*.py): formats, detection notes, and every hostile/broken input as a one-line DataError."""

from __future__ import annotations

import gzip
import io
import os
import time
import zipfile
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from dsagent.tools import data_limits
from dsagent.tools.data import DataError, LoadInfo, load_dataset, load_table
from dsagent.tools.data_limits import is_within_roots
from dsagent.tools.registry import ToolContext

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = ROOT / "examples" / "penguins.csv"


def write(path: Path, content: bytes) -> Path:
    path.write_bytes(content)
    return path


def raises_one_line(path, *words, **kwargs) -> str:
    with pytest.raises(DataError) as exc:
        load_table(path, **kwargs)
    msg = str(exc.value)
    assert "\n" not in msg and "\r" not in msg, msg
    for w in words:
        assert w.lower() in msg.lower(), f"{w!r} not in {msg!r}"
    return msg


def notes_text(info: LoadInfo) -> str:
    return " | ".join(info.notes).lower()


# --- formats and detection ------------------------------------------------------------------


def test_bundled_example_loads():
    df, info = load_table(EXAMPLE)
    assert df.shape == (344, 8)
    assert info.format == "csv" and info.delimiter == "," and info.encoding == "utf-8"
    assert info.n_rows == 344 and info.n_cols == 8
    assert df["bill_length_mm"].dtype == "float64"


def test_tsv_and_pipe(tmp_path):
    df, info = load_table(write(tmp_path / "a.tsv", b"a\tb\n1\t2\n3\t4\n"))
    assert list(df.columns) == ["a", "b"] and info.delimiter == "\t"
    assert "tab" in notes_text(info)
    df, info = load_table(write(tmp_path / "p.txt", b"a|b|c\n1|2|3\n4|5|6\n"))
    assert df.shape == (2, 3) and info.delimiter == "|"


def test_semicolon_with_decimal_commas(tmp_path):
    p = write(tmp_path / "eu.csv", "nom;prix;qte\nRené;3,50;2\nAgnès;12,00;1\nLéa;1.234,5;3\n".encode())
    df, info = load_table(p)
    assert info.delimiter == ";" and info.decimal == ","
    assert df["prix"].tolist() == [3.5, 12.0, 1234.5]
    assert "decimal comma" in notes_text(info)


def test_latin1_is_detected_and_noted(tmp_path):
    p = write(tmp_path / "l1.csv", "name,city\nJosé,Zürich\nFrançois,Köln\n".encode("latin-1"))
    df, info = load_table(p)
    assert df["name"].tolist() == ["José", "François"]
    assert info.encoding in ("cp1252", "latin-1")
    assert "not valid utf-8" in notes_text(info)


def test_latin1_byte_after_the_sample_falls_back(tmp_path, monkeypatch):
    monkeypatch.setattr(data_limits, "SAMPLE_BYTES", 64)
    body = "name,v\n" + "".join(f"row{i},{i}\n" for i in range(50)) + "José,1\n"
    df, info = load_table(write(tmp_path / "late.csv", body.encode("latin-1")))
    assert df["name"].iloc[-1] == "José"
    assert "not valid utf-8" in notes_text(info)


def test_utf16_and_utf8_bom(tmp_path):
    df, info = load_table(write(tmp_path / "u16.csv", "name,city\nJosé,Zürich\n".encode("utf-16")))
    assert df["city"].tolist() == ["Zürich"] and "utf-16" in info.encoding
    df, info = load_table(write(tmp_path / "bom.csv", "\ufeffa,b\n1,2\n".encode("utf-8")))
    assert list(df.columns) == ["a", "b"] and "bom" in notes_text(info)


def test_parquet_excel_json_formats(tmp_path):
    frame = pd.DataFrame({"x": [1, 2, 3], "y": ["a", "b", "c"]})
    frame.to_parquet(tmp_path / "t.parquet")
    df, info = load_table(tmp_path / "t.parquet")
    assert info.format == "parquet" and df.shape == (3, 2)
    with pd.ExcelWriter(tmp_path / "t.xlsx") as xw:
        frame.to_excel(xw, index=False, sheet_name="data")
        frame.to_excel(xw, index=False, sheet_name="other")
    df, info = load_table(tmp_path / "t.xlsx")
    assert info.format == "excel" and info.sheet == "data" and df["x"].tolist() == [1, 2, 3]
    assert "first sheet" in notes_text(info)
    df, info = load_table(write(tmp_path / "t.jsonl", b'{"a":1,"b":"x"}\n{"a":2,"b":null,"c":{"k":1}}\n'))
    assert info.format == "jsonl" and df.shape == (2, 3) and "nested" in notes_text(info)
    df, info = load_table(write(tmp_path / "t.json", b'[{"a":1,"b":"x"},{"a":2,"b":"y"}]'))
    assert info.format == "json" and df["a"].tolist() == [1, 2]


def test_gzip_csv_loads(tmp_path):
    df, info = load_table(write(tmp_path / "t.csv.gz", gzip.compress(b"a,b\n1,2\n3,4\n")))
    assert df.shape == (2, 2) and info.compression == "gzip"


def test_one_column_loads_with_note(tmp_path):
    df, info = load_table(write(tmp_path / "one.csv", b"value\n1\n2\n3\n"))
    assert df.shape == (3, 1)
    assert "one column" in notes_text(info)


def test_headerless_numeric_file_is_noted(tmp_path):
    df, info = load_table(write(tmp_path / "nohdr.csv", b"1,2,3\n4,5,6\n"))
    assert list(df.columns) == ["col_0", "col_1", "col_2"] and len(df) == 2
    assert "looks like data" in notes_text(info)


# --- hostile and broken input -----------------------------------------------------------------


def test_empty_file(tmp_path):
    raises_one_line(write(tmp_path / "e.csv", b""), "empty")
    raises_one_line(write(tmp_path / "w.csv", b"\n  \n\n"), "empty")


def test_header_only(tmp_path):
    raises_one_line(write(tmp_path / "h.csv", b"a,b,c\n"), "header", "no data rows")


def test_duplicate_and_empty_column_names_are_renamed(tmp_path):
    df, info = load_table(write(tmp_path / "d.csv", b"a,a,,b, ,a.1\n1,2,3,4,5,6\n"))
    assert list(df.columns) == ["a", "a.2", "unnamed_2", "b", "unnamed_4", "a.1"]
    assert "renamed" in notes_text(info)
    assert df["a.2"].tolist() == [2]


def test_ten_thousand_columns_load(tmp_path):
    header = ",".join(f"c{i}" for i in range(10_000))
    row = ",".join(str(i % 7) for i in range(10_000))
    t = time.perf_counter()
    df, info = load_table(write(tmp_path / "wide.csv", f"{header}\n{row}\n{row}\n".encode()))
    assert df.shape == (2, 10_000)
    assert time.perf_counter() - t < 30


def test_too_many_columns_is_a_clear_limit(tmp_path, monkeypatch):
    monkeypatch.setattr(data_limits, "MAX_COLUMNS", 100)
    header = ",".join(f"c{i}" for i in range(150))
    row = ",".join("1" for _ in range(150))
    raises_one_line(write(tmp_path / "w.csv", f"{header}\n{row}\n".encode()), "150", "columns", "more than")


def test_ragged_rows_name_the_line(tmp_path):
    raises_one_line(write(tmp_path / "r.csv", b"a,b\n1,2\n3,4\n5,6,7\n8,9\n"), "ragged", "line 4")


def test_more_fields_than_header_everywhere(tmp_path):
    raises_one_line(write(tmp_path / "x.csv", b"a,b\n1,2,3\n4,5,6\n"), "header has 2 names")


def test_unterminated_quote_names_the_line(tmp_path):
    raises_one_line(write(tmp_path / "q.csv", b'a,b\n1,2\n3,"abc\n4,5\n6,7\n'), "unterminated quote", "line 3")


def test_field_over_128_kib_loads(tmp_path):
    big = b"x" * (200 * 1024)
    df, _ = load_table(write(tmp_path / "big.csv", b'a,b\n1,"' + big + b'"\n2,y\n'))
    assert len(df["b"].iloc[0]) == 200 * 1024 and df["b"].iloc[1] == "y"


def test_nul_and_control_characters_are_stripped(tmp_path):
    df, info = load_table(write(tmp_path / "c.csv", b"a,b\n1,x\x00y\n2,z\x1b[31m\n3,ok\tfine\n"))
    assert df["b"].tolist() == ["xy", "z[31m", "ok\tfine"]
    assert "control characters" in notes_text(info)


def test_control_characters_in_column_names(tmp_path):
    df, info = load_table(write(tmp_path / "cn.csv", b"a\x07b,c\n1,2\n"))
    assert list(df.columns) == ["ab", "c"]


def test_file_too_large_for_memory(tmp_path):
    p = write(tmp_path / "big.csv", b"a,b\n" + b"1,2\n" * 50_000)
    raises_one_line(p, "too large", "memory", "sample", memory_budget=100_000)


@pytest.fixture
def small_bomb_limits(monkeypatch):
    # The same checks as production, scaled down so the tests stay fast.
    monkeypatch.setattr(data_limits, "BOMB_MIN_BYTES", 2 << 20)


def test_gzip_bomb_is_capped(tmp_path):
    p = tmp_path / "bomb.csv.gz"
    with gzip.open(p, "wb", compresslevel=9) as fh:
        fh.write(b"a,b\n")
        chunk = b"0" * (1 << 20)
        for _ in range(16):
            fh.write(chunk)
    assert p.stat().st_size < 1 << 20
    # 16 MB of budget allows ~4 MB of expansion: stopped early, never fully inflated.
    raises_one_line(p, "bomb", "decompress", memory_budget=16 << 20)


def test_gzip_ratio_bomb_is_refused_whatever_the_budget(tmp_path, small_bomb_limits):
    p = tmp_path / "bomb.csv.gz"
    with gzip.open(p, "wb", compresslevel=9) as fh:
        fh.write(b"a,b\n" + b"0" * (8 << 20))
    raises_one_line(p, "bomb", memory_budget=1 << 40)


def test_zip_bomb_is_refused(tmp_path, small_bomb_limits):
    p = tmp_path / "bomb.zip"
    with zipfile.ZipFile(p, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("data.csv", b"a,b\n" + b"0" * (8 << 20))
    raises_one_line(p, "bomb")


def test_spreadsheet_bomb_is_refused_before_opening(tmp_path, small_bomb_limits):
    p = tmp_path / "bomb.xlsx"
    with zipfile.ZipFile(p, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("[Content_Types].xml", "<Types/>")
        zf.writestr("xl/workbook.xml", "<workbook/>")
        zf.writestr("xl/worksheets/sheet1.xml", b" " * (8 << 20))
    raises_one_line(p, "spreadsheet bomb")


def test_wrong_extension_is_sniffed(tmp_path):
    pd.DataFrame({"x": [1, 2]}).to_parquet(tmp_path / "really_parquet.csv")
    df, info = load_table(tmp_path / "really_parquet.csv")
    assert info.format == "parquet" and df["x"].tolist() == [1, 2]
    assert "named .csv" in notes_text(info)
    df, info = load_table(write(tmp_path / "really_csv.parquet", b"a,b\n1,2\n"))
    assert info.format == "csv" and "plain text" in notes_text(info)
    pd.DataFrame({"x": [1, 2]}).to_excel(tmp_path / "really_xlsx.csv", index=False, engine="openpyxl")
    df, info = load_table(tmp_path / "really_xlsx.csv")
    assert info.format == "excel"


def test_corrupt_parquet(tmp_path):
    raises_one_line(write(tmp_path / "c.parquet", b"PAR1" + os.urandom(300) + b"PAR1"), "corrupt", "parquet")
    pd.DataFrame({"x": range(100)}).to_parquet(tmp_path / "ok.parquet")
    raw = (tmp_path / "ok.parquet").read_bytes()
    raises_one_line(write(tmp_path / "t.parquet", raw[: len(raw) // 2]), "parquet")


def test_corrupt_excel(tmp_path):
    raises_one_line(write(tmp_path / "c.xlsx", b"PK\x03\x04" + os.urandom(400)), "corrupt")
    p = tmp_path / "broken.xlsx"
    with zipfile.ZipFile(p, "w") as zf:
        zf.writestr("[Content_Types].xml", "<Types/>")
        zf.writestr("xl/workbook.xml", "not xml at all <<<")
    raises_one_line(p, "excel")


def test_binary_and_legacy_formats(tmp_path):
    raises_one_line(write(tmp_path / "img.csv", b"\x89PNG\r\n\x1a\n" + os.urandom(64)), "not a table", "png")
    raises_one_line(write(tmp_path / "old.xls", b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\0" * 512), ".xls", "xlsx")


def test_missing_path_and_directory(tmp_path):
    raises_one_line(tmp_path / "nope.csv", "not found")
    raises_one_line(tmp_path, "directory")


def test_bad_json_line_is_named(tmp_path):
    raises_one_line(write(tmp_path / "b.jsonl", b'{"a":1}\n{"a":2\n{"a":3}\n'), "line 2", "json")


def test_inf_becomes_missing_with_note(tmp_path):
    df, info = load_table(write(tmp_path / "i.csv", b"a,b\ninf,1\n2,-inf\n3,4\n"))
    assert df["a"].isna().tolist() == [True, False, False]
    assert df["b"].isna().sum() == 1
    assert "inf" in notes_text(info)


def test_mixed_types_are_kept_as_text_with_note(tmp_path):
    df, info = load_table(write(tmp_path / "m.csv", b"a,b\n1,x\n2,y\n?,z\n4,w\n5,v\n6,u\n"))
    assert pd.api.types.is_string_dtype(df["a"].dtype)
    assert "mixed numbers and text" in notes_text(info)
    # Object columns (JSON, Excel) with mixed Python types become text too.
    df, info = load_table(write(tmp_path / "m.json", b'[{"m":1},{"m":"a"},{"m":2.5},{"m":null}]'))
    assert pd.api.types.is_string_dtype(df["m"].dtype) and df["m"].isna().sum() == 1


def test_mixed_note_on_a_long_column_samples_rows_first(tmp_path):
    # Past 20,000 rows the check samples row positions before dropping missing values; a column that is
    # mostly numbers with a sprinkling of "?" (and many blanks) is still noticed.
    n = 30_000
    a = np.where(np.arange(n) % 50 == 0, "?", np.arange(n).astype(str)).astype(object)
    a[np.arange(n) % 3 == 0] = ""
    body = "a,b\n" + "\n".join(f"{x},{i}" for i, x in enumerate(a)) + "\n"
    _, info = load_table(write(tmp_path / "long.csv", body.encode()))
    assert "mixed numbers and text" in notes_text(info) and "'?'" in notes_text(info)


def test_inf_check_is_exact_among_missing_values(tmp_path):
    # The check finds inf by NaN-skipping reductions: one inf among many missing values is still found.
    rows = ["a,b"] + [f"{'' if i % 2 else i},{i}" for i in range(2000)]
    rows[777] = "-inf,776"
    rows[1500] = ",inf"
    df, info = load_table(write(tmp_path / "inf.csv", ("\n".join(rows) + "\n").encode()))
    assert "replaced 2 inf value(s)" in notes_text(info)
    assert not np.isinf(df[["a", "b"]].to_numpy()).any() and df["b"].isna().sum() == 1


def test_long_text_column_without_numbers_gets_no_mixed_note(tmp_path):
    from dsagent.tools.data_clean import _sample_values

    n = 30_000
    body = "a,b\n" + "\n".join(f"w{i % 7}x,{i % 9 if i % 4 else 'q'}" for i in range(n)) + "\n"
    df, info = load_table(write(tmp_path / "t.csv", body.encode()))
    # a: words only (the quick 200-value check stops); b: 75% numbers with "q" (still noticed)
    assert "mixed numbers and text" in notes_text(info) and " a (" not in notes_text(info) and "b (" in notes_text(info)
    # the sample takes Arrow data where the column has it, and object columns through iloc
    assert set(_sample_values(df["a"], 50)) <= {f"w{k}x" for k in range(7)}
    assert len(_sample_values(pd.Series(["x", None, 3] * 10, dtype=object), 50)) > 20
    # chunk by chunk (pandas' parallel reader leaves a column in many chunks): the same rows as one take
    import pyarrow as pa

    parts = [[f"v{k}_{i}" if i % 3 else None for i in range(n)] for k, n in enumerate([7, 1, 0, 40, 12])]
    col = pd.Series(pd.arrays.ArrowStringArray(pa.chunked_array(parts, pa.large_string())))
    at = np.sort(np.random.default_rng(1).integers(0, len(col), 30))
    assert _sample_values(col, 30) == col.iloc[at].dropna().tolist()


def test_the_control_byte_scan_agrees_with_translate():
    from dsagent.tools.data_clean import _has_control

    rng = np.random.default_rng(0)
    alphabet = [0, 9, 10, 11, 12, 13, 27, 31, 32, 65, 127, 200]
    for _ in range(3000):
        chunk = bytes(rng.choice(alphabet, size=int(rng.integers(0, 8))).astype(np.uint8))
        assert _has_control(chunk) == (len(chunk.translate(None, data_limits._CTRL_BYTES)) != len(chunk)), chunk


# --- roots and the cached dataset -------------------------------------------------------------


def test_is_within_roots_resolves_symlinks_and_traversal(tmp_path):
    root = tmp_path / "root"
    root.mkdir()
    outside = write(tmp_path / "secret.csv", b"a\n1\n")
    inside = write(root / "ok.csv", b"a\n1\n")
    (root / "link.csv").symlink_to(outside)
    assert is_within_roots(inside, [str(root)])
    assert not is_within_roots(root / "link.csv", [str(root)])
    assert not is_within_roots(root / ".." / "secret.csv", [str(root)])
    assert is_within_roots(outside, [])


def _ctx(tmp_path: Path, data: Path, roots: list[str]) -> ToolContext:
    art = tmp_path / "session" / "artifacts"
    art.mkdir(parents=True, exist_ok=True)
    return ToolContext(session_dir=art.parent, artifacts_dir=art, data_path=data, roots=roots)


def test_load_dataset_enforces_roots(tmp_path):
    root = tmp_path / "root"
    root.mkdir()
    outside = write(tmp_path / "secret.csv", b"a\n1\n")
    (root / "link.csv").symlink_to(outside)
    for path in (root / "link.csv", root / ".." / "secret.csv"):
        with pytest.raises(DataError) as exc:
            load_dataset(_ctx(tmp_path, path, [str(root)]))
        assert "outside the allowed" in str(exc.value) and "\n" not in str(exc.value)


def test_load_dataset_caches_by_mtime(tmp_path):
    p = write(tmp_path / "d.csv", b"a,b\n1,2\n")
    ctx = _ctx(tmp_path, p, [str(tmp_path)])
    df1, _ = load_dataset(ctx)
    df2, _ = load_dataset(ctx)
    assert df1 is df2
    write(p, b"a,b\n1,2\n3,4\n")
    os.utime(p, ns=(time.time_ns() + 10**9, time.time_ns() + 10**9))
    df3, _ = load_dataset(ctx)
    assert len(df3) == 2


def test_load_dataset_without_data(tmp_path):
    ctx = _ctx(tmp_path, None, [])
    with pytest.raises(DataError):
        load_dataset(ctx)


def test_error_messages_are_single_line_even_from_multiline_causes():
    err = DataError("first line\nsecond line\r\nthird")
    assert str(err) == "first line second line third"


def test_loadinfo_to_dict_roundtrips():
    info = LoadInfo(path="x", format="csv", notes=["n"])
    d = info.to_dict()
    assert d["path"] == "x" and d["notes"] == ["n"] and "n_rows" in d


def test_big_numeric_frame_dtypes(tmp_path):
    rng = np.random.default_rng(0)
    frame = pd.DataFrame({"x": rng.normal(size=2000), "c": rng.choice(["a", "b"], 2000)})
    buf = io.StringIO()
    frame.to_csv(buf, index=False)
    df, info = load_table(write(tmp_path / "f.csv", buf.getvalue().encode()))
    assert df["x"].dtype == "float64" and pd.api.types.is_string_dtype(df["c"].dtype)
    assert info.notes == []
