"""Derived features: `name = expression` in a small, safe language, and the transformer that
computes them inside the model's Pipeline.

The language (documented in docs/derived_features.md):
    column names (backquotes for names with spaces: `monthly income`), numbers, "strings",
    + - * / // % **, comparisons (== != < <= > >=), and / or / not,
    log sqrt abs clip(x, lo, hi) where(cond, a, b),
    year quarter month day dayofweek hour is_month_end (of a date column), days_between(a, b) (days from a to b),
    length(c) contains(c, "text"),
    group aggregates: mean median min max std sum (of an expression), count(), written
    `mean(income) by region`, optionally `over 90 days` (or hours, weeks) when the task has a time
    column: then only the group's rows strictly before the row's own time, within the window, count.

An expression is parsed with `ast` (mode="eval") after a textual rewrite of backquotes and of the
`by`/`over` suffix into keyword arguments; the tree is checked against a whitelist of node types
and function names, and evaluated by the walker below on pandas columns. Nothing is ever passed to
`eval` or `compile`, so an attribute, a dunder name, a subscript or a call outside the list cannot
reach Python: it is refused with a one-line reason before any data is read.

Every derived feature is numeric (comparisons and `contains` give 1.0/0.0); undefined values
(log of a negative number, division by zero) are missing, and the Pipeline imputes them like any
missing number.

No @tool here: tools/engineer.py is the tool; tools/features.py puts the transformer in front of
the preprocessing.
"""

from __future__ import annotations

import ast
import re
from dataclasses import dataclass, field
from typing import Any

MAX_LENGTH = 500  # characters in one `name = expression`
MAX_DEPTH = 30  # nesting of the parsed tree
MAX_NODES = 200
MAX_FEATURES = 50

ROW_FUNCTIONS = {  # name -> (min args, max args)
    "log": (1, 1), "sqrt": (1, 1), "abs": (1, 1), "clip": (3, 3), "where": (3, 3),
    "year": (1, 1), "quarter": (1, 1), "month": (1, 1), "day": (1, 1), "dayofweek": (1, 1), "hour": (1, 1),
    "is_month_end": (1, 1), "days_between": (2, 2),
    "length": (1, 1), "contains": (2, 2),
}
AGGREGATES = {"mean", "median", "min", "max", "std", "sum", "count"}
# With no row of a group to aggregate, a count or a sum is 0; the other statistics take the value
# over all training rows (plain group aggregates) or stay missing (windowed ones: a global value
# would read rows after the row's own time).
ZERO_WHEN_EMPTY = {"count", "sum"}
WINDOW_UNITS = {"hour": 3600.0, "day": 86400.0, "week": 7 * 86400.0}
NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
PLACEHOLDER = re.compile(r"__bq\d+__")
_BINOPS = (ast.Add, ast.Sub, ast.Mult, ast.Div, ast.FloorDiv, ast.Mod, ast.Pow)
_CMPOPS = (ast.Eq, ast.NotEq, ast.Lt, ast.LtE, ast.Gt, ast.GtE)
_REFUSED = {  # what a refused node is, in words the user knows
    ast.Attribute: "attribute access (x.y)", ast.Subscript: "subscripts (x[...])", ast.Lambda: "lambda",
    ast.ListComp: "comprehensions", ast.GeneratorExp: "comprehensions", ast.DictComp: "comprehensions",
    ast.SetComp: "comprehensions", ast.List: "lists", ast.Tuple: "tuples", ast.Dict: "dicts", ast.Set: "sets",
    ast.Starred: "star arguments", ast.NamedExpr: "assignment (:=)", ast.IfExp: "`a if c else b` (use where(c, a, b))",
    ast.JoinedStr: "f-strings", ast.Await: "await", ast.Yield: "yield", ast.Slice: "slices",
}


class DerivedError(ValueError):
    """A derived feature that cannot be accepted; the message is one line saying why and what to do."""


@dataclass
class Parsed:
    name: str
    expression: str  # as the user wrote it
    tree: ast.expr
    inputs: list[str]  # raw columns read, in first-use order
    aggregates: list[ast.Call] = field(default_factory=list)  # in walk order; their index keys the fitted tables
    windowed: bool = False


