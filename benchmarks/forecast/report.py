"""Merge the runners' results into benchmarks/results/forecast.json and print the Markdown table for
docs/BENCHMARKS.md ("Forecasting"): MASE and sMAPE per collection for dsagent, the seasonal naive and
statsforecast's AutoETS / AutoARIMA / AutoTheta, dsagent's 95% coverage and wall time against its budget.
Coverage on 8-18 held-out points of one series is coarse (8 points: 7/8 = 0.875 or 8/8 = 1.0, never
within 90-98%), so the summary adds the coverage pooled over every held-out point and, per collection,
the two-sided binomial p-value of its hits under 95%, and how many collections a perfectly calibrated
95% interval would be expected to put within 90-98% with these point counts.
    python benchmarks/forecast/report.py DSAGENT.json STATSFORECAST.json OUT.json
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from scipy.stats import binom, binomtest

PEERS = ("AutoETS", "AutoARIMA", "AutoTheta")


def _f(v, nd=3):
    return "-" if v is None else f"{v:.{nd}f}"


def _in_band(points: int) -> float:
    """The probability that an exactly calibrated 95% interval covers 90-98% of `points` independent points."""
    return float(sum(binom.pmf(k, points, 0.95) for k in range(points + 1) if 0.90 <= k / points <= 0.98))


def main(ds_path: Path, sf_path: Path, out: Path) -> None:
    ds = {r["dataset"]: r for r in json.loads(ds_path.read_text())}
    sf = {r["dataset"]: r for r in json.loads(sf_path.read_text())} if sf_path.exists() else {}
    rows, beats_snaive, beats_peers, n_peer, cover_ok, in_budget = [], 0, 0, 0, 0, 0
    pooled, consistent, expected = [0, 0], 0, 0.0
    lines = ["| series | dsagent MASE | seasonal naive | AutoETS | AutoARIMA | AutoTheta | dsagent sMAPE % | best peer sMAPE % "
             "| dsagent 95% coverage | dsagent model | wall s (budget) |", "|---|---|---|---|---|---|---|---|---|---|---|"]
    for name, r in ds.items():
        peer = sf.get(name, {})
        if "error" in r:
            lines.append(f"| {name} | error: {r['error'][:60]} | | | | | | | | | {r.get('wall_s')} |")
            continue
        d, sn = r["dsagent"], r["seasonal_naive"]
        scores = {p: peer[p] for p in PEERS if isinstance(peer.get(p), dict) and "mase" in peer[p]}
        best = min(scores.values(), key=lambda s: s["mase"]) if scores else None
        beats_snaive += d["mase"] < sn["mase"]
        if best:
            n_peer += 1
            beats_peers += d["mase"] <= best["mase"]
        cover_ok += d["coverage_95"] is not None and 0.90 <= d["coverage_95"] <= 0.98
        if d.get("points"):
            hits = round(d["coverage_95"] * d["points"])
            pooled[0] += hits
            pooled[1] += d["points"]
            consistent += binomtest(hits, d["points"], 0.95).pvalue >= 0.05
            expected += _in_band(d["points"])
        in_budget += bool(r["within_budget_15pct"])
        lines.append(f"| {name} | {_f(d['mase'])} | {_f(sn['mase'])} | " + " | ".join(_f(scores.get(p, {}).get("mase")) for p in PEERS)
                     + f" | {_f(d['smape'], 2)} | {_f(best['smape'] if best else None, 2)} | {_f(d['coverage_95'], 2)} | {r['model']} "
                     f"| {r['wall_s']} ({r['budget_s']:g}) |")
        rows.append({"dataset": name, "dsagent": d, "seasonal_naive": sn, "peers": scores, "model": r["model"],
                     "wall_s": r["wall_s"], "budget_s": r["budget_s"]})
    n = len(rows)
    summary = (f"dsagent beats the seasonal naive on {beats_snaive} of {n}; is at least as good as the best of AutoETS/AutoARIMA/"
               f"AutoTheta on {beats_peers} of {n_peer}; 95% coverage within 90-98% on {cover_ok} of {n}; within budget + 15% on "
               f"{in_budget} of {n}.")
    if pooled[1]:
        summary += (f" 95% coverage pooled over all {pooled[1]} held-out points: {pooled[0] / pooled[1]:.3f}; hits consistent "
                    f"with 95% (binomial p >= 0.05) on {consistent} of {n}; a perfectly calibrated interval would land within "
                    f"90-98% on {expected:.1f} of {n} on average with these point counts.")
    out.write_text(json.dumps({"rows": rows, "summary": summary}, indent=1))
    print("\n".join(lines) + "\n\n" + summary)


if __name__ == "__main__":
    main(Path(sys.argv[1]), Path(sys.argv[2]), Path(sys.argv[3]))
