"""Split the 37 datasets of the suite once, at random within task kind, into a development half
and a confirmation half (issue 18): a change is decided on the development half and claimed only
with the confirmation half's figures beside it.

    .venv/bin/python benchmarks/automl/suite_split.py     # writes benchmarks/suite_split.json

Seeded, so re-running it gives the same halves; it refuses to overwrite a recorded split that
differs (re-drawing the halves after seeing results would defeat their purpose).
"""

from __future__ import annotations

import json
import random
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from datasets import SUITE  # noqa: E402

OUT = Path(__file__).resolve().parent.parent / "suite_split.json"
SEED = 18  # the number; fixed before any result on the wider suite was seen


def draw() -> dict:
    rng = random.Random(SEED)
    halves: dict[str, list[str]] = {"development": [], "confirmation": []}
    for kind in ("binary", "multiclass", "regression"):
        names = sorted(n for n, (_, _, task) in SUITE.items() if task == kind)
        rng.shuffle(names)
        cut = len(names) // 2  # an odd count puts the extra dataset in the confirmation half
        halves["development"] += sorted(names[:cut])
        halves["confirmation"] += sorted(names[cut:])
    kinds = {n: task for n, (_, _, task) in SUITE.items()}
    return {"seed": SEED, "method": "random.Random(seed).shuffle of each task kind's sorted names; first half development",
            **{h: {"datasets": v, "kinds": {k: sum(kinds[n] == k for n in v) for k in ("binary", "multiclass", "regression")}}
               for h, v in halves.items()}}


def main() -> None:
    split = draw()
    if OUT.exists() and json.loads(OUT.read_text()) != split:
        sys.exit(f"{OUT} already records a different split; delete it only if the suite itself changed")
    OUT.write_text(json.dumps(split, indent=1) + "\n")
    for half in ("development", "confirmation"):
        print(half, len(split[half]["datasets"]), split[half]["kinds"])


if __name__ == "__main__":
    main()
