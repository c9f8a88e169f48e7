"""Wiring: the registry client, facts, policy engine, verifier, image checker and admission
controller, built from settings. The one place that knows how the parts fit; the front doors
(the CLI, the server, the operator) ask for what they run on and do not assemble it.

Heavy modules are imported where they are used: `sbomgate eval` needs no registry client, nor
the admission controller.
"""

from __future__ import annotations

import importlib.resources
import logging
import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

from sbomgate._internal.cores import usable_cores
from sbomgate._internal.logs import fields
from sbomgate.errors import InputError

log = logging.getLogger(__name__)
if TYPE_CHECKING:
    from sbomgate._internal.cache import DigestCache
    from sbomgate.admission import AdmissionController, ColdPath, Observer, SideEffects
    from sbomgate.attest.trust import TrustPolicy
    from sbomgate.config import ServeConfig
    from sbomgate.imagecheck import ImageChecker
    from sbomgate.policy import PolicyEngine
    from sbomgate.policy.engine import FactSource
    from sbomgate.policy.isolated import EvaluatorPool
    from sbomgate.policy.loader import Policy
    from sbomgate.registry import RegistryClient, RegistryLimits

SERVICE_ACCOUNT_NAMESPACE = Path("/var/run/secrets/kubernetes.io/serviceaccount/namespace")
# The cores (CPUs, or a cgroup's quota) from which the typosquat helper has one to work on.
_CORES_FOR_A_HELPER = 2.0


@runtime_checkable
class RegistryObserver(Protocol):
    """An observer (the server's metrics) that also counts every registry response."""

    def registry_response(self, host: str, code: str) -> None:
        """A registry at `host` answered with status `code`."""


def bundled_policies_dir() -> Path:
    """The bundled policies: $SBOMGATE_POLICIES, else the package's own `policies/` (package
    data, found through importlib.resources, in a checkout and in an installed wheel alike)."""
    override = os.environ.get("SBOMGATE_POLICIES")
    if override:
        return Path(override)
    found = Path(str(importlib.resources.files("sbomgate") / "policies"))
    if not found.is_dir():  # a zipped or stripped install: nothing to read the files from
        raise InputError(
            f"the bundled policies are not at {found}: set SBOMGATE_POLICIES to a directory "
            "of .rego policies, or pass --policies"
        )
    return found


def own_namespace() -> str | None:
    """The namespace this process runs in: $POD_NAMESPACE, else the service account's."""
    value = os.environ.get("POD_NAMESPACE")
    if value:
        return value
    try:
        return SERVICE_ACCOUNT_NAMESPACE.read_text().strip() or None
    except OSError:
        return None


def default_docker_config() -> Path | None:
    """The docker config.json a person's registry logins are in, if there is one."""
    base = os.environ.get("DOCKER_CONFIG")
    path = Path(base) / "config.json" if base else Path.home() / ".docker" / "config.json"
    return path if path.is_file() else None


# -- the parts ----------------------------------------------------------------------------


def registry_client(
    *,
    allowed: Sequence[str],
    insecure: Sequence[str] = (),
    ca_files: Sequence[Path] = (),
    docker_config: Path | None = None,
    timeout: float,
    limits: RegistryLimits | None = None,
    on_response: Callable[[str, str], None] | None = None,
) -> RegistryClient:
    """An OCI client that contacts only `allowed` registries (`insecure` ones over plain HTTP),
    with the credentials of a docker config.json."""
    from sbomgate.registry import CredentialStore, RegistryAccess, RegistryClient

    credentials = CredentialStore()
    if docker_config is not None:
        credentials.add_docker_config_file(docker_config)
    access = RegistryAccess(
        allowed=tuple(dict.fromkeys(allowed)),
        insecure=frozenset(h.lower() for h in insecure),
        ca_files=tuple(str(p) for p in ca_files),
    )
    return RegistryClient(access, credentials, limits, timeout=timeout, on_response=on_response)


def load_policies(directory: Path | None) -> list[Policy]:
    """The policies of a directory, or the bundled ones."""
    from sbomgate.policy import load_policy_dir

    return load_policy_dir(directory or bundled_policies_dir())


