"""A run that ends with a model but without its documents (stopped by its budget, or a step failed)
says which are missing and how to finish them, in the result and in the CLI's summary table."""

from __future__ import annotations

import io
import json

from rich.console import Console

from dsagent.progress import ProgressPrinter
from dsagent.runtime import build_result
from dsagent.session import Session
from dsagent.tools import paths


def _session(tmp_path, *documents: str) -> Session:
    session = Session.create(tmp_path / "sessions", data_path=None, persona="data_scientist", backend="offline")
    art = session.artifacts_dir
    (art / paths.MODEL).parent.mkdir(parents=True)
    (art / paths.MODEL).write_bytes(b"model")
    (art / paths.EVALUATION).write_text(json.dumps({"test_score": 0.9, "baseline_score": 0.5, "metric": "roc_auc"}))
    for rel in documents:
        (art / rel).write_text("{}")
    return session


def test_a_completed_run_missing_documents_says_which_and_how_to_finish_them(tmp_path):
    session = _session(tmp_path, paths.REPORT, paths.MODEL_CARD)
    result = build_result(session, "completed", 1.0)
    assert result.not_written() == ["notebook", "monitoring"]
    assert result.recommendations[0].startswith("Not written: notebook, monitoring")
    assert f"dsagent run --resume {session.id}" in result.recommendations[0]

    printer = ProgressPrinter(plain=True)
    printer.console = Console(file=io.StringIO(), width=200)
    printer.final(result)
    shown = printer.console.file.getvalue()
    assert "not written" in shown and "notebook, monitoring" in shown


def test_a_run_with_every_document_or_one_that_failed_lists_nothing(tmp_path):
    session = _session(tmp_path, paths.REPORT, paths.MODEL_CARD, paths.NOTEBOOK, paths.MONITORING)
    done = build_result(session, "completed", 1.0)
    assert done.not_written() == [] and not any(r.startswith("Not written") for r in done.recommendations)
    assert build_result(_session(tmp_path), "failed", 1.0, error="boom").not_written() == []


def test_the_summary_table_points_to_the_assumptions_where_they_are(tmp_path):
    """The table said "(see report.md)" for the assumptions also when write_report had failed."""
    def shown(session) -> str:
        result = build_result(session, "completed", 1.0)
        result.assumptions = ["cost_fn = 1.0: assumed"]
        printer = ProgressPrinter(plain=True)
        printer.console = Console(file=io.StringIO(), width=200)
        printer.final(result)
        return printer.console.file.getvalue()

    assert "1 (see session.json)" in shown(_session(tmp_path / "a", paths.NOTEBOOK, paths.MONITORING))
    assert "1 (see report.md)" in shown(_session(tmp_path / "b", paths.REPORT, paths.MODEL_CARD))
    from dsagent.chat_render import summary_rows  # the chat's closing panel says the same

    result = build_result(_session(tmp_path / "c", paths.NOTEBOOK), "completed", 1.0)
    result.assumptions = ["cost_fn = 1.0: assumed"]
    assert ("assumptions", "1 (listed in session.json)") in summary_rows(result)
