"""Shared fixtures. Tests never touch the network and never see a real API key."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = ROOT / "examples" / "penguins.csv"


@pytest.fixture(autouse=True)
def _no_secrets(monkeypatch):
    # The developer's shell may carry a key: tests must behave as they do in CI.
    for name in list(os.environ):
        if name.startswith("ANTHROPIC_") or name in ("DSAGENT_MODEL", "DSAGENT_SESSIONS_DIR"):
            monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("MPLBACKEND", "Agg")


@pytest.fixture
def sessions_dir(tmp_path) -> Path:
    d = tmp_path / "sessions"
    d.mkdir()
    return d