def policy_inputs(
    policies: Path | None,
    data: Sequence[Path],
    *,
    snapshot: Path | None = None,
    osv: Sequence[Path] = (),
    sources: Sequence[Mapping[str, Any]] = (),
    typosquat: bool = True,
) -> tuple[PolicyEngine, FactSource | None]:
    """A policy engine over a directory (or the bundled policies) and data files, and the facts
    the settings ask for: what evaluating an SBOM needs (`eval`, `verify`)."""
    from sbomgate._internal.documents import load_data_files
    from sbomgate.intel.facts import build_facts
    from sbomgate.policy import PolicyEngine

    engine = PolicyEngine(load_policies(policies), load_data_files(data))
    facts = build_facts(snapshot=snapshot, osv=osv, sources=sources, typosquat=typosquat)
    return engine, facts


def image_checker(
    client: RegistryClient,
    trust_policies: Sequence[TrustPolicy],
    cache: DigestCache[Any] | None = None,
    *,
    timeout: float,
    allow_empty_sbom: bool,
    read_ahead: Callable[[bytes], None] | None = None,
) -> ImageChecker:
    """Image → attestations verified against the trust policies → SBOMs (each one's JSON text
    given to `read_ahead` before it is parsed)."""
    from sbomgate.attest import AttestationVerifier
    from sbomgate.imagecheck import ImageChecker

    verifier = AttestationVerifier(trust_policies)
    return ImageChecker(
        client,
        verifier,
        cache,
        timeout=timeout,
        allow_empty_sbom=allow_empty_sbom,
        read_ahead=read_ahead,
    )


# -- the admission controller of `serve` ----------------------------------------------------


class ColdPathHost(Protocol):
    """Where each policy set's uncached checks and evaluations run (serving/coldpath.py)."""

    def policy_set(
        self,
        policies: Sequence[Policy],
        trust_policies: Sequence[TrustPolicy],
        quarantine: Sequence[Mapping[str, Any]],
    ) -> ColdPath:
        """Install a policy set there, for one controller."""


@dataclass(frozen=True, kw_only=True)
class SharedParts:
    """What every policy set of the process shares: the registry client, the digest cache
    (its keys carry the trust policies' generation), the facts, the data files."""

    config: ServeConfig
    client: RegistryClient
    cache: DigestCache[Any]
    facts: FactSource | None
    data: Mapping[str, Any]
    observer: Observer
    # The evaluation worker processes (`serve`); None evaluates on the calling thread.
    evaluators: EvaluatorPool | None = None
    # `serve`'s cold-path process: then checks and evaluations that are not cached run there,
    # and this process neither evaluates nor holds facts.
    cold: ColdPathHost | None = None


def shared_parts(
    config: ServeConfig,
    observer: Observer,
    evaluators: EvaluatorPool | None = None,
    cold: ColdPathHost | None = None,
) -> SharedParts:
    """The registry client, cache, facts and data files built once from the settings."""
    from sbomgate._internal.cache import DigestCache
    from sbomgate._internal.documents import load_data_files
    from sbomgate.intel.facts import build_facts
    from sbomgate.registry import RegistryLimits

    client = registry_client(
        allowed=config.allowed_registries,
        insecure=config.insecure_registries,
        ca_files=config.registry_ca,
        docker_config=config.docker_config,
        timeout=config.admission_deadline,
        limits=RegistryLimits(connect_timeout=config.registry_timeout),
        on_response=(
            observer.registry_response if isinstance(observer, RegistryObserver) else None
        ),
    )
    cache = DigestCache[Any](
        max_bytes=config.cache.max_bytes,
        ttl=config.cache.ttl,
        negative_ttl=config.cache.negative_ttl,
    )
    own = own_namespace()
    if own and own not in config.exempt_namespaces:
        # Our own Pods must never wait on ourselves (a deadlock at the first rollout).
        config = config.model_copy(update={"exempt_namespaces": (*config.exempt_namespaces, own)})
    facts = (
        build_facts(
            snapshot=config.facts,
            osv=config.osv,
            sources=config.trusted_sources,
            typosquat=config.typosquat,
            reload_osv=True,  # a long-running server follows the OSV export as it changes
            # With evaluation on more than one core, a never-seen image's typosquat answers
            # are worked out on another while the rest of its facts are made (with one core's
            # worth, a CPU limit of 1 say, the helper's work would only take the process's).
            typosquat_helper=(
                evaluators is not None
                and config.evaluation_processes > 1
                and usable_cores() >= _CORES_FOR_A_HELPER
            ),
        )
        if cold is None
        else None
    )
    return SharedParts(
        config=config,
        client=client,
        cache=cache,
        facts=facts,
        data=load_data_files(config.data),
        observer=observer,
        evaluators=evaluators,
        cold=cold,
    )


