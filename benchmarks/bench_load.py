"""CSV loading speed: `load_table` (Arrow's multi-threaded reader where it gives the same frame)
against `pandas.read_csv`, on the synthetic 50-column table of bench_profile.py.

    .venv/bin/python benchmarks/bench_load.py                  # 1M rows, writes docs + JSON
    .venv/bin/python benchmarks/bench_load.py --rows 100000 --no-write

Goal (issue 23): load_table <= 1.0x pandas.read_csv at 1M rows x 50 columns. Also timed: load_table
with the Arrow path switched off (DSAGENT_ARROW_CSV=0, the reader before issue 23), and the two
load_table frames are checked to be identical. Medians of a few repeats; the section between the
load-bench markers of docs/BENCHMARKS.md is rewritten, raw figures go to benchmarks/results/load.json.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import sys
import tempfile
from datetime import datetime, timezone
from pathlib import Path

import pandas as pd
import pyarrow as pa

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "benchmarks"))

from bench_profile import median_time, synthetic  # noqa: E402

from dsagent.tools.data import load_table  # noqa: E402

DOC = ROOT / "docs" / "BENCHMARKS.md"
RESULTS = ROOT / "benchmarks" / "results" / "load.json"
START, END = "<!-- load-bench:start -->", "<!-- load-bench:end -->"


def pandas_only_load(path: Path):
    os.environ["DSAGENT_ARROW_CSV"] = "0"
    try:
        return load_table(path)
    finally:
        del os.environ["DSAGENT_ARROW_CSV"]


def run(n: int, repeats: int, workdir: Path) -> dict:
    path = workdir / f"synthetic_{n}.csv"
    synthetic(n).to_csv(path, index=False)
    read_s, read_all, _ = median_time(lambda: pd.read_csv(path), repeats)
    fast_s, fast_all, (fast, info) = median_time(lambda: load_table(path), repeats)
    slow_s, slow_all, (slow, _) = median_time(lambda: pandas_only_load(path), repeats)
    pd.testing.assert_frame_equal(fast, slow, check_exact=True)  # the same frame, not just faster
    row = {"rows": n, "cols": int(fast.shape[1]), "file_mb": round(path.stat().st_size / 2**20, 1),
           "reader": info.reader, "read_csv_s": round(read_s, 3), "load_table_s": round(fast_s, 3),
           "load_table_pandas_s": round(slow_s, 3), "ratio": round(fast_s / read_s, 3),
           "ratio_before": round(slow_s / read_s, 3), "repeats": repeats, "read_csv_all": read_all,
           "load_table_all": fast_all, "load_table_pandas_all": slow_all}
    path.unlink()
    return row


def write_doc(r: dict, meta: dict) -> None:
    section = "\n".join([
        START,
        "## CSV loading",
        "",
        f"`load_table` on the synthetic {r['cols']}-column CSV of the profiling benchmark ({r['rows']:,} rows, "
        f"{r['file_mb']} MB) against `pandas.read_csv` alone. Since issue 23 plain UTF-8 CSVs are read by Arrow's "
        "multi-threaded reader (`pyarrow.csv`) when it gives the same frame (checked here: identical to the pandas "
        f"path). Medians of {r['repeats']} repeats. Goal: <= 1.0x read_csv.",
        "",
        "| rows | read_csv (s) | load_table, Arrow (s) | load_table, pandas reader (s) | Arrow / read_csv | before / read_csv |",
        "|---:|---:|---:|---:|---:|---:|",
        f"| {r['rows']:,} | {r['read_csv_s']:.2f} | {r['load_table_s']:.2f} | {r['load_table_pandas_s']:.2f} | "
        f"{r['ratio']:.2f}x | {r['ratio_before']:.2f}x |",
        "",
        f"Machine: {meta['cpus']} CPUs, Python {meta['python']}, pandas {meta['pandas']}, pyarrow {meta['pyarrow']}; "
        f"{meta['date']}; 1-minute load average {meta['loadavg_start'][0]} at the start and {meta['loadavg_end'][0]} "
        "at the end (the machine is shared: other work slows every column). Arrow's gain grows with the cores.",
        "Reproduce: `.venv/bin/python benchmarks/bench_load.py` (raw figures: benchmarks/results/load.json).",
        END,
    ])
    text = DOC.read_text() if DOC.exists() else "# Benchmarks\n"
    if START in text and END in text:
        text = re.sub(re.escape(START) + r".*?" + re.escape(END), lambda _m: section, text, flags=re.S)
    else:
        text = text.replace("<!-- profile-bench:end -->", "<!-- profile-bench:end -->\n\n" + section, 1)
    DOC.write_text(text)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, default=1_000_000)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--no-write", action="store_true", help="print only; do not touch docs/ or results/")
    args = ap.parse_args(argv)
    meta = {"cpus": os.cpu_count(), "python": platform.python_version(), "pandas": pd.__version__,
            "pyarrow": pa.__version__, "date": datetime.now(timezone.utc).strftime("%Y-%m-%d"),
            "loadavg_start": [round(x, 2) for x in os.getloadavg()]}
    with tempfile.TemporaryDirectory(prefix="dsagent-bench-") as d:
        row = run(args.rows, args.repeats, Path(d))
    meta["loadavg_end"] = [round(x, 2) for x in os.getloadavg()]
    result = {"meta": meta, "results": [row]}
    print(json.dumps(result, indent=1))
    if not args.no_write:
        RESULTS.parent.mkdir(parents=True, exist_ok=True)
        RESULTS.write_text(json.dumps(result, indent=1) + "\n")
        write_doc(row, meta)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
