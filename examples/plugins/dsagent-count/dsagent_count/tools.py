"""A tool for count targets, shipped by the plugin: is the Poisson assumption reasonable here?

A plugin tool reaches the agent only when its persona allows it: by name, by package
(`plugin:dsagent-count`) or by the wildcard `plugin:*` (docs/plugins.md).
"""

from __future__ import annotations

from dsagent.tools.registry import ToolContext, ToolError, ToolOutput, tool


@tool
def check_dispersion(ctx: ToolContext, target: str) -> ToolOutput:
    """Check whether a count target fits a Poisson model: its mean, variance and their ratio (the
    dispersion). Near 1 the Poisson deviance and a Poisson GLM fit; well above 1 (overdispersion)
    the counts vary more than Poisson allows, so intervals from a Poisson model are too narrow.

    Args:
        target: the count column.
    """
    from dsagent.tools.data import load_dataset

    df, _ = load_dataset(ctx)
    if target not in df.columns:
        raise ToolError(f"column {target!r} is not in the data; pass the count column")
    y = df[target].dropna().astype(float)
    if y.empty or (y < 0).any():
        raise ToolError(f"{target!r} is not a count column (empty or negative values)")
    mean, var = float(y.mean()), float(y.var())
    ratio = var / mean if mean > 0 else float("nan")
    verdict = "Poisson fits" if ratio <= 1.5 else "overdispersed: Poisson intervals would be too narrow"
    return ToolOutput({"target": target, "mean": round(mean, 4), "variance": round(var, 4),
                       "dispersion": round(ratio, 3), "verdict": verdict})
