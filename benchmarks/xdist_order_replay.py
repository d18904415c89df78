"""Replay `pytest -n 2 --dist loadfile` on two workers from per-test wall seconds (benchmarks/pytest_cpu.py's
TSV) in three file orders: alphabetical, xdist's default (by number of tests), and tests/conftest.py's
LONGEST_FILES first (with --no-loadscope-reorder). A worker takes the next file when 2 or fewer of its
tests are left, as xdist's LoadScopeScheduling does. An estimate of the finish, not a measurement.
Usage: python benchmarks/xdist_order_replay.py benchmarks/results/s4speed-suite.tsv"""
import ast
import collections
import sys
from pathlib import Path

rows = [line.rstrip("\n").split("\t") for line in open(sys.argv[1])]
files = collections.OrderedDict()
for _cpu, wall, nodeid in rows:
    files.setdefault(nodeid.split("::")[0], []).append(float(wall))
conftest = ast.parse((Path(__file__).resolve().parents[1] / "tests" / "conftest.py").read_text())
longest = next(ast.literal_eval(n.value) for n in conftest.body
               if isinstance(n, ast.Assign) and getattr(n.targets[0], "id", "") == "LONGEST_FILES")


def finish(order: list[str]) -> list[int]:
    queue, nodes = list(order), [[0.0, []] for _ in range(2)]  # [clock, pending test times]
    for node in nodes:
        node[1] += files[queue.pop(0)]
    for node in nodes:
        if len(node[1]) <= 2 and queue:
            node[1] += files[queue.pop(0)]
    while any(n[1] for n in nodes):
        node = min((n for n in nodes if n[1]), key=lambda n: n[0] + n[1][0])
        node[0] += node[1].pop(0)
        if len(node[1]) <= 2 and queue:
            node[1] += files[queue.pop(0)]
    return [round(n[0]) for n in nodes]


alphabetical = sorted(files)
print(f"{len(files)} files, {sum(map(sum, files.values())):.0f} s of tests")
for name, order in (("alphabetical", alphabetical),
                    ("by number of tests (xdist's default)", sorted(alphabetical, key=lambda f: -len(files[f]))),
                    ("LONGEST_FILES first", sorted(alphabetical, key=lambda f: -longest.get(Path(f).name, 0)))):
    print(f"{name}: the two workers done at {finish(order)} s")
