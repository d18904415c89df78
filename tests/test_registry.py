"""@tool -> ToolSpec: schema generation, validation, context injection, Anthropic shape."""

from __future__ import annotations

from typing import Literal

import pytest
from pydantic import ValidationError

from dsagent.tools.registry import ToolContext, ToolOutput, all_tools, build_spec


def sample(ctx: ToolContext, target: str, folds: int = 5, mode: Literal["fast", "slow"] = "fast",
           columns: list[str] | None = None) -> ToolOutput:
    """Do a sample thing.

    Args:
        target: the column to predict.
        folds: number of folds.
    """
    return ToolOutput(summary={"target": target, "folds": folds, "has_ctx": ctx is not None})


def test_schema_from_signature_and_docstring():
    spec = build_spec(sample)
    schema = spec.to_anthropic()
    assert schema["name"] == "sample"
    assert schema["description"] == "Do a sample thing."
    props = schema["input_schema"]["properties"]
    assert set(props) == {"target", "folds", "mode", "columns"}  # the context stays out
    assert schema["input_schema"]["required"] == ["target"]
    assert props["target"]["description"] == "the column to predict."
    assert props["mode"]["enum"] == ["fast", "slow"]
    assert props["folds"]["default"] == 5


def test_validation_rejects_bad_arguments():
    spec = build_spec(sample)
    with pytest.raises(ValidationError):
        spec.validate({"folds": 3})  # target missing
    with pytest.raises(ValidationError):
        spec.validate({"target": "y", "folds": "many"})
    with pytest.raises(ValidationError):
        spec.validate({"target": "y", "unexpected": 1})  # extra keys are refused, not ignored


def test_invoke_injects_context(tmp_path):
    spec = build_spec(sample)
    ctx = ToolContext(session_dir=tmp_path, artifacts_dir=tmp_path)
    out = spec.invoke(ctx, {"target": "y", "folds": "3"})
    assert out.summary == {"target": "y", "folds": 3, "has_ctx": True}


def test_docstring_required():
    def nodoc(x: int) -> dict:
        return {}

    with pytest.raises(TypeError):
        build_spec(nodoc)


def test_builtin_tools_are_registered_with_valid_schemas():
    tools = all_tools()
    for name in ("ask_user", "profile_data", "define_task", "train_models", "tune_model", "evaluate_model",
                 "explain_model", "write_notebook", "write_report", "plan_monitoring"):
        assert name in tools
        schema = tools[name].to_anthropic()["input_schema"]
        assert schema["type"] == "object"
        assert len(tools[name].description) > 40
    assert tools["ask_user"].runs_in_loop
