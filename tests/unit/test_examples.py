"""The examples' scripts still import what they use (`make demo` is not run by `make test`;
tests/ moved under it once and the demo broke unnoticed, and once more when its helpers began
to import tools/, which pytest's own pythonpath hid)."""

from __future__ import annotations

import subprocess
import sys

from support.paths import EXAMPLES, ROOT

# Imports only (main() is not called), in a fresh interpreter: nothing of pytest's sys.path.
IMPORT = (
    "import importlib.util as u, sys; "
    "s = u.spec_from_file_location('demo_cluster', sys.argv[1]); m = u.module_from_spec(s); "
    "s.loader.exec_module(m); assert callable(m.main)"
)


def test_the_demo_stack_script_imports() -> None:
    done = subprocess.run(
        [sys.executable, "-I", "-c", IMPORT, str(EXAMPLES / "demo_cluster.py")],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
