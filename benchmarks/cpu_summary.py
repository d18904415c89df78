"""CPU and wall seconds per test file from benchmarks/pytest_cpu.py's TSV files, largest first."""
import sys, collections
for path in sys.argv[1:]:
    files = collections.defaultdict(lambda: [0.0, 0.0, 0])
    for line in open(path):
        cpu, wall, nid = line.rstrip("\n").split("\t")
        f = files[nid.split("::")[0]]
        f[0] += float(cpu); f[1] += float(wall); f[2] += 1
    print(f"== {path}: {sum(v[0] for v in files.values()):.0f} cpu s in tests, {len(files)} files")
    for name, (cpu, wall, n) in sorted(files.items(), key=lambda x: -x[1][0]):
        print(f"{cpu:8.1f} cpu {wall:8.1f} wall {n:4d} tests  {name}")
