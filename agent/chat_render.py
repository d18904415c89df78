"""Rich renderables for the chat: streamed markdown, the live status line, tables for the profile,
the leaderboard and the run summary. No prompt_toolkit here; agent/chat.py owns the terminal.

Plain mode (`plain=True`) returns the same information as text without colours or box art that
depends on a terminal, so a piped chat stays greppable."""

from __future__ import annotations

import io
import json
import time
from pathlib import Path
from typing import Any

from rich import box
from rich.console import Console, Group, RenderableType
from rich.live import Live
from rich.markdown import Markdown
from rich.progress_bar import ProgressBar
from rich.spinner import Spinner
from rich.syntax import Syntax
from rich.table import Table
from rich.text import Text

from dsagent.result import RunResult


def fmt_seconds(s: float | None) -> str:
    if s is None:
        return "?"
    s = max(0.0, s)
    return f"{s:.0f}s" if s < 120 else f"{int(s // 60)}m{int(s % 60):02d}s"


def fmt_tokens(n: int | float) -> str:
    return f"{n / 1000:.1f}k" if n >= 1000 else str(int(n))


def one_line(summary: Any, limit: int = 110) -> str:
    """A tool's summary, compressed to the facts a person scans for."""
    if isinstance(summary, dict):
        keys = ("test_score", "best", "best_cv", "metric", "task", "n_train", "n_rows", "n_cols", "report",
                "features_tracked", "executed")
        parts = [f"{k}={summary[k]}" for k in keys if k in summary and not isinstance(summary[k], (dict, list))]
        if not parts and "answers" not in summary:
            parts = [f"{k}={v}" for k, v in summary.items() if not isinstance(v, (dict, list))][:4]
        if not parts:
            parts = [f"{k}={v!r}" for k, v in summary.items()][:4]
        text = ", ".join(parts)
    else:
        text = "" if summary is None else str(summary)
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


# ---------------------------------------------------------------------------------- streaming


class MarkdownStream:
    """Streams markdown as it arrives (Aider's approach): the whole buffer is re-rendered on each
    delta, lines that can no longer change are printed once above a small live window, and only
    the tail stays live. A long answer therefore never redraws more than the window."""

    WINDOW = 6

    def __init__(self, console: Console, plain: bool = False):
        self.console = console
        self.plain = plain
        self.buffer = ""
        self.printed = 0  # rendered lines already printed for good
        self.live: Live | None = None
        self._last = 0.0
        self._interval = 0.08

    def _lines(self) -> list[str]:
        width = self.console.width
        sink = Console(file=io.StringIO(), width=width, force_terminal=True, color_system=self.console.color_system or "standard",
                       highlight=False)
        sink.print(Markdown(self.buffer, code_theme="monokai"))
        lines = sink.file.getvalue().splitlines()  # type: ignore[attr-defined]
        while lines and not Text.from_ansi(lines[-1]).plain.strip():
            lines.pop()  # a paragraph's trailing blank line would separate the text from its tool line
        return lines

    def feed(self, delta: str) -> None:
        if self.plain:
            self.console.file.write(delta)
            self.console.file.flush()
            self.buffer += delta
            return
        self.buffer += delta
        if self.live is None:
            self.live = Live(console=self.console, auto_refresh=False, transient=True, redirect_stdout=False,
                             redirect_stderr=False, vertical_overflow="visible")
            self.live.start()
        now = time.monotonic()
        if now - self._last < self._interval:
            return  # re-rendering on every token is wasted work
        self._update(final=False)
        spent = time.monotonic() - now
        self._last = time.monotonic()
        # The whole buffer is re-rendered each time, so a long answer costs more per frame: keep
        # rendering under a third of the time, whatever the length.
        self._interval = max(0.08, 2 * spent)

    def _update(self, final: bool) -> None:
        assert self.live is not None
        lines = self._lines()
        stable = len(lines) if final else max(self.printed, len(lines) - self.WINDOW)
        if stable > self.printed:
            self.live.console.print(Text.from_ansi("\n".join(lines[self.printed:stable])))
            self.printed = stable
        rest = lines[self.printed:]
        self.live.update(Text.from_ansi("\n".join(rest)) if rest else Text(""), refresh=True)

    def finish(self) -> str:
        if self.plain:
            if self.buffer and not self.buffer.endswith("\n"):
                self.console.file.write("\n")
            self.console.file.flush()
        elif self.live is not None:
            try:
                self._update(final=True)
            finally:
                self.live.update(Text(""), refresh=True)
                self.live.stop()
                self.live = None
        return self.buffer


