"""sbomgate: verify, then trust. SBOM-driven admission control with Rego policies."""

import importlib.metadata

from sbomgate.errors import (
    EvaluationError,
    InputError,
    PolicyLoadError,
    SbomError,
    SbomgateError,
)

try:
    # From the installed distribution (pyproject.toml's version): one place to bump.
    __version__ = importlib.metadata.version("sbomgate")
except importlib.metadata.PackageNotFoundError:
    # Imported from a source tree that was never installed (`pip install -e .` installs it).
    __version__ = "0+unknown"

__all__ = [
    "EvaluationError",
    "InputError",
    "PolicyLoadError",
    "SbomError",
    "SbomgateError",
    "__version__",
]
