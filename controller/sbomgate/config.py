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
admissionDeadline: 8                      # seconds, below the webhook's timeoutSeconds
registryTimeout: 3                        # seconds to connect
cache: {maxBytes: 268435456, ttl: 3600, negativeTtl: 30, verdictTtl: 300}
tls: {certFile: /tls/tls.crt, keyFile: /tls/tls.key}
listen: {host: 0.0.0.0, port: 8443}
maxMessageLines: 12
```
"""

from __future__ import annotations

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
    admission_deadline: float = 8.0
    registry_timeout: float = 3.0
    cache: CacheSettings = field(default_factory=CacheSettings)
    tls_cert: Path | None = None
    tls_key: Path | None = None
    host: str = "0.0.0.0"
    port: int = 8443
    max_message_lines: int = 12

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
    "admissionDeadline",
    "registryTimeout",
    "cache",
    "tls",
    "listen",
    "maxMessageLines",
}


def parse_mode(value: Any, where: str) -> Mode:
    try:
        return Mode(value)
    except ValueError:
        raise InputError(f"{where}: {value!r} is not one of Enforce, Warn, Audit") from None


def load_config(path: Path) -> ServeConfig:
    doc = load_json_or_yaml(path, what="configuration", max_bytes=1 << 20)
    if doc is None:
        return ServeConfig()
    if not isinstance(doc, dict):
        raise InputError(f"{path}: the configuration must be a mapping")
    unknown = sorted(set(doc) - _KEYS)
    if unknown:
        raise InputError(
            f"{path}: unknown setting {unknown[0]!r} (known: {', '.join(sorted(_KEYS))})"
        )
    base = path.parent

    def where(key: str) -> str:
        return f"{path}: {key}"

    def a_path(value: Any, key: str) -> Path:
        if not isinstance(value, str) or not value:
            raise InputError(f"{where(key)} must be a path")
        p = Path(value)
        return p if p.is_absolute() else base / p

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

    def number(value: Any, key: str, *, minimum: float = 0.0) -> float:
        if isinstance(value, bool) or not isinstance(value, int | float) or value <= minimum:
            raise InputError(f"{where(key)} must be a number above {minimum:g}")
        return float(value)

    config = ServeConfig()
    policy_modes = doc.get("policyModes") or {}
    if not isinstance(policy_modes, dict):
        raise InputError(f"{where('policyModes')} must map policy names to modes")
    faults = doc.get("faults", "Deny")
    if faults not in ("Deny", "Allow"):
        raise InputError(f"{where('faults')}: {faults!r} is not Deny or Allow")
    cache_doc = doc.get("cache") or {}
    tls = doc.get("tls") or {}
    listen = doc.get("listen") or {}
    for key, value in (("cache", cache_doc), ("tls", tls), ("listen", listen)):
        if not isinstance(value, dict):
            raise InputError(f"{where(key)} must be a mapping")
    cache = CacheSettings(
        max_bytes=int(number(cache_doc.get("maxBytes", config.cache.max_bytes), "cache.maxBytes")),
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
    return ServeConfig(
        policies=a_path(doc["policies"], "policies") if doc.get("policies") else None,
        data=paths("data"),
        facts=a_path(doc["facts"], "facts") if doc.get("facts") else None,
        trust_policies=paths("trustPolicies"),
        allowed_registries=strings("allowedRegistries"),
        insecure_registries=strings("insecureRegistries"),
        registry_ca=paths("registryCA"),
        docker_config=a_path(doc["dockerConfig"], "dockerConfig")
        if doc.get("dockerConfig")
        else None,
        exempt_namespaces=strings("exemptNamespaces", config.exempt_namespaces),
        mode=parse_mode(doc.get("mode", "Enforce"), where("mode")),
        policy_modes={
            str(k): parse_mode(v, where(f"policyModes.{k}")) for k, v in policy_modes.items()
        },
        faults_allowed=faults == "Allow",
        admission_deadline=number(
            doc.get("admissionDeadline", config.admission_deadline), "admissionDeadline"
        ),
        registry_timeout=number(
            doc.get("registryTimeout", config.registry_timeout), "registryTimeout"
        ),
        cache=cache,
        tls_cert=a_path(tls["certFile"], "tls.certFile") if tls.get("certFile") else None,
        tls_key=a_path(tls["keyFile"], "tls.keyFile") if tls.get("keyFile") else None,
        host=str(listen.get("host", config.host)),
        port=port,
        max_message_lines=int(
            number(doc.get("maxMessageLines", config.max_message_lines), "maxMessageLines")
        ),
    )