def parse_feature(text: str) -> Parsed:
    """`name = expression` -> Parsed, or DerivedError with a one-line reason."""
    if not isinstance(text, str):
        raise DerivedError(f"a derived feature is a string `name = expression`, not {type(text).__name__}")
    shown = _shown(text)
    if len(text) > MAX_LENGTH:
        raise DerivedError(f"derived feature {shown} is {len(text)} characters long; keep it under {MAX_LENGTH}")
    if "\n" in text or "\r" in text:
        raise DerivedError(f"derived feature {shown} spans several lines; write it on one line")
    m = re.match(r"^\s*([^=`\s]+)\s*=(?!=)(.*)$", text)
    if not m:
        raise DerivedError(f"derived feature {shown} is not `name = expression` (e.g. `debt_ratio = debt / income`)")
    name, expr = m.group(1), m.group(2).strip()
    if not NAME.match(name) or name.startswith("__"):
        raise DerivedError(f"derived feature name {name!r} must be letters, digits and underscores "
                           "(not starting with a digit or a double underscore)")
    if not expr:
        raise DerivedError(f"derived feature {name!r} has no expression after `=`")
    source, columns = _rewrite(expr, name)
    try:
        tree = ast.parse(source, mode="eval").body
    except (SyntaxError, ValueError) as exc:
        raise DerivedError(f"derived feature {name!r}: cannot parse `{_shown(expr, 80)}` ({exc.msg if isinstance(exc, SyntaxError) else exc}); "
                           "see docs/derived_features.md for the syntax") from None
    except (RecursionError, MemoryError):
        raise DerivedError(f"derived feature {name!r} is nested too deeply; simplify it") from None
    parsed = Parsed(name, expr, tree, [])
    try:
        _Checker(parsed, columns).check(tree, 0, in_aggregate=False)
    except RecursionError:
        raise DerivedError(f"derived feature {name!r} is nested too deeply; simplify it") from None
    return parsed


def _shown(text: Any, limit: int = 60) -> str:
    s = str(text).splitlines()[0] if str(text) else ""
    return repr(s[:limit] + ("..." if len(str(text)) > limit else ""))


def _rewrite(expr: str, name: str) -> tuple[str, dict[str, str]]:
    """Backquoted column names -> placeholder names; `f(x) by col [over N unit]` -> `f(x, by=col,
    over="N unit")`. Only syntax changes here: the result is parsed and checked like anything else."""
    if PLACEHOLDER.search(expr):
        raise DerivedError(f"derived feature {name!r}: names with double underscores are not allowed")
    columns: dict[str, str] = {}

    def quoted(m: re.Match) -> str:
        key = f"__bq{len(columns)}__"
        columns[key] = m.group(1)
        return key

    out = re.sub(r"`([^`]+)`", quoted, expr)
    if "`" in out:
        raise DerivedError(f"derived feature {name!r}: a backquote is not closed; write `column name` in a pair")

    def by(m: re.Match) -> str:
        opening = m.group(1) is not None
        over = f', over="{m.group(3)} {m.group(4)}"' if m.group(3) else ""
        return f"{'(' if opening else ', '}by={m.group(2)}{over})"

    out = re.sub(r"(\(\s*)?\)\s*by\s+(__bq\d+__|[A-Za-z_]\w*)(?:\s+over\s+(\d+(?:\.\d+)?)\s*([A-Za-z]+))?", by, out)
    if re.search(r"\b(by|over)\b(?!=)", out):
        raise DerivedError(f"derived feature {name!r}: write group aggregates as `mean(x) by column` "
                           "(optionally `over 90 days`), right after the aggregate's closing parenthesis")
    return out, columns


