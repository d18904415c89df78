"""The Arrow CSV fast path gives the frame pandas' reader gives, or steps aside for it."""

from __future__ import annotations

import io

import numpy as np
import pandas as pd
import pytest

from dsagent.tools import arrow_csv
from dsagent.tools.data import DataError, load_table


@pytest.fixture
def arrow_for_small_files(monkeypatch):
    monkeypatch.setenv("DSAGENT_ARROW_CSV", "1")  # opt-in (see tools/arrow_csv.py)
    monkeypatch.setattr(arrow_csv, "MIN_BYTES", 0)  # the tricky cases are small files


def both(path, monkeypatch):
    """(frame, info) through the Arrow path and through pandas' reader alone."""
    fast = load_table(path)
    monkeypatch.setenv("DSAGENT_ARROW_CSV", "0")
    slow = load_table(path)
    monkeypatch.setenv("DSAGENT_ARROW_CSV", "1")
    return fast, slow


def typical_frame(n: int = 3000) -> pd.DataFrame:
    rng = np.random.default_rng(0)
    f = rng.normal(size=n).round(6)
    f[rng.random(n) < 0.05] = np.nan
    ints_missing = rng.integers(0, 9, n).astype(float)
    ints_missing[::7] = np.nan
    cat = rng.choice(["a", "b, with comma", 'say "hi"', "line\nbreak", "Zürich", ""], n).astype(object)
    cat[::11] = None
    return pd.DataFrame({
        "f": f, "big": rng.lognormal(10, 3, n), "i": rng.integers(-5, 10**12, n), "im": ints_missing,
        "cat": cat, "flag": rng.choice(["yes", "no"], n), "b": rng.choice([True, False], n),
        "date": pd.date_range("2020-01-01", periods=n, freq="h").astype(str),
        "day": pd.date_range("2020-01-01", periods=n, freq="D").strftime("%Y-%m-%d"),
        "empty": [None] * n, "na_words": rng.choice(["NA", "null", "None", "x", "n/a"], n),
    })


TRICKY = {
    "typical": None,  # typical_frame() written by pandas
    "crlf_tab": b"a\tb\tc\r\n1\tx\t2.5\r\n2\ty\t\r\n3\t\tNaN\r\n",
    "bom_pipe": "\ufeffa|b\n1|é\n2|ü\n".encode(),
    "inf": b"a,b\ninf,1\n2,-inf\n3,4\n",  # both become missing (with a note)
    "mixed_numbers_and_text": b"a,b\n1,x\n2,y\n?,z\n4,w\n5,v\n6,u\n",
    "control_chars": b"a,b\nx\x00y,1\nz\x07,2\n",
    "padded_numbers": b"a,b\n 1,x\n2 ,y\n 3 ,z\n",  # both readers skip the blanks around numbers
    "quoted_na_and_bools": b'a,b,c\n"NA",TRUE,1\n"",false,2\nq,True,3\n',
}
FALLBACK = {  # Arrow would type these differently (or fail): pandas reads them, and says so
    "beyond_int64": b"a,b\n18446744073709551615,1\n1,2\n",
    "duplicate_names": b"a,a,b\n1,2,3\n4,5,6\n",
    "latin1": "a,b\nJosé,1\n".encode("latin-1"),
    "decimal_comma": "a;b\n1,5;2\n3,25;4\n".encode(),
    "short_row": b"a,b,c\n1,2,3\n4,5\n",
    "blank_first_line": b"\na,b\n1,2\n",
}


@pytest.mark.parametrize("case", list(TRICKY))
def test_arrow_path_gives_the_same_frame(case, tmp_path, monkeypatch, arrow_for_small_files):
    path = tmp_path / f"{case}.csv"
    if TRICKY[case] is None:
        typical_frame().to_csv(path, index=False)
    else:
        path.write_bytes(TRICKY[case])
    (fast, fast_info), (slow, slow_info) = both(path, monkeypatch)
    assert fast_info.reader == "arrow", case
    assert slow_info.reader == "pandas"
    pd.testing.assert_frame_equal(fast, slow, check_exact=True)
    assert fast_info.notes == slow_info.notes


@pytest.mark.parametrize("case", list(FALLBACK))
def test_cases_arrow_cannot_promise_go_to_pandas(case, tmp_path, monkeypatch, arrow_for_small_files):
    path = tmp_path / f"{case}.csv"
    path.write_bytes(FALLBACK[case])
    (fast, fast_info), (slow, slow_info) = both(path, monkeypatch)
    assert fast_info.reader == "pandas", case
    pd.testing.assert_frame_equal(fast, slow, check_exact=True)


@pytest.mark.parametrize("body, says", [(b"a,b\n1,2\n3,4,5\n", "line 3"),
                                        (b'a,b\n1,2\n3,"abc\n4,5\n6,7\n', "unterminated quote")])
def test_broken_files_are_still_explained(body, says, tmp_path, arrow_for_small_files):
    path = tmp_path / "broken.csv"
    path.write_bytes(body)
    # Arrow steps aside (it would read an unterminated quote to the end of the file) ...
    header = body.split(b"\n", 1)[0].decode().split(",")
    assert arrow_csv.read_csv_arrow(path, encoding="utf-8", delim=",", decimal=".", thousands=None,
                                    header_names=header, size=len(body)) is None
    # ... so pandas' reader names the line.
    with pytest.raises(DataError, match=says):
        load_table(path)


def test_pandas_reads_by_default_and_small_files_even_when_arrow_is_on(tmp_path, monkeypatch):
    buf = io.StringIO()
    typical_frame(200).to_csv(buf, index=False)
    path = tmp_path / "small.csv"
    path.write_text(buf.getvalue())
    monkeypatch.setattr(arrow_csv, "MIN_BYTES", 0)
    monkeypatch.delenv("DSAGENT_ARROW_CSV", raising=False)
    assert load_table(path)[1].reader == "pandas"  # off by default: slower here (docs/BENCHMARKS.md)
    monkeypatch.setenv("DSAGENT_ARROW_CSV", "1")
    monkeypatch.setattr(arrow_csv, "MIN_BYTES", 4 << 20)
    assert load_table(path)[1].reader == "pandas"  # under MIN_BYTES
    monkeypatch.setattr(arrow_csv, "MIN_BYTES", 0)
    assert load_table(path)[1].reader == "arrow"
