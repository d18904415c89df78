"""Issue 18's goal lines over several sittings of the AutoML table, not one.

One run per dataset and system is one reading. Between a sitting on one host and one on another
(with older code) FLAML's score moved by up to 8% on a dataset, dsagent's by up to 11%, and the two
">=" lines by two datasets; between two sittings on one host four hours apart most scores repeated
exactly (docs/BENCHMARKS.md, "Three sittings of the confirmation half"). Each sitting is a results
file of bench.py (benchmarks/results/automl.json, or a copy kept in benchmarks/results/sittings/
when a newer sitting replaced it). This script puts them side by side: each system's mean score per
dataset over the sittings that ran it, the range it moved in, the goal lines on those means, and
the same lines sitting by sitting.

    .venv/bin/python benchmarks/automl/sittings.py --half confirmation \\
        benchmarks/results/sittings/automl_2026-12-05a.json benchmarks/results/sittings/automl_2026-12-05b.json
    .venv/bin/python benchmarks/automl/sittings.py --half confirmation --write A.json B.json   # the docs block

Scores only: the paired bootstrap needs one set of predictions per system, which a mean over
sittings does not have (each sitting's own CIs stay in its file). Pure functions over the results
dicts, like aggregate.py.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from aggregate import at_least_as_good, rank_table  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
DOC = ROOT / "docs" / "BENCHMARKS.md"
SPLIT = ROOT / "benchmarks" / "suite_split.json"
SYSTEMS = ["dsagent", "autogluon", "flaml", "hgb", "xgboost"]
PEERS = {"flaml": 0.8, "autogluon": 0.6}  # the share of datasets dsagent must be >= on


def mean_sitting(sittings: list[dict], names: list[str]) -> dict[str, dict]:
    """One results-like dict whose score per dataset and system is the mean over the sittings that
    scored it, with `runs` and `range` (min, max) beside it."""
    out: dict[str, dict] = {}
    for name in names:
        entries = [s["datasets"][name] for s in sittings if name in s["datasets"]]
        if not entries:
            continue
        systems: dict[str, dict] = {}
        for system in SYSTEMS:
            scores = [e["systems"][system]["score"] for e in entries
                      if (e["systems"].get(system) or {}).get("status") == "ok"
                      and e["systems"][system].get("score") is not None]
            if scores:
                systems[system] = {"status": "ok", "score": statistics.fmean(scores), "runs": len(scores),
                                   "range": (min(scores), max(scores))}
        out[name] = {"greater_is_better": entries[0]["greater_is_better"], "metric": entries[0]["metric"],
                     "systems": systems}
    return out


def goal_counts(datasets: dict[str, dict], names: list[str]) -> dict[str, Any]:
    """dsagent >= each peer (point scores) and the mean rank over the datasets every system ran."""
    counts: dict[str, Any] = {}
    for peer in PEERS:
        played = [n for n in names if n in datasets and {"dsagent", peer} <= set(datasets[n]["systems"])]
        behind = [n for n in played if not at_least_as_good(datasets[n]["systems"]["dsagent"]["score"],
                                                            datasets[n]["systems"][peer]["score"],
                                                            datasets[n]["greater_is_better"])]
        counts[peer] = {"played": len(played), "at_least_as_good": len(played) - len(behind), "behind": behind}
    counts["mean_rank"] = rank_table(datasets, names, SYSTEMS)["mean_rank"]
    return counts


def _fmt(v: float) -> str:
    return f"{v:.5g}" if abs(v) < 100 else f"{v:,.1f}"


def _cell(entry: dict | None) -> str:
    if not entry:
        return "—"
    lo, hi = entry["range"]
    return _fmt(entry["score"]) + ("" if entry["runs"] == 1 or lo == hi else f" ({_fmt(lo)}-{_fmt(hi)})")


def _goal(c: dict, peer: str) -> str:
    need = PEERS[peer]
    n, k = c[peer]["played"], c[peer]["at_least_as_good"]
    return f"{'met' if n and k >= need * n else 'not met'}: {k} of {n}"


def sitting_label(results: dict, names: list[str]) -> str:
    """When the sitting ran this half: the first and last start of a run in it (UTC)."""
    started = sorted(e["systems"][s]["started"] for n in names if (e := results["datasets"].get(n))
                     for s in e["systems"] if e["systems"][s].get("started"))
    if not started:
        return results.get("generated", "?")
    first, last = started[0], started[-1]
    return first if first == last else f"{first} to {last[11:] if last[:10] == first[:10] else last}"


def render(labels: list[str], sittings: list[dict], names: list[str], half: str, command: str) -> str:
    mean = mean_sitting(sittings, names)
    per = [goal_counts(s["datasets"], names) for s in sittings]
    both = goal_counts(mean, names)
    head = "| goal (point scores) | " + " | ".join(labels) + " | mean of the sittings |"
    lines = [f"<!-- issue18-sittings-{half}:start -->", head, "|---|" + "---|" * (len(labels) + 1)]

    def rank(c: dict) -> str:
        return f"{c['mean_rank']['dsagent']} (AutoGluon {c['mean_rank']['autogluon']}, FLAML {c['mean_rank']['flaml']})"

    lines.append("| mean rank of 5 (dsagent) | " + " | ".join(rank(c) for c in per) + f" | {rank(both)} |")
    for peer, label in (("flaml", "FLAML on >= 80%"), ("autogluon", "AutoGluon on >= 60%")):
        lines.append(f"| >= {label} | " + " | ".join(_goal(c, peer) for c in per) + f" | **{_goal(both, peer)}** |")
        lines.append(f"| behind {peer} | " + " | ".join(", ".join(c[peer]["behind"]) or "none" for c in per)
                     + f" | {', '.join(both[peer]['behind']) or 'none'} |")
    lines += ["", "| dataset | metric | " + " | ".join(SYSTEMS) + " |", "|---|---|" + "---|" * len(SYSTEMS)]
    for name in names:
        if name in mean:
            e = mean[name]
            lines.append(f"| {name} | {e['metric']} | " + " | ".join(_cell(e["systems"].get(s)) for s in SYSTEMS) + " |")
    lines += ["", "Each cell: the mean over the sittings that ran it (the lowest and highest score in brackets "
              "when they differ). Command: `" + command + "`.", f"<!-- issue18-sittings-{half}:end -->"]
    return "\n".join(lines)


def write_doc(block: str, half: str) -> None:
    """Replace the block between its markers in docs/BENCHMARKS.md (they must be there: the block
    belongs inside the prose that reads it)."""
    start, end = f"<!-- issue18-sittings-{half}:start -->", f"<!-- issue18-sittings-{half}:end -->"
    text = DOC.read_text()
    if start not in text or end not in text:
        raise SystemExit(f"docs/BENCHMARKS.md has no {start} ... {end} markers: add them where the block belongs")
    DOC.write_text(text[:text.index(start)] + block + text[text.index(end) + len(end):])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("sittings", nargs="+", help="bench.py results files, oldest first")
    ap.add_argument("--half", choices=["development", "confirmation", "large_development"], default="confirmation")
    ap.add_argument("--write", action="store_true", help="rewrite the block in docs/BENCHMARKS.md")
    args = ap.parse_args()
    names = json.loads(SPLIT.read_text())[args.half]["datasets"]
    sittings = [json.loads(Path(p).read_text()) for p in args.sittings]
    command = f".venv/bin/python benchmarks/automl/sittings.py --half {args.half} --write {' '.join(args.sittings)}"
    block = render([sitting_label(s, names) for s in sittings], sittings, names, args.half, command)
    if args.write:
        write_doc(block, args.half)
    print(block)


if __name__ == "__main__":
    main()
