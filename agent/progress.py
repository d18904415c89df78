"""Rendering loop events for scripted runs: a rich live status on a terminal, plain lines otherwise.
Everything goes to stderr so that `--json` keeps stdout for exactly one JSON object."""

from __future__ import annotations

import sys
import time
from typing import Any

from rich.console import Console
from rich.table import Table

from dsagent.loop import Event
from dsagent.result import RunResult


def _one_line(summary: Any, limit: int = 140) -> str:
    if isinstance(summary, dict):
        keys = ("test_score", "best", "best_cv", "metric", "n_train", "task", "report", "features_tracked", "executed",
                "answers", "n_rows", "n_cols")
        parts = [f"{k}={summary[k]}" for k in keys if k in summary and not isinstance(summary[k], (dict, list))]
        text = ", ".join(parts)
    else:
        text = str(summary)
    return text[:limit]


class ProgressPrinter:
    def __init__(self, plain: bool | None = None):
        self.console = Console(stderr=True, highlight=False)
        self.plain = plain if plain is not None else not self.console.is_terminal
        self.status = None
        self.tool_started = 0.0
        self.current = ""

    def __call__(self, event: Event) -> None:
        kind, data = event.kind, event.data
        if kind == "text":
            self._stop_status()
            self.console.print(f"[dim]›[/dim] {data['text']}" if not self.plain else f"> {data['text']}")
        elif kind == "tool_start":
            self.current = data["name"]
            self.tool_started = time.monotonic()
            if self.plain:
                self.console.print(f"  running {data['name']} ...")
            else:
                self.status = self.console.status(f"[bold]{data['name']}[/bold] ...")
                self.status.start()
        elif kind == "tool_progress":
            msg = f"{self.current}: {data.get('message', '')} [{data.get('elapsed', 0):.0f}s]"
            if self.status is not None:
                self.status.update(msg)
            elif self.plain:
                self.console.print(f"    {msg}")
        elif kind == "tool_end":
            self._stop_status()
            secs = data.get("seconds") or (time.monotonic() - self.tool_started)
            if data.get("ok"):
                mark = "ok" if self.plain else "[green]✓[/green]"
                self.console.print(f"  {mark} {data['name']} ({secs:.1f}s) {_one_line(data.get('summary'))}")
            else:
                mark = "FAILED" if self.plain else "[red]✗[/red]"
                self.console.print(f"  {mark} {data['name']}: {str(data.get('error'))[:300]}")
        elif kind == "notice":
            self._stop_status()
            self.console.print(f"  note: {data.get('message')}")
        elif kind == "needs_input":
            self._stop_status()
            for q in data.get("questions", []):
                self.console.print(f"  question ({q.get('key')}): {q.get('question')}")

    def _stop_status(self) -> None:
        if self.status is not None:
            self.status.stop()
            self.status = None

    def final(self, result: RunResult) -> None:
        self._stop_status()
        table = Table(title=f"dsagent run {result.status}", show_header=False, title_justify="left")
        table.add_column(style="bold")
        table.add_column()
        table.add_row("session", result.session_dir)
        if result.test_score is not None:
            ci = f" (95% CI {result.test_ci[0]:.4f} to {result.test_ci[1]:.4f})" if result.test_ci else ""
            table.add_row(f"test {result.metric}", f"{result.test_score:.4f}{ci}")
            table.add_row("baseline", f"{result.baseline_score:.4f}" if result.baseline_score is not None else "n/a")
            table.add_row("model", str(result.best_model))
        for name, path in result.artifacts.items():
            if path and name != "transcript":
                table.add_row(name, path)
        if result.not_written():
            table.add_row("not written", f"{', '.join(result.not_written())}: "
                                         f"dsagent run --resume {result.session_id} --time-budget 60")
        if result.assumptions:
            table.add_row("assumptions", f"{len(result.assumptions)} (see {result.assumptions_file()})")
        if result.usage.input_tokens:
            cost = f", ${result.usage.cost_usd:.4f}" if result.usage.cost_usd is not None else ", cost unknown"
            table.add_row("tokens", f"{result.usage.input_tokens} in / {result.usage.output_tokens} out{cost}")
        table.add_row("elapsed", f"{result.elapsed_s:.1f}s")
        if result.error:
            table.add_row("error", result.error)
        self.console.print(table)


def stderr_is_tty() -> bool:
    return sys.stderr.isatty()
