"""The webhook's configuration file (`sbomgate serve --config FILE`; flags override it).

```yaml
policies: /etc/sbomgate/policies          # directory of .rego policies [bundled]
data: [/etc/sbomgate/data.yaml]           # merged into data.*
facts: /etc/sbomgate/facts.yaml           # offline facts snapshot
trustPolicies: [/etc/sbomgate/trust/]     # TrustPolicy files or directories
allowedRegistries: ["ghcr.io", "*.example.com"]
insecureRegistries: []                    # plain HTTP
registryCA: []                            # extra CA bundles
dockerConfig: /etc/sbomgate/config.json   # registry credentials
exemptNamespaces: [kube-system, sbomgate]
mode: Enforce                             # Enforce | Warn | Audit
policyModes: {package-age: Warn}          # per policy
faults: Deny                              # Deny | Allow: an unreachable registry...
imageReferences: Pin                      # Pin | RefuseTags | Resolve: see ImageReferences
allowEmptySbom: false                     # admit a verified SBOM that lists no packages
admissionDeadline: 8                      # seconds, below the webhook's timeoutSeconds
registryTimeout: 3                        # seconds to connect
cache: {maxBytes: 268435456, ttl: 3600, negativeTtl: 30, verdictTtl: 300}
tls: {certFile: /tls/tls.crt, keyFile: /tls/tls.key}
listen: {host: 0.0.0.0, port: 8443}
maxMessageLines: 12
kubernetes: {watch: true, auditInterval: 300}  # PackagePolicy, TrustPolicy, PackageQuarantine
osv: [/var/lib/osv/]                      # OSV exports: all.zip files or directories of JSON
trustedSources:                           # checked in order, per ecosystem
  - {name: pypi-internal, kind: pypi, url: "https://pypi.acme.example/simple/"}
typosquat: true                           # input.v0.package.typosquat_of
```
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from enum import StrEnum
from pathlib import Path
from typing import Any

from sbomgate._internal.documents import load_json_or_yaml
from sbomgate.errors import InputError


class Mode(StrEnum):
    ENFORCE = "Enforce"  # refuse
    WARN = "Warn"  # admit, with AdmissionReview warnings (kubectl prints them)
    AUDIT = "Audit"  # admit, record only


class ImageReferences(StrEnum):
    """What an image reference by tag becomes. A tag is resolved when sbomgate judges it and
    again when the kubelet pulls it: re-pushed in between (or served differently to each), the
    image that runs is not the one judged. Only a digest names what was judged."""

    # POST /mutate rewrites each tag to the digest it resolves to (name@sha256:…), and
    # /validate refuses a tag that reaches it unpinned (the mutating webhook did not run).
    PIN = "Pin"
    # Only digest references are admitted: nothing is rewritten, so GitOps tools see no drift.
    REFUSE_TAGS = "RefuseTags"
    # Tags are judged by what they resolve to now and admitted as tags (a re-pushed tag runs
    # unjudged): for clusters without the mutating webhook that cannot use digests yet.
    RESOLVE = "Resolve"


@dataclass(frozen=True, slots=True)
class CacheSettings:
    max_bytes: int = 256 << 20
    ttl: float = 3600.0
    negative_ttl: float = 30.0
    verdict_ttl: float = 300.0


@dataclass(frozen=True, slots=True)
class ServeConfig:
    policies: Path | None = None
    data: tuple[Path, ...] = ()
    facts: Path | None = None
    trust_policies: tuple[Path, ...] = ()
    allowed_registries: tuple[str, ...] = ()
    insecure_registries: tuple[str, ...] = ()
    registry_ca: tuple[Path, ...] = ()
    docker_config: Path | None = None
    exempt_namespaces: tuple[str, ...] = ("kube-system",)
    mode: Mode = Mode.ENFORCE
    policy_modes: Mapping[str, Mode] = field(default_factory=dict)
    faults_allowed: bool = False
    image_references: ImageReferences = ImageReferences.PIN
    # A verified SBOM that lists no packages proves nothing: refused unless this is set.
    allow_empty_sbom: bool = False
    admission_deadline: float = 8.0
    registry_timeout: float = 3.0
    # Policy evaluation runs in worker processes; one image's evaluation that overruns the
    # budget is stopped and denies (a policy that runs away cannot hold the webhook).
    evaluation_budget: float = 10.0
    evaluation_processes: int = 2
    cache: CacheSettings = field(default_factory=CacheSettings)
    tls_cert: Path | None = None
    tls_key: Path | None = None
    host: str = "0.0.0.0"
    port: int = 8443
    max_message_lines: int = 12
    # The operator side: policies, trust and quarantine from custom resources.
    watch_resources: bool = False
    audit_interval: float = 300.0
    kubeconfig: Path | None = None
    # The self-signed serving certificate the elected replica renews (no cert-manager).
    certificate_secret: str | None = None
    webhook_configuration: str | None = None
    renew_before_days: float = 30.0
    # Package intelligence beyond the facts snapshot.
    osv: tuple[Path, ...] = ()
    trusted_sources: tuple[Mapping[str, Any], ...] = ()
    typosquat: bool = True

    def with_overrides(self, **overrides: Any) -> ServeConfig:
        """Flags given on the command line (None and empty mean "not given")."""
        return replace(self, **{k: v for k, v in overrides.items() if v not in (None, (), [])})


_KEYS = {
    "policies",
    "data",
    "facts",
    "trustPolicies",
    "allowedRegistries",
    "insecureRegistries",
    "registryCA",
    "dockerConfig",
    "exemptNamespaces",
    "mode",
    "policyModes",
    "faults",
    "imageReferences",
    "allowEmptySbom",
    "admissionDeadline",
    "registryTimeout",
    "evaluationBudget",
    "evaluationProcesses",
    "cache",
    "tls",
    "listen",
    "maxMessageLines",
    "kubernetes",
    "osv",
    "trustedSources",
    "typosquat",
}


def parse_mode(value: Any, where: str) -> Mode:
    try:
        return Mode(value)
    except ValueError:
        raise InputError(f"{where}: {value!r} is not one of Enforce, Warn, Audit") from None


def parse_image_references(value: Any, where: str) -> ImageReferences:
    try:
        return ImageReferences(value)
    except ValueError:
        known = ", ".join(r.value for r in ImageReferences)
        raise InputError(f"{where}: {value!r} is not one of {known}") from None


_CACHE_KEYS = {"maxBytes", "ttl", "negativeTtl", "verdictTtl"}
_TLS_KEYS = {"certFile", "keyFile"}
_LISTEN_KEYS = {"host", "port"}
_KUBERNETES_KEYS = {
    "watch",
    "auditInterval",
    "kubeconfig",
    "certificateSecret",
    "webhookConfiguration",
    "renewBeforeDays",
}


def load_config(path: Path) -> ServeConfig:
    doc = load_json_or_yaml(path, what="configuration", max_bytes=1 << 20)
    if doc is None:
        return ServeConfig()
    if not isinstance(doc, dict):
        raise InputError(f"{path}: the configuration must be a mapping")
    base = path.parent

    def where(key: str) -> str:
        return f"{path}: {key}"

    def check_keys(mapping: Mapping[Any, Any], known: set[str], prefix: str = "") -> None:
        # sorted by text: YAML keys need not be strings, and mixed types do not compare
        unknown = sorted((k for k in mapping if k not in known), key=str)
        if unknown:
            raise InputError(
                f"{path}: unknown setting {prefix + str(unknown[0])!r} "
                f"(known: {', '.join(sorted(known))})"
            )

    def mapping(key: str) -> dict[Any, Any]:
        value = doc.get(key)
        if value is None:
            return {}
        if not isinstance(value, dict):
            raise InputError(f"{where(key)} must be a mapping")
        return value

    def a_path(value: Any, key: str) -> Path:
        if not isinstance(value, str) or not value:
            raise InputError(f"{where(key)} must be a path")
        p = Path(value)
        return p if p.is_absolute() else base / p

    def optional_path(value: Any, key: str) -> Path | None:
        return None if value is None else a_path(value, key)

    def paths(key: str) -> tuple[Path, ...]:
        value = doc.get(key)
        if value is None:
            return ()
        if isinstance(value, str):
            value = [value]
        if not isinstance(value, list):
            raise InputError(f"{where(key)} must be a list of paths")
        return tuple(a_path(v, key) for v in value)

    def strings(key: str, default: tuple[str, ...] = ()) -> tuple[str, ...]:
        value = doc.get(key)
        if value is None:
            return default
        if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
            raise InputError(f"{where(key)} must be a list of strings")
        return tuple(value)

    def number(value: Any, key: str) -> float:
        # NaN compares false with everything, so it would pass a plain `<= 0` test
        if (
            isinstance(value, bool)
            or not isinstance(value, int | float)
            or not math.isfinite(value)
            or value <= 0
        ):
            raise InputError(f"{where(key)} must be a number above 0")
        return float(value)

    def whole(value: Any, key: str) -> int:
        # a fraction would be cut down, 0.5 to 0
        if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
            raise InputError(f"{where(key)} must be a whole number above 0")
        return value

    def name(value: Any, key: str) -> str | None:
        if value is None:
            return None
        if not isinstance(value, str) or not value:
            raise InputError(f"{where(key)} must be a resource name")
        return value

    check_keys(doc, _KEYS)
    config = ServeConfig()
    policy_modes = doc.get("policyModes")
    if policy_modes is None:
        policy_modes = {}
    if not isinstance(policy_modes, dict):
        raise InputError(f"{where('policyModes')} must map policy names to modes")
    faults = doc.get("faults", "Deny")
    if faults not in ("Deny", "Allow"):
        raise InputError(f"{where('faults')}: {faults!r} is not Deny or Allow")
    cache_doc = mapping("cache")
    tls = mapping("tls")
    listen = mapping("listen")
    check_keys(cache_doc, _CACHE_KEYS, "cache.")
    check_keys(tls, _TLS_KEYS, "tls.")
    check_keys(listen, _LISTEN_KEYS, "listen.")
    kube = mapping("kubernetes")
    check_keys(kube, _KUBERNETES_KEYS, "kubernetes.")
    watch = kube.get("watch", False)
    if not isinstance(watch, bool):
        raise InputError(f"{where('kubernetes.watch')} must be true or false")
    cache = CacheSettings(
        max_bytes=whole(cache_doc.get("maxBytes", config.cache.max_bytes), "cache.maxBytes"),
        ttl=number(cache_doc.get("ttl", config.cache.ttl), "cache.ttl"),
        negative_ttl=number(
            cache_doc.get("negativeTtl", config.cache.negative_ttl), "cache.negativeTtl"
        ),
        verdict_ttl=number(
            cache_doc.get("verdictTtl", config.cache.verdict_ttl), "cache.verdictTtl"
        ),
    )
    port = listen.get("port", config.port)
    if isinstance(port, bool) or not isinstance(port, int) or not 0 < port < 65536:
        raise InputError(f"{where('listen.port')} must be a port number")
    host = listen.get("host", config.host)
    if not isinstance(host, str) or not host:
        raise InputError(f"{where('listen.host')} must be a host name or address")
    sources = doc.get("trustedSources")
    if sources is None:
        sources = []
    if not isinstance(sources, list) or not all(isinstance(x, dict) for x in sources):
        raise InputError(f"{where('trustedSources')} must be a list of mappings")
    typosquat = doc.get("typosquat", True)
    if not isinstance(typosquat, bool):
        raise InputError(f"{where('typosquat')} must be true or false")
    allow_empty_sbom = doc.get("allowEmptySbom", False)
    if not isinstance(allow_empty_sbom, bool):
        raise InputError(f"{where('allowEmptySbom')} must be true or false")
    return ServeConfig(
        osv=paths("osv"),
        trusted_sources=tuple(sources),
        typosquat=typosquat,
        policies=optional_path(doc.get("policies"), "policies"),
        data=paths("data"),
        facts=optional_path(doc.get("facts"), "facts"),
        trust_policies=paths("trustPolicies"),
        allowed_registries=strings("allowedRegistries"),
        insecure_registries=strings("insecureRegistries"),
        registry_ca=paths("registryCA"),
        docker_config=optional_path(doc.get("dockerConfig"), "dockerConfig"),
        exempt_namespaces=strings("exemptNamespaces", config.exempt_namespaces),
        mode=parse_mode(doc.get("mode", "Enforce"), where("mode")),
        policy_modes={
            str(k): parse_mode(v, where(f"policyModes.{k}")) for k, v in policy_modes.items()
        },
        faults_allowed=faults == "Allow",
        image_references=parse_image_references(
            doc.get("imageReferences", config.image_references.value), where("imageReferences")
        ),
        allow_empty_sbom=allow_empty_sbom,
        admission_deadline=number(
            doc.get("admissionDeadline", config.admission_deadline), "admissionDeadline"
        ),
        registry_timeout=number(
            doc.get("registryTimeout", config.registry_timeout), "registryTimeout"
        ),
        evaluation_budget=number(
            doc.get("evaluationBudget", config.evaluation_budget), "evaluationBudget"
        ),
        evaluation_processes=whole(
            doc.get("evaluationProcesses", config.evaluation_processes), "evaluationProcesses"
        ),
        cache=cache,
        tls_cert=optional_path(tls.get("certFile"), "tls.certFile"),
        tls_key=optional_path(tls.get("keyFile"), "tls.keyFile"),
        host=host,
        port=port,
        max_message_lines=whole(
            doc.get("maxMessageLines", config.max_message_lines), "maxMessageLines"
        ),
        watch_resources=watch,
        audit_interval=number(
            kube.get("auditInterval", config.audit_interval), "kubernetes.auditInterval"
        ),
        kubeconfig=optional_path(kube.get("kubeconfig"), "kubernetes.kubeconfig"),
        certificate_secret=name(kube.get("certificateSecret"), "kubernetes.certificateSecret"),
        webhook_configuration=name(
            kube.get("webhookConfiguration"), "kubernetes.webhookConfiguration"
        ),
        renew_before_days=number(
            kube.get("renewBeforeDays", config.renew_before_days), "kubernetes.renewBeforeDays"
        ),
    )
