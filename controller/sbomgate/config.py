"""The settings of `sbomgate serve`: one model, read from a file (`--config FILE`), flags on top.

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
cache: {maxBytes: 268435456, outcomeBytes: 67108864, ttl: 3600, negativeTtl: 30, verdictTtl: 300}
tls: {certFile: /tls/tls.crt, keyFile: /tls/tls.key}
listen: {host: 0.0.0.0, port: 8443}
maxMessageLines: 12
kubernetes: {watch: true, auditInterval: 300}  # PackagePolicy, TrustPolicy, PackageQuarantine
osv: [/var/lib/osv/]                      # OSV exports: all.zip files or directories of JSON
trustedSources:                           # checked in order, per ecosystem
  - {name: pypi-internal, kind: pypi, url: "https://pypi.acme.example/simple/", hosting: hosted}
  - {name: npm-proxy, kind: npm, url: "https://npm.acme.example/"}  # hosting: proxied (default)
  - {name: debian, kind: apt, url: "http://deb.debian.org/debian", vendor: debian,
     distro: [debian-12, bookworm], suites: [bookworm], components: [main],
     architectures: [amd64], keyring: /usr/share/keyrings/debian-archive-keyring.gpg}
typosquat: true                           # input.v0.package.typosquat_of
logLevel: info                            # debug | info | warning | error
```

`ServeConfig` is a frozen pydantic model: the type every module reads, built the same way from
the file (`load_config`: camelCase keys, unknown keys refused, relative paths against the
file's directory) and in Python (`ServeConfig(port=9443)`, by field name). Flags are laid over
it with `with_overrides` (`model_copy(update=...)`). The file's `tls`, `listen` and
`kubernetes` sections only group keys for the reader, so they are flat fields here, with
dotted keys (`listen.port`); `cache` is read by the program as one value, so it is a model of
its own. A validation error becomes the one-line message the CLI prints: the file, the key's
path, what is wrong and what is allowed. `trustedSources` entries are checked where they are
used (`intel.facts.source_configs`).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationError,
    ValidationInfo,
    model_validator,
)
from pydantic.fields import FieldInfo
from pydantic_core import ErrorDetails, PydanticCustomError

from sbomgate._internal.documents import load_json_or_yaml
from sbomgate._internal.logs import LogLevel
from sbomgate.errors import InputError

MAX_CONFIG_BYTES = 1 << 20


class Mode(StrEnum):
    """What a Deny finding does to a request: refuse it (Enforce), admit it with a warning (Warn),
    or only record it (Audit)."""

    ENFORCE = "Enforce"  # refuse
    WARN = "Warn"  # admit, with AdmissionReview warnings (kubectl prints them)
    AUDIT = "Audit"  # admit, record only


class Faults(StrEnum):
    """What an image that could not be checked (an unreachable registry, a timeout) gets."""

    DENY = "Deny"
    ALLOW = "Allow"


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


# -- constrained types; each `description` says what is allowed, for the error message ------

# Strict: YAML's `true` and `'8'` are not numbers; NaN compares false with everything, so it
# would pass a plain `<= 0` test.
PositiveNumber = Annotated[
    float, Field(strict=True, gt=0, allow_inf_nan=False, description="a number above 0")
]
# Strict: a fraction would be cut down, 0.5 to 0.
WholeNumber = Annotated[int, Field(strict=True, gt=0, description="a whole number above 0")]
ByteCount = Annotated[int, Field(strict=True, ge=0, description="a whole number of bytes")]
Port = Annotated[int, Field(strict=True, gt=0, lt=65536, description="a port number")]
Switch = Annotated[bool, Field(strict=True, description="true or false")]
NonEmptyText = Annotated[str, Field(strict=True, min_length=1)]


def _path_text(value: object) -> object:
    if isinstance(value, Path) or (isinstance(value, str) and value):
        return value
    raise PydanticCustomError("path_type", "not a path")


def _against_the_file(path: Path, info: ValidationInfo) -> Path:
    """A relative path in a file is relative to that file's directory, not to where the
    process happens to run."""
    base = (info.context or {}).get("base")
    return path if base is None or path.is_absolute() else base / path


def _one_or_many(value: object) -> object:
    return [value] if isinstance(value, str) else value


def _text_keys(value: object) -> object:
    # YAML keys need not be strings (`1: Warn`); a policy name is text, with `_` written `-`
    # as policy.loader.policy_name writes every policy's name (`package_age` is `package-age`).
    if not isinstance(value, dict):
        return value
    return {str(k).replace("_", "-"): v for k, v in value.items()}


FilePath = Annotated[Path, BeforeValidator(_path_text), AfterValidator(_against_the_file)]
Paths = Annotated[
    tuple[FilePath, ...], BeforeValidator(_one_or_many), Field(description="a list of paths")
]
OptionalPath = Annotated[FilePath | None, Field(description="a path")]
Strings = Annotated[tuple[NonEmptyText, ...], Field(description="a list of strings")]
ResourceName = Annotated[NonEmptyText | None, Field(description="a resource name")]


class _Settings(BaseModel):
    # Frozen: one configuration is shared by every thread. By name in Python, by the file's
    # camelCase key in a file (load_config turns names off).
    model_config = ConfigDict(
        frozen=True, extra="forbid", validate_by_name=True, validate_by_alias=True
    )


class CacheSettings(_Settings):
    """The `cache:` section: the image-check cache's size and TTLs, the verdicts' TTL, and the
    policy outcome cache's size (`policy/outcomes.py`; 0 turns it off)."""

    max_bytes: WholeNumber = Field(default=256 << 20, validation_alias="maxBytes")
    outcome_bytes: ByteCount = Field(default=64 << 20, validation_alias="outcomeBytes")
    ttl: PositiveNumber = Field(default=3600.0, validation_alias="ttl")
    negative_ttl: PositiveNumber = Field(default=30.0, validation_alias="negativeTtl")
    verdict_ttl: PositiveNumber = Field(default=300.0, validation_alias="verdictTtl")