def markdown(text: str, plain: bool) -> RenderableType:
    return Text(text) if plain else Markdown(text, code_theme="monokai")


# ------------------------------------------------------------------------------- live status


class StatusLine:
    """One live line under the output while work runs: spinner, what runs, its latest progress
    message, a bar when the tool reports a fraction, elapsed time, budget left and tokens."""

    def __init__(self, console: Console, footer):
        self.console = console
        self.footer = footer  # () -> str: budget and tokens
        self.spinner = Spinner("dots", style="cyan")
        self.label = "thinking"
        self.message = ""
        self.fraction: float | None = None
        self.started = time.monotonic()
        self.live: Live | None = None

    def _render(self) -> RenderableType:
        grid = Table.grid(padding=(0, 1))
        line = Text()
        line.append(self.label, style="bold")
        if self.message:
            line.append(" · " + self.message)
        line.append(f"  {fmt_seconds(time.monotonic() - self.started)}", style="yellow")
        cells: list[RenderableType] = [self.spinner, line]
        if self.fraction is not None:
            cells.append(ProgressBar(total=1.0, completed=max(0.0, min(1.0, self.fraction)), width=20))
        cells.append(Text(self.footer(), style="dim"))
        for _ in cells:
            grid.add_column(no_wrap=True)
        grid.add_row(*cells)
        return grid

    def show(self, label: str, message: str = "", restart: bool = True) -> None:
        if restart or label != self.label:
            self.started = time.monotonic()
        self.label, self.message, self.fraction = label, message, None
        if self.live is None:
            self.live = Live(get_renderable=self._render, console=self.console, transient=True, refresh_per_second=8,
                             redirect_stdout=False, redirect_stderr=False)
            self.live.start()

    def progress(self, message: str, fraction: float | None) -> None:
        self.message, self.fraction = message, fraction

    def hide(self) -> None:
        if self.live is not None:
            live, self.live = self.live, None
            live.stop()


# ------------------------------------------------------------------------------------ tables


def _num(v: Any, digits: int = 4) -> str:
    if isinstance(v, float):
        return f"{v:.{digits}f}"
    return "" if v is None else str(v)


def profile_table(profile: dict[str, Any], plain: bool = False, limit: int = 40) -> Table:
    target = (profile.get("target") or {}).get("name")
    title = f"profile: {profile.get('n_rows', '?')} rows × {profile.get('n_cols', '?')} columns"
    table = Table(title=title, title_justify="left", box=box.ASCII if plain else box.SIMPLE_HEAD, show_edge=plain)
    for col, just in (("column", "left"), ("kind", "left"), ("missing", "right"), ("unique", "right"), ("summary", "left")):
        table.add_column(col, justify=just)  # type: ignore[arg-type]
    for c in (profile.get("columns") or [])[:limit]:
        if c.get("kind") == "numeric" and c.get("mean") is not None:
            summary = f"mean {_num(c.get('mean'), 3)}, range {_num(c.get('min'), 3)} to {_num(c.get('max'), 3)}"
        elif c.get("top_values"):
            summary = ", ".join(f"{v} ({n})" for v, n in c["top_values"][:3])
        else:
            summary = ""
        name = c.get("name", "?") + (" (target)" if c.get("name") == target else "")
        miss = c.get("missing_frac")
        table.add_row(name, str(c.get("kind", "")), f"{miss:.1%}" if isinstance(miss, (int, float)) else "",
                      str(c.get("n_unique", "")), summary)
    more = len(profile.get("columns") or []) - limit
    if more > 0:
        table.caption = f"… {more} more columns in profile.json"
    return table


