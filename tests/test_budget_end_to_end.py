"""The wall-clock budget holds end to end: a run without a fixed trial count, timed from launching
the CLI to its exit, ends within 1.15 x budget + 5 s (the 5 s cover the interpreter's start).

Why 40 s and not 20: at 20 s the autopilot's deliverables reserve (8 s of the reference machine x
this machine's measured pace since 2026-12-04, 14 s x the slowdown before, plus the final fits)
nearly exhausts the budget on a shared machine, so every step runs at its floor and the test measures the machine's
fixed costs (importing the tools in the CLI and again in the worker, the notebook's kernel), not
the budget handling: 16.7-20 s on a quiet machine, 31-41 s with the 2 cores shared by other test
processes. At 40 s the plan has room to adapt and the bound held under the same contention."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = ROOT / "examples" / "penguins.csv"
BUDGET = 40.0


def test_run_ends_within_its_time_budget(tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith("ANTHROPIC_")}
    started = time.monotonic()
    proc = subprocess.run([sys.executable, "-m", "dsagent.cli", "run", str(EXAMPLE), "--target", "species", "--backend",
                           "offline", "--time-budget", f"{BUDGET:g}", "--sessions-dir", str(tmp_path), "--json"],
                          capture_output=True, text=True, cwd=ROOT, env=env, timeout=300)
    elapsed = time.monotonic() - started
    assert proc.returncode == 0, proc.stderr[-2000:]
    result = json.loads(proc.stdout)
    assert result["status"] == "completed" and Path(result["artifacts"]["notebook"]).is_file()
    steps = [(json.loads(line).get("t"), [r.get("name") for r in json.loads(line).get("results", [])])
             for line in (Path(result["session_dir"]) / "transcript.jsonl").read_text().splitlines()]
    assert elapsed <= 1.15 * BUDGET + 5, f"{elapsed:.1f}s for a {BUDGET:g}s budget; steps: {steps}"
