"""sbomgate: verify, then trust. SBOM-driven admission control with Rego policies."""

from sbomgate.errors import (
    EvaluationError,
    InputError,
    PolicyLoadError,
    SbomError,
    SbomgateError,
)

__version__ = "0.1.0"

__all__ = [
    "EvaluationError",
    "InputError",
    "PolicyLoadError",
    "SbomError",
    "SbomgateError",
    "__version__",
]
