"""The libraries the benches compare against (pytorch-grad-cam, captum, torchcam): installed with
``pip install -e ".[bench]"``. A bench asks for its peers first, so that a missing one is one line
with the command that installs it, not a traceback half-way through a run."""

from __future__ import annotations

import importlib
import sys

# Import name → the distribution pip installs it from (all in the project's "bench" extra).
PEERS = {"pytorch_grad_cam": "grad-cam", "captum": "captum", "torchcam": "torchcam"}


def require(*modules: str) -> None:
    """Exit with status 2 and one line naming the missing peers and the pip command, unless every
    one of ``modules`` can be imported."""
    missing = [PEERS.get(m, m) for m in modules if not _imports(m)]
    if missing:
        script = sys.argv[0] or "this bench"
        print(f"{script}: needs {', '.join(missing)} to compare against; install the bench peers with "
              f"pip install -e \".[bench]\" (from the course folder), then run it again", file=sys.stderr)
        raise SystemExit(2)


def _imports(module: str) -> bool:
    try:
        importlib.import_module(module)
    except ImportError:
        return False
    return True
