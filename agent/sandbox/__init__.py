"""The sandbox: runs tool calls in a worker process with limits, inside whatever isolation layers
this machine has (docs/security.md says what each blocks and what it does not).

  plan.py       Limits, the clean environment, and the Plan of one worker (paths, rlimits, cgroup)
  runner.py     Worker: starts the worker process, sends calls, enforces the timeout, kill()/stop()
  worker.py     the worker process itself (`python -m dsagent.sandbox.worker`)
  detect.py     which layers this machine has, found by running a probe (`python -m dsagent.sandbox`)
  layer.py      what each layer confines; DSAGENT_DISABLE_LAYERS
  mounts.py     what the worker may see: bubblewrap's mounts, the launcher
  cgroup.py landlock.py seccomp.py   the kernel layers
  inprocess.py  the layers the worker applies to itself, and the probe
  confine.py    a tighter child for untrusted code (a script run under `python -S`)
"""

from dsagent.sandbox.detect import layers
from dsagent.sandbox.plan import Limits, Plan, clean_environment
from dsagent.sandbox.runner import CallResult, Progress, Worker

__all__ = ["CallResult", "Limits", "Plan", "Progress", "Worker", "clean_environment", "layers"]
