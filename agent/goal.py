"""Understanding a goal written in words, offline (no LLM): which column is the target, what kind of
task, which metric, what mistakes cost, the time budget, how much interpretability matters, and
which columns carry time and groups.

Everything is table-driven (the tables below) so a new phrasing is a new row, not new code. Only
what the sentence actually says is returned: a key that is not understood stays unset and the usual
question or default applies. Stdlib only (agent/ never imports ML libraries).
"""

from __future__ import annotations

import difflib
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

# ------------------------------------------------------------------------------------ tables

# Synonym groups: a word of the sentence in a group points at a column whose name holds a word of
# the same group ("which customers will leave" -> `Churn`). Stems, compared after _stem.
SYNONYMS: list[set[str]] = [
    {"churn", "leave", "cancel", "attrition", "quit", "defect", "unsubscribe", "retention", "retain", "exit"},
    {"price", "sell", "sale", "worth", "valuation", "value"},
    {"sales", "revenue", "demand", "turnover"},
    {"default", "repay", "delinquent", "delinquency"},
    {"fraud", "fraudulent", "scam"},
    {"survive", "survival", "survived", "die", "died", "death", "mortality"},
    {"income", "salary", "earn", "wage", "pay"},
    {"strength", "strong"},
    {"quality", "rating", "grade"},
    {"spend", "spending", "expenditure"},
    {"click", "ctr"},
    {"convert", "conversion", "purchase", "buy"},
    {"delay", "late", "lateness"},
    {"species", "kind"},
]
# Names that are a target by convention: the clear choice when the goal names nothing.
GENERIC_TARGETS = ("target", "label", "y", "outcome", "class", "response")

# Words never read as a column name, whatever the data calls its columns (a column named `a`).
STOPWORDS = {"a", "an", "the", "i", "it", "to", "of", "in", "on", "at", "is", "be", "we", "us", "and", "or", "for", "as",
             "by", "if", "so", "do", "me", "my", "our", "you", "your", "this", "that", "what", "which", "will"}
# A column named right after these is a grouping, not what is predicted ("sales per store").
GROUPING_WORDS = {"by", "per", "each", "across"}
# After these, up to the end of the clause or an intent word, columns are inputs ("from cement and age").
INPUT_CUES = {"using", "from", "with", "given", "based", "excluding", "without", "ignore", "ignoring", "drop", "except",
              "features"}
INTENT_WORDS = {"predict", "forecast", "estimate", "classify", "which", "what", "will", "whether", "optimise",
                "optimize", "maximise", "maximize", "minimise", "minimize", "keep", "use", "must", "should"}

# (pattern, metric name as tools/metrics.py spells it): the most specific first.
METRICS: list[tuple[str, str]] = [
    (r"\bprecision[ -]recall (auc|curve)\b|\bpr[ -]?auc\b|\bauprc\b|\baverage precision\b", "pr_auc"),
    (r"\blog[ -]?loss\b|\bcross[ -]entropy\b|\bwell[ -]calibrated\b", "log_loss"),
    (r"\broc[ -]?auc\b|\bauc\b|\barea under the (roc )?curve\b", "roc_auc"),
    (r"\bbalanced accuracy\b", "balanced_accuracy"),
    (r"\bmacro[ -]?f1\b|\bf1[ -]macro\b", "f1_macro"),
    (r"\bf1\b|\bf[ -]score\b|\bf[ -]measure\b", "f1"),
    (r"\brecall\b|\bsensitivity\b|\bcatch as many\b|\bmiss as few\b", "recall"),
    (r"\bprecision\b|\bas few false alarms\b", "precision"),
    (r"\baccuracy\b", "accuracy"),
    (r"\brmse\b|\broot mean squared? error\b|\bmean squared error\b|\bmse\b", "rmse"),
    (r"\bmae\b|\bmean absolute error\b|\babsolute error\b", "mae"),
    (r"\bmape\b|\bpercent(age)? error\b", "mape"),
    (r"\br2\b|\br squared\b|\bvariance explained\b|\bexplained variance\b", "r2"),
]