class _Checker:
    """The whitelist walk: every node is one we know how to evaluate, or the feature is refused."""

    def __init__(self, parsed: Parsed, columns: dict[str, str]):
        self.p, self.columns, self.nodes = parsed, columns, 0

    def fail(self, why: str) -> None:
        raise DerivedError(f"derived feature {self.p.name!r}: {why}")

    def column(self, node: ast.expr) -> str:
        if not isinstance(node, ast.Name):
            self.fail("a group aggregate's `by` must name one column")
        return self.name(node)

    def name(self, node: ast.Name) -> str:
        if node.id in self.columns:
            col = self.columns[node.id]
        elif node.id.startswith("__") or node.id.endswith("__"):
            self.fail(f"names with double underscores ({node.id}) are not allowed")
        elif node.id in ROW_FUNCTIONS or node.id in AGGREGATES:
            self.fail(f"{node.id} is a function: call it, e.g. {node.id}(x); backquote a column of that name")
        else:
            col = node.id
        node.column = col  # type: ignore[attr-defined]  # the walker reads the resolved name
        if col not in self.p.inputs:
            self.p.inputs.append(col)
        return col

    def check(self, node: ast.AST, depth: int, in_aggregate: bool) -> None:
        self.nodes += 1
        if depth > MAX_DEPTH or self.nodes > MAX_NODES:
            self.fail(f"the expression is too large or nested too deeply (limits: depth {MAX_DEPTH}, {MAX_NODES} parts)")
        d = depth + 1
        if isinstance(node, ast.Name):
            self.name(node)
        elif isinstance(node, ast.Constant):
            if isinstance(node.value, bool) or not isinstance(node.value, (int, float, str)):
                self.fail(f"only numbers and \"strings\" are allowed as constants, not {node.value!r}"[:200])
        elif isinstance(node, ast.BinOp):
            if not isinstance(node.op, _BINOPS):
                self.fail(f"operator {type(node.op).__name__} is not allowed; use + - * / // % **")
            self.check(node.left, d, in_aggregate)
            self.check(node.right, d, in_aggregate)
        elif isinstance(node, ast.UnaryOp):
            if not isinstance(node.op, (ast.USub, ast.UAdd, ast.Not)):
                self.fail(f"operator {type(node.op).__name__} is not allowed")
            self.check(node.operand, d, in_aggregate)
        elif isinstance(node, ast.BoolOp):
            for v in node.values:
                self.check(v, d, in_aggregate)
        elif isinstance(node, ast.Compare):
            if not all(isinstance(op, _CMPOPS) for op in node.ops):
                self.fail("only == != < <= > >= comparisons are allowed (no `in` or `is`)")
            for v in [node.left, *node.comparators]:
                self.check(v, d, in_aggregate)
        elif isinstance(node, ast.Call):
            self.call(node, d, in_aggregate)
        else:
            what = next((w for t, w in _REFUSED.items() if isinstance(node, t)), type(node).__name__)
            self.fail(f"not allowed in a derived feature: {what}")

    def call(self, node: ast.Call, d: int, in_aggregate: bool) -> None:
        if not isinstance(node.func, ast.Name):
            self.fail("only the listed functions may be called (attribute access (x.y) is not allowed)")
        fn = node.func.id
        if fn in AGGREGATES:
            if in_aggregate:
                self.fail(f"{fn}(...) inside another aggregate is not allowed")
            keys = {k.arg: k.value for k in node.keywords}
            if set(keys) - {"by", "over"} or None in keys:
                self.fail(f"{fn}(...) takes no keyword arguments; write `{fn}(x) by column`")
            if "by" not in keys:
                self.fail(f"{fn}(...) is a group aggregate: write `{fn}({'' if fn == 'count' else 'x'}) by column`")
            want = 0 if fn == "count" else 1
            if len(node.args) != want:
                self.fail(f"{fn} takes {'no argument: count() by column' if want == 0 else 'one argument'}")
            for a in node.args:
                self.check(a, d, True)
            self.column(keys["by"])
            if "over" in keys:
                over = keys["over"]
                if not (isinstance(over, ast.Constant) and isinstance(over.value, str)):
                    self.fail("`over` takes a window such as 90 days")
                window_seconds(over.value, self.p.name)
                self.p.windowed = True
            node.aggregate = len(self.p.aggregates)  # type: ignore[attr-defined]
            self.p.aggregates.append(node)
            return
        if fn not in ROW_FUNCTIONS:
            allowed = ", ".join(sorted(ROW_FUNCTIONS) + sorted(AGGREGATES))
            self.fail(f"function {fn!r} is not allowed; use one of {allowed}")
        if node.keywords:
            self.fail(f"{fn}(...) takes no keyword arguments")
        lo, hi = ROW_FUNCTIONS[fn]
        if not lo <= len(node.args) <= hi:
            self.fail(f"{fn} takes {lo} argument{'s' if lo > 1 else ''}")
        if fn == "contains" and not (isinstance(node.args[1], ast.Constant) and isinstance(node.args[1].value, str)):
            self.fail('contains(column, "text") takes the text as a quoted string')
        for a in node.args:
            self.check(a, d, in_aggregate)


