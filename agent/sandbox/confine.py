"""A tighter child for code a tool does not trust (DSAGENT_CONFINE_PREFIX; docs/security.md).

Runs as a script under `python -S` (no site, so the installed `dsagent` package is not
importable): it imports its two stdlib-only siblings by file name, from its own folder, which
Python puts first on sys.path for a script.
"""

from __future__ import annotations

import os
import sys

if __package__:  # imported as dsagent.sandbox.confine (for its __file__)
    from dsagent.sandbox.layer import disabled
    from dsagent.sandbox.seccomp import apply_seccomp
else:  # run as a script: sys.path[0] is this folder
    from layer import disabled
    from seccomp import apply_seccomp


def confine_main(argv: list[str]) -> None:
    """`python -S .../sandbox/confine.py [--cpu S] -- CMD...` (a script: -S skips site, so no package import): a tighter child.

    Used by tools (through DSAGENT_CONFINE_PREFIX) for code they do not trust: adds a seccomp
    filter that denies setsid/setpgid, so every process it starts stays in its process group
    and dies with it, and socket() altogether (socketpair still works for multiprocessing):
    without bubblewrap a unix socket path such as /var/run/docker.sock would otherwise be
    reachable. Plus an optional CPU-time limit. Layers of the worker are inherited.
    """
    import resource

    args = argv[:]
    if args[:1] == ["--cpu"]:
        cpu = int(float(args[1]))
        resource.setrlimit(resource.RLIMIT_CPU, (cpu, cpu + 5))
        args = args[2:]
    if args[:1] == ["--"]:
        args = args[1:]
    # DSAGENT_DISABLE_LAYERS=seccomp turns this filter off too: a switched-off layer that still
    # half-applies would make the layer report lie, and tests could not show what it blocks.
    if "seccomp" not in disabled():
        try:
            apply_seccomp(["setsid", "setpgid", "socket"])
        except OSError as exc:
            print(f"[sandbox] extra seccomp filter not applied: {exc}", file=sys.stderr)
    os.execv(args[0], args)


if __name__ == "__main__":
    confine_main(sys.argv[1:])
