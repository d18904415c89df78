"""CPU time of one single-row request on the serving path, by part (docs/BENCHMARKS.md, "Where a
single-row request's time goes").

    .venv/bin/python benchmarks/profile_request.py SESSION            # request, parse, schema, model
    .venv/bin/python benchmarks/profile_request.py SESSION --cprofile  # plus the cProfile listing

`ServedModel.score` (parse, schema checks, scoring, traffic log, response JSON; no HTTP) on 300
single-row CSV bodies from examples/penguins.csv, timed by the CPU time of the calling thread
(`time.thread_time`): a loaded machine moves it much less than wall time. The session must take
the penguins columns. The traffic log goes to the session's artifacts/traffic/.
"""

from __future__ import annotations

import argparse
import cProfile
import io
import json
import os
import pstats
import time
from pathlib import Path

import numpy as np
import pandas as pd

from dsagent.tools.data import load_bytes
from dsagent.tools.service import ServedModel
from dsagent.tools.serving import check_schema, score_rows

DATA = Path(__file__).resolve().parent.parent / "examples" / "penguins.csv"


def cpu_ms(fn, n: int = 300) -> list[float]:
    t = []
    for i in range(n):
        t0 = time.thread_time()
        fn(i)
        t.append(time.thread_time() - t0)
    return [round(float(v), 2) for v in np.percentile(np.array(t) * 1000, [50, 95, 99])]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("session")
    ap.add_argument("--cprofile", action="store_true")
    args = ap.parse_args()
    served = ServedModel(args.session, log=True)
    rows = pd.read_csv(DATA).sample(50, random_state=0)
    bodies = [rows.iloc[[i]].to_csv(index=False).encode() for i in range(50)]
    for b in bodies[:20]:  # warm-up
        served.score(b, "csv")
    frames = [load_bytes(b, "body", "csv")[0] for b in bodies]
    Xs = [check_schema(served.manifest, f, lambda _w: None) for f in frames]
    out = {"request": cpu_ms(lambda i: served.score(bodies[i % 50], "csv")),
           "parse": cpu_ms(lambda i: load_bytes(bodies[i % 50], "body", "csv")),
           "schema": cpu_ms(lambda i: check_schema(served.manifest, frames[i % 50], lambda _w: None)),
           "model": cpu_ms(lambda i: score_rows(served.model, served.manifest, Xs[i % 50])),
           "load_average": round(os.getloadavg()[0], 1)}
    print(json.dumps(out))
    if args.cprofile:
        prof = cProfile.Profile()
        prof.enable()
        for i in range(200):
            served.score(bodies[i % 50], "csv")
        prof.disable()
        text = io.StringIO()
        pstats.Stats(prof, stream=text).sort_stats("cumulative").print_stats(30)
        print(text.getvalue())
    served.log.close()


if __name__ == "__main__":
    main()