def window_seconds(text: str, name: str = "?") -> float:
    m = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([A-Za-z]+?)s?\s*", text)
    if not m or m.group(2).lower() not in WINDOW_UNITS or float(m.group(1)) <= 0:
        raise DerivedError(f"derived feature {name!r}: window {text!r} is not a positive number of hours, days or weeks")
    return float(m.group(1)) * WINDOW_UNITS[m.group(2).lower()]


def check_features(texts: list[str], columns: list[str] | None = None, *, target: str | None = None,
                   time_column: str | None = None) -> list[Parsed]:
    """Parse a list of derived features and check them against the data's columns (when given):
    unknown columns, names that clash, the target read (leakage: unknown at prediction time), a
    window without a time column. DerivedError on the first problem."""
    if not isinstance(texts, list):
        raise DerivedError("derived_features is a list of `name = expression` strings")
    if len(texts) > MAX_FEATURES:
        raise DerivedError(f"{len(texts)} derived features; at most {MAX_FEATURES}")
    parsed = [parse_feature(t) for t in texts]
    seen: set[str] = set()
    for p in parsed:
        if p.name in seen:
            raise DerivedError(f"derived feature {p.name!r} is defined twice; give each its own name")
        seen.add(p.name)
        if columns is None:
            continue
        if p.name in columns:
            raise DerivedError(f"derived feature {p.name!r} has the name of a data column; choose another name")
        for col in p.inputs:
            if col not in columns:
                import difflib

                close = difflib.get_close_matches(col, [str(c) for c in columns], n=3, cutoff=0.6)
                hint = f"; did you mean {', '.join(close)}?" if close else "; backquote names with spaces: `a b`"
                raise DerivedError(f"derived feature {p.name!r} reads {col!r}, which is not a column of the data{hint}")
        if target is not None and target in p.inputs:
            raise DerivedError(f"derived feature {p.name!r} reads the target {target!r}; it is unknown when predicting")
        if p.windowed and not time_column:
            raise DerivedError(f"derived feature {p.name!r} uses `over` a time window, which needs a time column: "
                               "set time_column in the answers")
    return parsed


def feature_inputs(texts: list[str], time_column: str | None = None) -> list[str]:
    """The raw columns a list of derived features reads, in first-use order (with the time column
    when a windowed aggregate needs it)."""
    out: list[str] = []
    for p in (parse_feature(t) for t in texts):
        out += [c for c in p.inputs + ([time_column] if p.windowed and time_column else []) if c not in out]
    return out


EARLY_CHECK_BYTES = 200 * 1024 * 1024  # larger files are read once, by the tools; define_task checks them


def check_against_file(texts: list[str], data_path: Any, *, target: str | None, time_column: str | None) -> None:
    """Before a run starts: the derived features against the data file's columns (DerivedError).
    Reads the file with the tools' own reader so the column names are the ones the tools see; a
    file too large to read twice is left to define_task."""
    from pathlib import Path

    path = Path(data_path)
    if not texts or not path.is_file():
        return
    from dsagent.tools.data import column_names  # pandas: imported only when there is something to check

    try:
        columns = column_names(path, max_bytes=EARLY_CHECK_BYTES)  # cached: the answers check read it already
    except Exception:  # an unreadable file is reported by profile_data, with its own reason
        return
    if columns is not None:
        check_features(list(texts), columns, target=target, time_column=time_column)