# Task words that map to an answers value. Broad words ("classify") do not: the data decides binary
# or multiclass.
TASKS: list[tuple[str, str]] = [
    (r"\bmulti[ -]?class\b|\bwhich of (several|the) (categories|classes|types)\b", "multiclass"),
    (r"\bbinary\b|\bwhether\b|\byes or no\b|\bor not\b", "binary"),
    # not "logistic regression" (a classifier: a model family, see FAMILY_NAMES)
    (r"(?<!logistic )\bregression\b|\bhow (much|many|long)\b|\bcontinuous\b|\bexact (number|amount|value)\b", "regression"),
]
CLASSIFICATION_WORDS = r"\bclassif(y|ication|ier)\b|\bcategori[sz]e\b|\bwhich \w+s? will\b|\bwill \w+ (or not)?\b"
# Task kinds dsagent does not build yet: noted and echoed, never silently dropped.
NOTED_KINDS: list[tuple[str, str]] = [
    (r"\bforecast(s|ing)?\b|\bnext (week|month|quarter|year)\b", "forecast"),
    (r"\bsegment(s|ation)?\b|\bclusters?\b|\bgroup (the |our )?(customers|users|clients)\b", "segment"),
    (r"\brank(ing)?\b|\bprioriti[sz]e\b|\btop \d+\b", "rank"),
    (r"\bflag unusual\b|\banomal(y|ies|ous)\b|\boutliers?\b|\bunusual\b", "flag unusual"),
]

FP_WORDS = (r"false alarms?|false positives?|wasted \w+|unnecessary \w+|needless \w+|wrongly flagged \w+|"
            r"flagging a good \w+")
FN_WORDS = r"false negatives?|missed \w+|missing an? \w+|lost \w+|undetected \w+|a miss\b"

INTERPRETABILITY: list[tuple[str, str]] = [
    (r"\b(accuracy|performance) is all that matters\b|\bonly (accuracy|performance) matters\b|\bblack[ -]box is fine\b|"
     r"\bdo(n't| not) care (about|how)\b|\binterpretability (does not|doesn't) matter\b", "low"),
    (r"\bsome interpretability\b|\breasonably (explainable|interpretable)\b|\bnice to explain\b", "medium"),
    (r"\bexplainab|\binterpretab|\btransparent\b|\bregulator|\bauditab|\bexplain (it|each|every|why|the)\b|"
     r"\bwhite[ -]box\b|\bunderstand (why|each|every|how)\b|\bsimple model\b", "high"),
]

# Model families a goal may restrict the search to ("XGBoost only", "just use linear or random forest
# models"): the phrases name the built-in families; answers files and hosts may name any installed one.
FAMILY_NAMES: list[tuple[str, str]] = [
    (r"xgboost", "xgboost"), (r"lightgbm|light gbm", "lightgbm"), (r"catboost", "catboost"),
    (r"hist(ogram)? gradient boosting|histgradientboosting|hist gb", "hist_gb"),
    (r"(gradient )?boost(ing|ed trees)|gbms?", "hist_gb xgboost lightgbm catboost"),  # any of them
    (r"random forests?", "random_forest"),
    (r"extra trees|extremely randomi[sz]ed trees", "extra_trees"), (r"neural net(work)?s?|mlps?", "mlp"),
    (r"(linear|logistic|ridge)( regression)?", "linear"),
]
_FAMILY = "|".join(f"(?:{pattern})" for pattern, _ in FAMILY_NAMES)
_FAMILY_LIST = rf"(?:an? )?(?:{_FAMILY})(?: models?)?(?:(?:,| or| and|, or|, and) (?:an? )?(?:{_FAMILY})(?: models?)?)*"
FAMILIES_ONLY = re.compile(rf"\b(?:only|just) (?:use |try |consider |fit |train |allow )?(?P<a>{_FAMILY_LIST})\b|"
                           rf"\b(?P<b>{_FAMILY_LIST}) only\b")

JUDGEMENT = r"\buse your (judgement|judgment)\b|\byour call\b|\byou decide\b|\bup to you\b|\bdo(n't| not) ask\b"

