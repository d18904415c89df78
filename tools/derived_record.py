"""The record of derived features engineer_features measured (derived_features.json), and the
report and model card lines made from it. A library module (no @tool): engineer_features writes
the record, the report reads it, neither imports the other.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

DERIVED_RECORD = "derived_features.json"


def read_record(artifacts_dir) -> dict[str, Any]:
    """The record of measured derived features ({} before engineer_features has run)."""
    path = Path(artifacts_dir) / DERIVED_RECORD
    try:
        return json.loads(path.read_text()) if path.exists() else {}
    except ValueError:
        return {}


def derived_rows(artifacts_dir) -> list[dict[str, Any]]:
    """For the report, model card and notebook: each derived feature in the task, with its
    expression, the CV change measured when it was added and its permutation importance on the
    test split (None when not measured)."""
    from dsagent.tools.schemas import Explanation, TaskSpec

    try:
        task = TaskSpec.read(Path(artifacts_dir))
    except (OSError, ValueError):
        return []
    if task is None:
        return []
    rec = read_record(artifacts_dir)
    measured = {r["name"]: r for r in rec.get("history", []) + rec.get("features", [])}
    try:
        expl = Explanation.read(Path(artifacts_dir))
    except (OSError, ValueError):
        expl = None
    importance = {r["feature"]: r for r in (expl.derived_importance if expl else [])}
    out = []
    for text in (task.get("derived") or {}).get("features") or []:
        name, expression = (s.strip() for s in text.split("=", 1))
        m = measured.get(name) or {}
        imp = importance.get(name) or {}
        out.append({"name": name, "expression": expression, "cv_change": m.get("cv_change"), "se": m.get("se"),
                    "importance": imp.get("importance"), "importance_std": imp.get("std"),
                    "scoring": expl.scoring if expl else None})
    return out


def derived_markdown(artifacts_dir, heading: str = "## Derived features") -> list[str]:
    """Report and model card lines: each derived feature, its expression and its measured CV change."""
    from dsagent.tools.markdown import md_cell

    rows = derived_rows(artifacts_dir)
    tried = _candidate_lines(artifacts_dir) + _selection_lines(artifacts_dir)
    if not rows:
        return [heading, "", "No derived feature is in the model.", "", *tried] if tried else []
    out = [heading, "", "Computed by the model's Pipeline from raw columns (fitted on training rows only), so "
           "`dsagent predict` and the notebook compute them too.", "",
           "| feature | expression | CV change when added (± s.e.) | importance on the test split (± s.d.) |",
           "|---|---|---|---|"]
    for r in rows:
        change = "not measured" if r["cv_change"] is None else (
            f"{r['cv_change']:+.4g}" + (f" ± {r['se']:.2g}" if r.get("se") is not None else ""))
        importance = "not measured" if r["importance"] is None else (
            f"{r['importance']:+.4g} ± {r['importance_std'] or 0:.2g}")
        out.append(f"| `{md_cell(r['name'], 60)}` | `{md_cell(r['expression'], 200)}` | {change} | {importance} |")
    scoring = next((r["scoring"] for r in rows if r["importance"] is not None), None)
    if scoring:
        out += ["", f"Importance: the drop in {scoring} on the test split when the feature's computed values are "
                "shuffled among the rows (permutation importance, as for the raw columns in the explanation)."]
    return out + [""] + tried


def _selection_lines(artifacts_dir) -> list[str]:
    """Wide data: what the selection dropped on the training rows, and why (report lines)."""
    from dsagent.tools.markdown import md_cell

    sel = read_record(artifacts_dir).get("selection")
    if not sel:
        return []
    dropped = sel.get("dropped") or {}
    m = sel.get("measured")
    how = ("low-importance columns dropped too: CV changed " f"{m['cv_change']:+.4g} ± {m['se'] or 0:.2g}" if sel["importance"] and m
           else "low-importance columns kept" + (f" (dropping them changed CV {m['cv_change']:+.4g} ± {m['se'] or 0:.2g}, "
                                                 "not beyond its s.e.)" if m else " (not measured)"))
    out = [f"Wide data ({sel['n_columns']} numeric columns): the Pipeline's first step drops near-constant, duplicate "
           f"and correlated columns, judged on each fold's training rows; {how}. On the training split it drops "
           f"{len(dropped)}:", ""]
    shown = list(dropped.items())[:40]
    out += [f"- `{md_cell(c, 60)}`: {md_cell(why, 80)}" for c, why in shown]
    if len(dropped) > len(shown):
        out.append(f"- ... and {len(dropped) - len(shown)} more (derived_features.json)")
    return out + [""]


def _candidate_lines(artifacts_dir) -> list[str]:
    """The automatic candidates tried, kept or dropped, each with its CV change (report lines)."""
    from dsagent.tools.markdown import md_cell

    rec = read_record(artifacts_dir)
    auto = [r for r in rec.get("features", []) if r.get("source") in ("auto", "calendar")]
    if not auto and not rec.get("not_reached"):
        return []
    calendar = sum(r.get("source") == "calendar" for r in auto)
    screen = rec.get("screening")
    how = (f" (screened with a {screen['probe']['params'].get('max_iter')}-round boosted-trees probe on {screen['folds']} "
           f"folds of {screen['rows']} rows, the most promising first)" if screen else "")
    out = [f"Automatic candidates: {len(auto)} tried{how}, each kept only when the cross-validated {rec.get('metric')} "
           "(training folds only) improved by more than its standard error"
           + (f"; the first {calendar} are calendar features of the time column (the row's own timestamp, known when "
              "it is scored)." if calendar else "."), "",
           "A candidate the screening keeps is measured again on another sample and split, and stays only when "
           "that says it helps too.", "",
           "| candidate | expression | CV change (± s.e.) | decision |", "|---|---|---|---|"]
    for r in auto:
        change = f"{r['cv_change']:+.4g}" + (f" ± {r['se']:.2g}" if r.get("se") is not None else "")
        decision = "kept" if r["kept"] else "dropped"
        if r.get("confirmation"):  # screened as helpful, measured again on another sample and split
            c = r["confirmation"]
            decision += (" (not confirmed in time)" if isinstance(c, str) else
                         f" (again {c['cv_change']:+.4g}" + (f" ± {c['se']:.2g}" if c.get("se") is not None else "") + ")")
        out.append(f"| `{md_cell(r['name'], 60)}` | `{md_cell(r['expression'], 200)}` | {change} | {decision} |")
    if rec.get("not_reached"):
        out += ["", f"Not measured within the time share (so not kept): {', '.join(rec['not_reached'])}."]
    return out + [""]
