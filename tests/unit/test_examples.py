"""The examples' scripts still import what they use (`make demo` is not run by `make test`;
tests/ moved under it once and the demo broke unnoticed)."""

from __future__ import annotations

import importlib.util

from support.paths import EXAMPLES


def test_the_demo_stack_script_imports() -> None:
    spec = importlib.util.spec_from_file_location("demo_cluster", EXAMPLES / "demo_cluster.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)  # imports only: main() is not called
    assert callable(module.main)