def make_controller(
    shared: SharedParts,
    policies: Sequence[Policy],
    trust_policies: Sequence[TrustPolicy],
    *,
    quarantine: Sequence[Mapping[str, Any]] = (),
    side_effects: SideEffects | None = None,
    namespace_labels: Callable[[str], Mapping[str, str] | None] | None = None,
) -> AdmissionController:
    """One policy set's controller over the shared parts (the operator makes one per change)."""
    from sbomgate.admission import AdmissionController
    from sbomgate.policy import PolicyEngine
    from sbomgate.policy.isolated import IsolatedPolicyEngine

    data: dict[str, Any] = dict(shared.data)
    if quarantine:
        sbomgate_data = dict(data.get("sbomgate") or {})
        sbomgate_data["quarantine"] = [*(sbomgate_data.get("quarantine") or []), *quarantine]
        data["sbomgate"] = sbomgate_data
    config = shared.config
    outcome_bytes = config.cache.outcome_bytes
    engine = (
        # With a cold path the engine here only describes the set (fingerprint, scopes).
        PolicyEngine(policies, data, outcome_cache_bytes=0 if shared.cold else outcome_bytes)
        if shared.evaluators is None
        else IsolatedPolicyEngine(
            policies, data, pool=shared.evaluators, outcome_cache_bytes=outcome_bytes
        )
    )
    unknown = unknown_policy_modes(config, policies)
    if unknown:  # PackagePolicy resources may come later: said, not fatal
        log.warning(
            "policyModes names no loaded policy",
            extra=fields(unknown=unknown, policies=sorted(p.name for p in policies)),
        )
    checker = image_checker(
        shared.client,
        trust_policies,
        shared.cache,
        timeout=config.admission_deadline,
        allow_empty_sbom=config.allow_empty_sbom,
        read_ahead=getattr(shared.facts, "read_ahead", None),
    )
    return AdmissionController(
        config,
        engine=engine,
        checker=checker,
        facts=shared.facts,
        observer=shared.observer,
        side_effects=side_effects,
        namespace_labels=namespace_labels,
        evaluators=config.evaluation_processes if shared.evaluators is not None else 2,
        cold=(
            shared.cold.policy_set(policies, trust_policies, quarantine)
            if shared.cold is not None
            else None
        ),
    )


def file_policies(config: ServeConfig) -> list[Policy]:
    """The policies in files: the configured directory, else the bundled ones (none when
    PackagePolicy resources are the policies)."""
    if config.policies is None and config.watch_resources:
        return []
    return load_policies(config.policies)


def file_trust_policies(config: ServeConfig) -> list[TrustPolicy]:
    """The trust policies in files; without any, TrustPolicy resources (or an InputError)."""
    from sbomgate.attest import load_trust_policies

    if config.trust_policies:
        return load_trust_policies(list(config.trust_policies))
    if config.watch_resources:
        return []  # TrustPolicy resources
    raise InputError("no trust policies configured (trustPolicies / --trust)")


def build_controller(
    config: ServeConfig,
    observer: Observer,
    evaluators: EvaluatorPool | None = None,
    cold: ColdPathHost | None = None,
) -> AdmissionController:
    """Policies, data, facts and trust policies from files; a SbomgateError when one is bad
    (or when `policyModes` names a policy there is not)."""
    policies = file_policies(config)
    unknown = unknown_policy_modes(config, policies)
    if unknown and not config.watch_resources:
        raise InputError(
            f"policyModes: no policy is named {', '.join(unknown)} (the policies: "
            f"{', '.join(sorted(p.name for p in policies)) or 'none'})"
        )
    shared = shared_parts(config, observer, evaluators, cold)
    return make_controller(shared, policies, file_trust_policies(config))


def unknown_policy_modes(config: ServeConfig, policies: Sequence[Policy]) -> list[str]:
    """The `policyModes` keys that name none of `policies` (nor sbomgate's own checks)."""
    known = {p.name for p in policies}
    return sorted(
        k for k in config.policy_modes if k not in known and not k.startswith("sbomgate/")
    )
