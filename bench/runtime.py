"""The Python a user's install gives: riskd and its runtime dependencies, nothing more.

The memory benchmarks run the daemon with it, not with the development environment they
are started from: the test tools bring packages that libraries pick up when present
(httpx, for one, imports pygments if it finds it, about 1 MB), which a user's
`pip install .` does not have. The environment is made once per checkout and
dependency list, under ~/.cache/riskd-bench, as an editable install so that it runs
this checkout's code.
"""

from __future__ import annotations

import hashlib
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CACHE = Path.home() / ".cache" / "riskd-bench"


def python() -> str:
    """The runtime environment's interpreter, made first if need be (about two minutes)."""
    key = hashlib.sha256(str(ROOT).encode() + (ROOT / "pyproject.toml").read_bytes()).hexdigest()[:12]
    folder = CACHE / f"runtime-{key}"
    interpreter = folder / "bin" / "python"
    if not (folder / "ready").exists():
        print(f"making the runtime environment in {folder} (once)", file=sys.stderr, flush=True)
        subprocess.run([sys.executable, "-m", "venv", "--clear", str(folder)], check=True)
        subprocess.run([str(interpreter), "-m", "pip", "install", "-q", "-e", str(ROOT)], check=True)
        (folder / "ready").touch()
    return str(interpreter)