NUMBER_WORDS = {"a": 1, "an": 1, "one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6, "seven": 7, "eight": 8,
                "nine": 9, "ten": 10, "fifteen": 15, "twenty": 20, "thirty": 30, "forty": 40, "fifty": 50,
                "sixty": 60, "ninety": 90, "half a": 0.5, "half an": 0.5, "a couple of": 2, "a few": 3}
UNITS = {"s": 1, "sec": 1, "secs": 1, "second": 1, "seconds": 1, "m": 60, "min": 60, "mins": 60, "minute": 60,
         "minutes": 60, "h": 3600, "hr": 3600, "hrs": 3600, "hour": 3600, "hours": 3600}
_NUM = r"(?P<num>\d+(?:\.\d+)?|" + "|".join(sorted(map(re.escape, NUMBER_WORDS), key=len, reverse=True)) + ")"
_UNIT = r"(?P<unit>" + "|".join(sorted(UNITS, key=len, reverse=True)) + r")\b"
# A duration counts as the budget only after a word that makes it one ("keep it to", "within",
# "you have") or at the start of a clause ("...; 5 minutes"): "delays over 5 minutes" is data.
BUDGET = re.compile(r"(?:\b(?:keep (?:it )?(?:to|under|within)|within|under|budget(?: of)?|spend|take|at most|"
                    r"no more than|limit(?:ed)? to|max(?:imum)?|you have|in(?: about| under)?|for)\s+|(?:^|[,;:.(])\s*)"
                    + _NUM + r"\s*" + _UNIT)

TIME_WORDS = r"\b(by|per|each|every) (day|week|month|quarter|year)\b|\b(daily|weekly|monthly|quarterly|yearly)\b|" \
             r"\bover time\b|\bseasonal\w*\b|\btrend\b|\bin time order\b"
# A word of the column's name: `signup_date`, `OrderDate`, `month`; not `monthly_charges` (a price).
DATE_NAME = re.compile(r"^(\w*(date|time|timestamp)|month|year|day|week|period|ds|dt)$", re.I)
GROUP_AFTER = re.compile(r"\b(?:per|for each|each|by|across|within) (\w+)")


# ------------------------------------------------------------------------------------ result


@dataclass
class Understood:
    values: dict[str, Any] = field(default_factory=dict)  # answers keys -> value
    reasons: dict[str, str] = field(default_factory=dict)  # key -> what in the sentence said so
    notes: list[str] = field(default_factory=list)  # understood but not acted on (task kinds not built yet)
    kind: str | None = None  # classification | regression | forecast | ... as the words said
    judgement: bool = False  # "use your judgement on anything you need to ask"
    candidates: list[str] = field(default_factory=list)  # columns the goal names when it names several

    def line(self) -> str:
        """One line for the person to check (and correct)."""
        keys = sorted(self.values, key=lambda k: LINE_ORDER.index(k) if k in LINE_ORDER else len(LINE_ORDER))
        parts = [f"{LABELS.get(k, k)} {fmt_value(k, self.values[k])}" for k in keys]
        parts += self.notes
        if self.judgement:
            parts.append("the rest left to my judgement")
        return "Understood from your goal: " + (", ".join(parts) if parts else "nothing I can act on") + "."


LINE_ORDER = ["target", "task", "metric", "positive_class", "cost_fp", "cost_fn", "time_budget", "interpretability",
              "model_families", "time_column", "group_column"]
LABELS = {"model_families": "model families", "time_budget": "budget", "cost_fp": "false-positive cost", "cost_fn": "false-negative cost",
          "time_column": "time column", "group_column": "group column", "positive_class": "positive class"}


def fmt_value(key: str, value: Any) -> str:
    if key == "time_budget":
        return f"{value:g} s"
    if isinstance(value, list):
        return " and ".join(map(str, value))
    return f"{value:g}" if isinstance(value, float) else str(value)


# ------------------------------------------------------------------------------------ text


