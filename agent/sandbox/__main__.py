"""`python -m dsagent.sandbox`: the isolation layers of this machine (`--summary`: one line, for CI logs)."""

import json
import sys

from dsagent.sandbox.detect import layers, summary_line

if sys.argv[1:2] == ["--summary"]:
    print(summary_line(layers()))
else:
    print(json.dumps(layers(), indent=2))