def profile_notes(profile: dict[str, Any]) -> list[str]:
    notes = []
    tgt = profile.get("target") or {}
    if tgt.get("name"):
        bits = [f"target {tgt['name']}: {tgt.get('task', '?')}"]
        if tgt.get("n_classes"):
            bits.append(f"{tgt['n_classes']} classes, minority {tgt.get('minority_frac', 0):.0%}")
        notes.append(", ".join(bits))
    for w in (profile.get("warnings") or [])[:6]:
        notes.append(f"warning: {w if isinstance(w, str) else json.dumps(w, default=str)}")
    for s in (profile.get("leakage_suspects") or [])[:4]:
        kept = isinstance(s, dict) and s.get("kept")
        notes.append(f"possible leak: {s if isinstance(s, str) else s.get('column', s)}" + (" (kept as a feature)" if kept else ""))
    return notes


def leaderboard_table(rows: list[dict[str, Any]], plain: bool = False, top: int = 10, title: str = "leaderboard") -> Table:
    metric = rows[0].get("metric", "score") if rows else "score"
    table = Table(title=f"{title} (cross-validated {metric})", title_justify="left",
                  box=box.ASCII if plain else box.SIMPLE_HEAD, show_edge=plain)
    for col, just in (("#", "right"), ("model", "left"), ("family", "left"), (f"CV {metric}", "right"), ("± std", "right"),
                      ("fit s", "right")):
        table.add_column(col, justify=just)  # type: ignore[arg-type]
    for i, r in enumerate(rows[:top], 1):
        style = "bold green" if i == 1 and not plain else None
        table.add_row(str(i), str(r.get("name")), str(r.get("family", "")), _num(r.get("cv_mean")), _num(r.get("cv_std")),
                      _num(r.get("fit_s"), 2), style=style)
    if len(rows) > top:
        table.caption = f"… {len(rows) - top} more"
    return table


def summary_rows(result: RunResult) -> list[tuple[str, str]]:
    rows: list[tuple[str, str]] = []
    if result.task:
        rows.append(("task", f"{result.task}, target {result.target}"))
    if result.test_score is not None:
        ci = f"  (95% CI {result.test_ci[0]:.4f} to {result.test_ci[1]:.4f})" if result.test_ci else ""
        rows.append((f"test {result.metric}", f"{result.test_score:.4f}{ci}"))
        rows.append(("baseline", _num(result.baseline_score) or "n/a"))
        rows.append(("chosen model", str(result.best_model)))
    for name, path in result.artifacts.items():
        if path and name != "transcript":
            rows.append(("model file" if name == "model" else name.replace("_", " "), path))
    if result.assumptions:
        rows.append(("assumptions", f"{len(result.assumptions)} (listed in {result.assumptions_file()})"))
    for rec in result.recommendations[:3]:
        rows.append(("next", rec))
    if result.usage.input_tokens:
        cost = f", ${result.usage.cost_usd:.4f}" if result.usage.cost_usd is not None else ", cost unknown"
        rows.append(("tokens", f"{result.usage.input_tokens} in / {result.usage.output_tokens} out{cost}"))
    rows.append(("session", result.session_dir))
    return rows


def summary_table(result: RunResult, plain: bool = False) -> RenderableType:
    """The final summary: a boxed table on a terminal; `key: value` lines in plain mode (paths
    stay on one line there, so they can be copied from a log)."""
    rows = summary_rows(result)
    if plain:
        width = max(len(k) for k, _ in rows)
        return Text("\n".join([f"run {result.status}"] + [f"  {k:<{width}}  {v}" for k, v in rows]))
    table = Table(title=f"run {result.status}", show_header=False, title_justify="left", box=box.ROUNDED)
    table.add_column(style="bold")
    table.add_column(overflow="fold")
    for k, v in rows:
        table.add_row(k, v)
    return table


def code(text: str, lexer: str, plain: bool) -> RenderableType:
    return Text(text) if plain else Syntax(text, lexer, theme="monokai", line_numbers=False, word_wrap=True)


def notebook_view(path: Path, plain: bool, max_cells: int = 40) -> RenderableType:
    """The notebook's cells: markdown as markdown, code highlighted."""
    nb = json.loads(path.read_text(encoding="utf-8"))
    parts: list[RenderableType] = []
    for cell in nb.get("cells", [])[:max_cells]:
        src = "".join(cell.get("source", []))
        if cell.get("cell_type") == "code":
            parts.append(code(src, "python", plain))
        else:
            parts.append(markdown(src, plain))
        parts.append(Text(""))
    return Group(*parts)