def normalize(text: str) -> str:
    """Lower case, camelCase split, every run of punctuation/underscores/space -> one space."""
    text = re.sub(r"(?<=[a-z])(?=[A-Z])", " ", text)
    return " ".join(re.sub(r"[^0-9a-z$.%²]+", " ", text.lower().replace("²", "2")).replace(". ", " ").split()).strip(" .")


def _stem(word: str) -> str:
    for suffix in ("ers", "ing", "ed", "er", "es", "s"):
        if word.endswith(suffix) and len(word) - len(suffix) >= 3:
            word = word[: -len(suffix)]
            break
    if len(word) > 3 and word[-1] == word[-2]:  # "stopped" -> "stopp" -> "stop"
        word = word[:-1]
    return word[:-1] if len(word) > 3 and word.endswith("e") else word  # "store" and "stores" -> "stor"


def _close(a: str, b: str) -> bool:
    """A close spelling ("strenght" for strength), word by word."""
    return difflib.SequenceMatcher(None, a, b).ratio() >= 0.8


def _clauses(goal: str) -> list[list[str]]:
    """The words of each clause (a sentence, or a new request after a comma)."""
    parts = re.split(r"[.;!?]+(?:\s|$)|,\s+(?=predict|forecast|estimate|which|what|will)", goal)
    return [w for w in (_words(p) for p in parts) if w]


def _words(text: str) -> list[str]:
    return re.findall(r"[0-9a-z]+", normalize(text))


# ------------------------------------------------------------------------------------ target


def _mentions(words: list[str], columns: list[str]) -> list[tuple[int, int, str, str]]:
    """(position, length, column, how) for every column the words name: by name, by a word-form of
    its name, by a close spelling, or by a synonym."""
    stems = [_stem(w) for w in words]
    found: list[tuple[int, int, str, str]] = []
    for col in columns:
        cw = _words(col)
        if not cw or cw == [w for w in cw if w in STOPWORDS]:
            continue
        cs = [_stem(w) for w in cw]
        n = len(cw)
        for i in range(len(words) - n + 1):
            if words[i:i + n] == cw:
                found.append((i, n, col, "named"))
            elif stems[i:i + n] == cs:
                found.append((i, n, col, "named"))
            elif len("".join(cw)) >= 5 and all(a == b or (len(b) >= 4 and _close(a, b)) for a, b in zip(words[i:i + n], cw)):
                found.append((i, n, col, f"{' '.join(words[i:i + n])!r} is close to {col}"))
        if n > 1 and cs[-1] not in ("id", "date", "time"):  # "what drives strength" names `compressive_strength`
            found += [(i, 1, col, "named") for i, s in enumerate(stems) if s == cs[-1] and len(s) >= 4]
        for group in SYNONYMS:
            gs = {_stem(g) for g in group}
            if gs & set(cs):
                found += [(i, 1, col, f"{words[i]!r} means {col}") for i, s in enumerate(stems)
                          if s in gs and s not in cs]
    return found


def _inputs(clauses: list[list[str]]) -> set[int]:
    """Word positions that name inputs or groupings, not what is predicted: the word after "by" /
    "per" / "each", and everything after "using" / "from" / "based on" ... up to the end of the
    clause or the next verb of intent ("... from cement and water, predict strength")."""
    out: set[int] = set()
    pos = 0
    for clause in clauses:
        zone = False
        for w in clause:
            if w in INTENT_WORDS:
                zone = False
            if zone:
                out.add(pos)
            if w in INPUT_CUES:
                zone = True
            pos += 1
    return out