class ServeConfig(_Settings):
    """Every setting of `sbomgate serve`, by Python name or by the file's key (see the module
    docstring)."""

    policies: OptionalPath = Field(default=None, validation_alias="policies")
    data: Paths = Field(default=(), validation_alias="data")
    facts: OptionalPath = Field(default=None, validation_alias="facts")
    trust_policies: Paths = Field(default=(), validation_alias="trustPolicies")
    allowed_registries: Strings = Field(default=(), validation_alias="allowedRegistries")
    insecure_registries: Strings = Field(default=(), validation_alias="insecureRegistries")
    registry_ca: Paths = Field(default=(), validation_alias="registryCA")
    docker_config: OptionalPath = Field(default=None, validation_alias="dockerConfig")
    exempt_namespaces: Strings = Field(
        default=("kube-system",), validation_alias="exemptNamespaces"
    )
    mode: Mode = Field(default=Mode.ENFORCE, validation_alias="mode")
    policy_modes: Annotated[dict[str, Mode], BeforeValidator(_text_keys)] = Field(
        default_factory=dict,
        validation_alias="policyModes",
        description="a mapping of policy names to modes",
    )
    faults: Faults = Field(default=Faults.DENY, validation_alias="faults")
    image_references: ImageReferences = Field(
        default=ImageReferences.PIN, validation_alias="imageReferences"
    )
    # A verified SBOM that lists no packages proves nothing: refused unless this is set.
    allow_empty_sbom: Switch = Field(default=False, validation_alias="allowEmptySbom")
    admission_deadline: PositiveNumber = Field(default=8.0, validation_alias="admissionDeadline")
    registry_timeout: PositiveNumber = Field(default=3.0, validation_alias="registryTimeout")
    # Policy evaluation runs in worker processes; one image's evaluation that overruns the
    # budget is stopped and denies (a policy that runs away cannot hold the webhook).
    evaluation_budget: PositiveNumber = Field(default=10.0, validation_alias="evaluationBudget")
    evaluation_processes: WholeNumber = Field(default=2, validation_alias="evaluationProcesses")
    cache: CacheSettings = Field(
        default_factory=CacheSettings, validation_alias="cache", description="a mapping"
    )
    tls_cert: OptionalPath = Field(default=None, validation_alias="tls.certFile")
    tls_key: OptionalPath = Field(default=None, validation_alias="tls.keyFile")
    host: NonEmptyText = Field(
        default="0.0.0.0", validation_alias="listen.host", description="a host name or address"
    )
    port: Port = Field(default=8443, validation_alias="listen.port")
    max_message_lines: WholeNumber = Field(default=12, validation_alias="maxMessageLines")
    # The operator side: policies, trust and quarantine from custom resources.
    watch_resources: Switch = Field(default=False, validation_alias="kubernetes.watch")
    audit_interval: PositiveNumber = Field(
        default=300.0, validation_alias="kubernetes.auditInterval"
    )
    kubeconfig: OptionalPath = Field(default=None, validation_alias="kubernetes.kubeconfig")
    # The self-signed serving certificate the elected replica renews (no cert-manager).
    certificate_secret: ResourceName = Field(
        default=None, validation_alias="kubernetes.certificateSecret"
    )
    webhook_configuration: ResourceName = Field(
        default=None, validation_alias="kubernetes.webhookConfiguration"
    )
    renew_before_days: PositiveNumber = Field(
        default=30.0, validation_alias="kubernetes.renewBeforeDays"
    )
    # Package intelligence beyond the facts snapshot.
    osv: Paths = Field(default=(), validation_alias="osv")
    trusted_sources: tuple[dict[str, Any], ...] = Field(
        default=(), validation_alias="trustedSources", description="a list of mappings"
    )
    typosquat: Switch = Field(default=True, validation_alias="typosquat")
    log_level: LogLevel = Field(default=LogLevel.INFO, validation_alias="logLevel")

    @property
    def faults_allowed(self) -> bool:
        """True when images that could not be checked are admitted (`faults: Allow`)."""
        return self.faults is Faults.ALLOW

    @model_validator(mode="before")
    @classmethod
    def _file_shape(cls, data: Any) -> Any:
        """The file's grouping sections as dotted keys (`listen: {port: 1}` is `listen.port`),
        and `null` as "the default" where the default is empty (lists, mappings, optional
        values); a number, a switch or a mode must be given a value."""
        if not isinstance(data, dict):
            return data
        flat: dict[str, Any] = {}
        for key, value in data.items():
            name = str(key)
            if "." in name:  # would pass for a section's key
                raise PydanticCustomError("unknown_setting", "unknown setting", {"setting": name})
            if name in _SECTIONS:
                if value is None:
                    continue
                if not isinstance(value, dict):
                    raise PydanticCustomError(
                        "section_type", "must be a mapping", {"setting": name}
                    )
                flat.update((f"{name}.{k}", v) for k, v in value.items())
            else:
                flat[name] = value
        return {k: v for k, v in flat.items() if v is not None or k not in _NULL_IS_DEFAULT}

    def with_overrides(self, **flags: Any) -> ServeConfig:
        """Flags given on the command line, by field name (None and empty mean "not given").

        Not validated again: the flags' own types (and `parse_mode`) check them."""
        unknown = sorted(set(flags) - set(type(self).model_fields))
        if unknown:
            raise TypeError(f"ServeConfig has no setting {unknown[0]!r}")
        given = {k: v for k, v in flags.items() if v not in (None, (), [])}
        return self.model_copy(update=given)


