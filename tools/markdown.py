"""Markdown shared by the written deliverables (report, notebook, monitoring plan)."""

from __future__ import annotations

from typing import Any


def md_cell(value: Any, width: int = 60) -> str:
    """A data value made safe for a markdown table cell: it cannot inject markdown or HTML."""
    text = str(value).replace("|", "\\|").replace("<", "&lt;").replace(">", "&gt;").replace("\n", " ").replace("`", "'")
    return text[:width]