def _target(clauses: list[list[str]], columns: list[str], taken: set[str], u: Understood) -> None:
    words = [w for c in clauses for w in c]
    inputs = _inputs(clauses)
    mentions = [m for m in _mentions(words, columns) if m[2] not in taken and m[0] not in inputs
                and not (m[0] > 0 and words[m[0] - 1] in GROUPING_WORDS)]
    # A longer name covering a shorter one wins ("compressive strength" over "strength").
    mentions = [m for m in mentions if not any(o[0] <= m[0] and m[0] + m[1] <= o[0] + o[1] and o[1] > m[1]
                                               for o in mentions)]
    best: dict[str, tuple[int, int, str]] = {}  # column -> (0 named / 1 otherwise, position, how)
    for pos, _n, col, how in mentions:
        key = (0 if how == "named" else 1, pos, how)
        best[col] = min(best.get(col, key), key)
    if not best:
        return
    top = min(rank for rank, _p, _h in best.values())
    pool = sorted((c for c, v in best.items() if v[0] == top), key=lambda c: best[c][1])
    if len(pool) > 1:
        u.candidates = pool
        return
    col, how = pool[0], best[pool[0]][2]
    u.values["target"] = col
    u.reasons["target"] = f"your goal names {col}" if how == "named" else how


def clear_target(goal: str | None, columns: list[str]) -> tuple[str | None, str]:
    """For "use your judgement" on the target: (column, reasoning) when one column is the clear
    choice, else (None, one line saying why, with the options)."""
    u = understand(goal or "", columns)
    if u.values.get("target"):
        return u.values["target"], u.reasons["target"]
    if u.candidates:
        return None, f"your goal names {len(u.candidates)} columns ({', '.join(u.candidates)}), so no one is the clear target"
    generic = [c for c in columns if normalize(c) in GENERIC_TARGETS]
    if len(generic) == 1:
        return generic[0], f"{generic[0]} is named like a target and your goal names no other column"
    shown = ", ".join(columns[:12]) + (" …" if len(columns) > 12 else "")
    return None, f"your goal names no column and none is named like a target; options: {shown}"


# ------------------------------------------------------------------------------------ numbers


def _number(text: str) -> float | None:
    text = text.strip().lower().replace(",", "")
    m = re.fullmatch(r"\$?(\d+(?:\.\d+)?)\s*(k|thousand)?", text)
    if m:
        return float(m.group(1)) * (1000 if m.group(2) else 1)
    return float(NUMBER_WORDS[text]) if text in NUMBER_WORDS else None


_AMOUNT = (r"(?P<amount>\$?\d[\d,]*(?:\.\d+)?\s*(?:k|thousand)?\b|"
           + "|".join(w for w in NUMBER_WORDS if " " not in w and len(w) > 2) + r")")


def _cost(text: str, words: str) -> tuple[float, str] | None:
    """The amount said for the first mistake named by `words`: "a false alarm costs $5", "$5 per
    false alarm"."""
    for pattern in (rf"\b(?:{words})\b[^.;$\d]{{0,25}}?{_AMOUNT}", rf"{_AMOUNT}\s*(?:per|for (?:a|an|each|every)?)\s*(?:{words})\b"):
        m = re.search(pattern, text)
        value = _number(m.group("amount")) if m else None
        if m and value is not None:
            return value, m.group(0).strip()
    return None


_MULTIPLE = (r"(?P<times>\d+(?:\.\d+)?|" + "|".join(w for w in NUMBER_WORDS if " " not in w and len(w) > 2)
             + r")\s*(?:x|times)\b")
_TIMES = _MULTIPLE + r"[^.;]{0,30}?\b(?:worse|costlier|more (?:costly|expensive)|as (?:bad|costly|expensive))"
# "costs 5 times a wrongly refused one" / "costs us ten times as much": the verb says it is a cost.
_COSTS_TIMES = r"costs?\s+(?:us\s+)?" + _MULTIPLE


def _ratio(text: str) -> tuple[float, float, str] | None:
    """"a missed churner is 10 times worse than a false alarm", "a missed bad loan costs 5 times a
    wrongly refused good one" -> (cost_fp, cost_fn) = (1, 10), (1, 5)."""
    for words, fp_side in ((FN_WORDS, False), (FP_WORDS, True)):
        m = (re.search(rf"\b(?:{words})\b[^.;]{{0,20}}?\b{_TIMES}", text)
             or re.search(rf"\b(?:{words})\b[^.;$\d]{{0,20}}?\b{_COSTS_TIMES}", text))
        times = _number(m.group("times")) if m else None
        if m and times is not None:
            return (times, 1.0, m.group(0)) if fp_side else (1.0, times, m.group(0))
    return None