def _key(info: FieldInfo) -> str:
    assert isinstance(info.validation_alias, str)  # every setting names its key
    return info.validation_alias


def _empty_default(info: FieldInfo) -> bool:
    default = info.get_default(call_default_factory=True)
    return default is None or isinstance(default, tuple | Mapping | BaseModel)


# Keys of the file: `listen.port` for a key in a section.
_KEYS = {_key(info): info for info in ServeConfig.model_fields.values()}
_SECTIONS = {key.partition(".")[0] for key in _KEYS if "." in key}
_NULL_IS_DEFAULT = {key for key, info in _KEYS.items() if _empty_default(info)}
_CACHE_KEYS = {_key(info): info for info in CacheSettings.model_fields.values()}
_UNKNOWN = ("extra_forbidden", "unknown_setting")


def load_config(path: Path) -> ServeConfig:
    """The settings in a YAML or JSON file (an empty file: the defaults); InputError with one
    line naming the file and the key when something in it cannot be used."""
    doc = load_json_or_yaml(path, what="configuration", max_bytes=MAX_CONFIG_BYTES)
    if doc is None:
        return ServeConfig()
    if not isinstance(doc, dict):
        raise InputError(f"{path}: the configuration must be a mapping")
    try:
        return ServeConfig.model_validate(
            doc, by_alias=True, by_name=False, context={"base": path.parent}
        )
    except ValidationError as exc:
        raise InputError(f"{path}: {_first_problem(exc)}") from None


