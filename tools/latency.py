"""The model card's latency section, from what evaluate_model measured on the shipped Pipeline
(tools/evaluate.py `_latency`: single test rows, then a batch, on this machine, in process)."""

from __future__ import annotations

from typing import Any


def card_lines(ev: dict[str, Any]) -> list[str]:
    lat = ev.get("latency") or {}
    single = lat.get("single_row_ms") or {}
    if single.get("p50") is None:
        return []
    return ["## Latency", "",
            f"- One row at a time (`predict` on the saved Pipeline, in process, {lat.get('single_rows')} test rows): "
            f"p50 {single['p50']} ms, p95 {single['p95']} ms, p99 {single.get('p99')} ms; a batch of "
            f"{lat.get('batch_rows')} rows in {lat.get('batch_ms')} ms. Measured on the training machine while it ran "
            "the search: expect less on an idle one.",
            "- Over HTTP, `dsagent serve` adds parsing, schema checks and the response: see docs/BENCHMARKS.md "
            "(`benchmarks/bench_serve.py` measures a served model).", ""]