# ------------------------------------------------------------------------------------ main


def understand(goal: str, columns: list[str] | None = None) -> Understood:
    """What the goal sentence says, in answers keys (see the module docstring)."""
    u = Understood()
    columns = [str(c) for c in columns or []]
    text = " ".join(goal.lower().replace("’", "'").split())
    words = _words(goal)
    flat = " ".join(words)

    for pattern, kind in NOTED_KINDS:
        if re.search(pattern, flat):
            u.notes.append(f"{kind} noted (no {kind} task type yet, so I build a model of the target)")
            u.kind = u.kind or kind
    if _first(TASKS, flat, "task", u):
        u.kind = u.kind or ("regression" if u.values["task"] == "regression" else "classification")
    if u.kind is None and re.search(CLASSIFICATION_WORDS, flat):
        u.kind = "classification"
    _first(METRICS, flat, "metric", u)

    costs = _ratio(text)
    fp, fn = _cost(text, FP_WORDS), _cost(text, FN_WORDS)
    if fp and fn:
        costs = (fp[0], fn[0], f"{fp[1]}; {fn[1]}")
    if costs:
        u.values["cost_fp"], u.values["cost_fn"] = float(costs[0]), float(costs[1])
        u.reasons["cost_fp"] = u.reasons["cost_fn"] = f"'{costs[2]}'"

    pos = re.search(r"\bpositive (?:class|label|outcome) (?:is|=|:|should be) ['\"]?([\w-]+)|"
                    r"\b(?:treat|count) ['\"]?([\w-]+)['\"]? as (?:the )?positive\b|"
                    r"['\"]?([\w-]+)['\"]? (?:is|as) the positive (?:class|label)\b", text)
    if pos:
        u.values["positive_class"] = next(g for g in pos.groups() if g)
        u.reasons["positive_class"] = f"'{pos.group(0)}'"

    budget = BUDGET.search(text)
    if budget:
        amount, unit = _number(budget.group("num")), budget.group("unit")
        if amount is not None and not (unit in ("s", "m") and amount > 3600):
            u.values["time_budget"] = float(amount * UNITS[unit])
            u.reasons["time_budget"] = f"'{budget.group(0).strip(' ,;:.(')}'"

    _first(INTERPRETABILITY, text, "interpretability", u)
    _families(flat, u)

    taken = _time_and_group(text, words, columns, u)
    if columns:
        _target(_clauses(goal), columns, taken, u)
    u.judgement = bool(re.search(JUDGEMENT, text))
    return u


def _families(text: str, u: Understood) -> None:
    """model_families from "XGBoost only" / "just use linear or random forest models"."""
    found = FAMILIES_ONLY.search(text)
    if not found:
        return
    span = found.group("a") or found.group("b")
    at: dict[str, tuple[int, int]] = {}  # families -> where in the span their name stands
    for pattern, values in FAMILY_NAMES:
        for m in re.finditer(rf"\b(?:{pattern})\b", span):
            if not any(m.start() < end and start < m.end() for start, end in at.values()):  # a longer name took it
                at[values] = (m.start(), m.end())
    named = [v for values in sorted(at, key=lambda k: at[k][0]) for v in values.split()]
    from dsagent.tools.families import model_families  # the registry: no ML library

    installed = model_families()
    named = [n for n in dict.fromkeys(named) if n in installed]  # in the sentence's order, once each
    if named:
        u.values["model_families"] = named
        u.reasons["model_families"] = f"'{found.group(0)}'"


def _first(table: list[tuple[str, str]], text: str, key: str, u: Understood) -> bool:
    """The value of the first row whose pattern the text matches (tables list the specific first)."""
    for pattern, value in table:
        found = re.search(pattern, text)
        if found:
            u.values[key] = value
            u.reasons[key] = f"'{found.group(0)}'"
            return True
    return False


def _column_named(word: str, columns: list[str]) -> str | None:
    s = _stem(word)
    for col in columns:
        cw = [_stem(w) for w in _words(col)]
        if cw and (cw == [s] or (len(cw) > 1 and s in cw)):
            return col
    return None