def _first_problem(exc: ValidationError) -> str:
    """Unknown keys first (sorted by text: YAML keys need not be strings), then the rest in
    the order of the settings."""
    errors = exc.errors()
    unknown = sorted((e for e in errors if e["type"] in _UNKNOWN), key=_where)
    return _describe((unknown or errors)[0])


def _where(error: ErrorDetails) -> str:
    """The key's path in the file: `cache.ttl`, `listen.port`, `data.1`."""
    loc = error["loc"] or ((error.get("ctx") or {}).get("setting", ""),)
    return ".".join(str(part) for part in loc)


def _describe(error: ErrorDetails) -> str:
    """What is wrong with the key, and what is allowed there."""
    where, kind = _where(error), error["type"]
    if kind in _UNKNOWN:
        top_level = kind == "unknown_setting"  # a dotted key written at the top level
        known = ", ".join(sorted(_known_next_to("" if top_level else where)))
        return f"unknown setting {where!r} (known: {known})"
    if kind in ("enum", "literal_error"):
        allowed = re.findall(r"'([^']*)'", (error.get("ctx") or {}).get("expected", ""))
        choices = " or ".join(allowed) if len(allowed) == 2 else "one of " + ", ".join(allowed)
        return f"{where}: {error['input']!r} is not {choices}"
    if kind == "section_type":
        return f"{where} must be a mapping"
    key, setting = _setting_at(where)
    if setting is None or not setting.description:
        return f"{where}: {error['msg']}"
    item = where.removeprefix(f"{key}.")
    detail = f": item {int(item) + 1} is {error['input']!r}" if item.isdigit() else ""
    return f"{key} must be {setting.description}{detail}"


def _known_next_to(where: str) -> set[str]:
    """The keys allowed where an unknown one was found: the top level's, or a section's."""
    section, dot, _ = where.rpartition(".")
    if not dot:
        return {key.partition(".")[0] for key in _KEYS}
    if section == "cache":
        return set(_CACHE_KEYS)
    return {key.partition(".")[2] for key in _KEYS if key.startswith(f"{section}.")}


def _setting_at(where: str) -> tuple[str, FieldInfo | None]:
    """The setting an error's path falls in, and its key: `data.1` is in `data`."""
    if where.startswith("cache."):
        key = ".".join(where.split(".")[:2])
        return key, _CACHE_KEYS.get(key.partition(".")[2])
    for key, info in _KEYS.items():
        if where == key or where.startswith(f"{key}."):
            return key, info
    return where, None


def parse_mode(value: Any, where: str) -> Mode:
    """A Mode from its name; an InputError naming `where` otherwise."""
    try:
        return Mode(value)
    except ValueError:
        raise InputError(f"{where}: {value!r} is not one of Enforce, Warn, Audit") from None


def parse_image_references(value: Any, where: str) -> ImageReferences:
    """An ImageReferences setting from its name; an InputError naming `where` otherwise."""
    try:
        return ImageReferences(value)
    except ValueError:
        known = ", ".join(r.value for r in ImageReferences)
        raise InputError(f"{where}: {value!r} is not one of {known}") from None
