"""The Rego policy engine (regorus), Cloudsmith-compatible, shared by every front door."""

from sbomgate.policy.engine import PolicyEngine, PolicyOutcome
from sbomgate.policy.input import PackageFacts, build_input
from sbomgate.policy.loader import Action, Policy, load_policy, load_policy_dir

__all__ = [
    "Action",
    "PackageFacts",
    "Policy",
    "PolicyEngine",
    "PolicyOutcome",
    "build_input",
    "load_policy",
    "load_policy_dir",
]