def _time_and_group(text: str, words: list[str], columns: list[str], u: Understood) -> set[str]:
    """time_column from "by month" / "over time" with a date-like column; group_column from
    "per store" with a store column. Returns the columns taken (never the target)."""
    taken: set[str] = set()
    flat = " ".join(words)
    dates = [c for c in columns if any(DATE_NAME.match(w) for w in _words(c))]
    for m in GROUP_AFTER.finditer(flat):
        col = _column_named(m.group(1), columns)
        if col is None:
            continue
        key = "time_column" if col in dates else "group_column"
        if key not in u.values:
            u.values[key] = col
            u.reasons[key] = f"'{m.group(0)}'"
            taken.add(col)
    if "time_column" not in u.values and re.search(TIME_WORDS, flat) and len(dates) == 1:
        u.values["time_column"] = dates[0]
        u.reasons["time_column"] = f"'{re.search(TIME_WORDS, flat).group(0)}' and {dates[0]} is the date column"  # type: ignore[union-attr]
        taken.add(dates[0])
    return taken


# ------------------------------------------------------------------------------------ data


def data_columns(path: str | Path | None, limit: int = 50 * 2**20) -> list[str] | None:
    """Column names as the tools will see them (the tools' own cached reader), for files small
    enough to read in this process; None when the file is larger, missing or unreadable (the tools
    say why)."""
    p = Path(path) if path else None
    if p is None or not p.is_file() or p.stat().st_size > limit:
        return None
    from dsagent.tools.data import column_names

    try:
        return column_names(p, max_bytes=limit)
    except Exception:  # noqa: BLE001  a file the tools cannot read fails later with their message
        return None


# ------------------------------------------------------------------------------------ answers in words

# The unit each numeric answers key is kept in, and what a spoken unit is worth in it.
DURATION_KEYS = {"time_budget": 1.0, "latency_ms": 0.001, "retrain_every_days": 86_400.0}  # seconds per key unit
DAY_UNITS = {"day": 86_400, "days": 86_400, "week": 604_800, "weeks": 604_800, "month": 2_592_000, "months": 2_592_000,
             "year": 31_536_000, "years": 31_536_000, "ms": 0.001, "millisecond": 0.001, "milliseconds": 0.001}
NUMBER_KEYS = {"cost_fp", "cost_fn", "prediction_volume", "min_useful_score", "current_baseline", *DURATION_KEYS}
YES = {"yes", "y", "yeah", "yep", "sure", "ok", "please do", "do it"}
NO = {"no", "n", "nope", "none", "don't", "do not"}


def answer_in_words(key: str, text: str, options: list[str] | None = None, default: Any = None) -> Any:
    """A typed answer to the question on `key`, read as a person writes it: "two minutes", "$120",
    "50 ms", "10k rows a day", "a month"; yes / no; an option by name in any case. Returns the text
    itself when nothing here applies (the answers model then checks it)."""
    t = " ".join(text.strip().lower().replace(",", "").split())
    opts = [str(o) for o in options or []]
    by_name = {o.lower(): o for o in opts}
    if t in NO and isinstance(default, list):  # "audit these columns?" no -> none of them
        return []
    if t in by_name:
        return by_name[t]
    if t in YES and (default is not None or opts):  # "audit them?" yes -> the offered columns; "split by time?" yes -> the first option
        return default if default is not None else opts[0]
    if key in NUMBER_KEYS:
        units = {**UNITS, **DAY_UNITS}
        m = re.fullmatch(r"(?:about |around |roughly )?(?P<num>.+?)\s*(?P<unit>" + "|".join(sorted(map(re.escape, units),
                         key=len, reverse=True)) + r")?(?: (?:rows )?(?:a|per) day| each)?", t)
        value = _number(m.group("num")) if m else None
        if value is not None:
            unit = m.group("unit")
            if unit and key in DURATION_KEYS:
                return value * units[unit] / DURATION_KEYS[key]
            return value
    return text.strip()
