"""config.load_config: the `sbomgate serve --config FILE` file, and flags laid over it."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from sbomgate._internal.logs import LogLevel
from sbomgate.config import (
    CacheSettings,
    Faults,
    ImageReferences,
    Mode,
    ServeConfig,
    load_config,
    parse_mode,
)
from sbomgate.errors import InputError

FULL = """\
policies: /etc/sbomgate/policies
data: [/etc/sbomgate/data.yaml, extra/data.json]
facts: /etc/sbomgate/facts.yaml
trustPolicies: [/etc/sbomgate/trust/, trust/local.yaml]
allowedRegistries: ["ghcr.io", "*.example.com"]
insecureRegistries: ["localhost:5000"]
registryCA: [/etc/ssl/extra.pem]
dockerConfig: /etc/sbomgate/config.json
exemptNamespaces: [kube-system, sbomgate]
mode: Warn
policyModes: {package-age: Warn, licenses: Audit, malware: Enforce}
faults: Allow
imageReferences: RefuseTags
allowEmptySbom: true
admissionDeadline: 7.5
registryTimeout: 2
cache: {maxBytes: 1048576, outcomeBytes: 0, ttl: 60, negativeTtl: 5.5, verdictTtl: 120}
tls: {certFile: /tls/tls.crt, keyFile: /tls/tls.key}
listen: {host: 127.0.0.1, port: 9443}
maxMessageLines: 4
kubernetes: {watch: true, auditInterval: 60, kubeconfig: kube/config}
osv: [osv/]
trustedSources: [{name: internal, kind: pypi, url: "https://pypi.internal/simple/"}]
typosquat: false
logLevel: debug
"""


def _write(tmp_path: Path, text: str, name: str = "config.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def test_a_full_file_is_read(tmp_path: Path) -> None:
    config = load_config(_write(tmp_path, FULL))
    assert config == ServeConfig(
        policies=Path("/etc/sbomgate/policies"),
        data=(Path("/etc/sbomgate/data.yaml"), tmp_path / "extra/data.json"),
        facts=Path("/etc/sbomgate/facts.yaml"),
        trust_policies=(Path("/etc/sbomgate/trust"), tmp_path / "trust/local.yaml"),
        allowed_registries=("ghcr.io", "*.example.com"),
        insecure_registries=("localhost:5000",),
        registry_ca=(Path("/etc/ssl/extra.pem"),),
        docker_config=Path("/etc/sbomgate/config.json"),
        exempt_namespaces=("kube-system", "sbomgate"),
        mode=Mode.WARN,
        policy_modes={"package-age": Mode.WARN, "licenses": Mode.AUDIT, "malware": Mode.ENFORCE},
        faults=Faults.ALLOW,
        image_references=ImageReferences.REFUSE_TAGS,
        allow_empty_sbom=True,
        admission_deadline=7.5,
        registry_timeout=2.0,
        cache=CacheSettings(
            max_bytes=1048576, outcome_bytes=0, ttl=60.0, negative_ttl=5.5, verdict_ttl=120.0
        ),
        tls_cert=Path("/tls/tls.crt"),
        tls_key=Path("/tls/tls.key"),
        host="127.0.0.1",
        port=9443,
        max_message_lines=4,
        watch_resources=True,
        audit_interval=60.0,
        kubeconfig=tmp_path / "kube" / "config",
        osv=(tmp_path / "osv",),
        trusted_sources=(
            {"name": "internal", "kind": "pypi", "url": "https://pypi.internal/simple/"},
        ),
        typosquat=False,
        log_level=LogLevel.DEBUG,
    )
    assert config.faults_allowed
    assert isinstance(config.cache.max_bytes, int)
    assert isinstance(config.max_message_lines, int)


def test_the_docstring_example_is_a_valid_file(tmp_path: Path) -> None:
    import sbomgate.config

    doc = sbomgate.config.__doc__ or ""
    example = re.search(r"```yaml\n(.*?)```", doc, re.S)
    assert example is not None
    config = load_config(_write(tmp_path, example.group(1)))
    assert config.policy_modes == {"package-age": Mode.WARN}
    assert config.cache == CacheSettings()
    assert config.exempt_namespaces == ("kube-system", "sbomgate")
    # every setting the loader knows is in the example
    assert set(yaml.safe_load(example.group(1))) == set(yaml.safe_load(FULL))


def test_a_json_file_is_read(tmp_path: Path) -> None:
    path = _write(tmp_path, '{"mode": "Audit", "listen": {"port": 10250}}', "config.json")
    config = load_config(path)
    assert config.mode is Mode.AUDIT and config.port == 10250


@pytest.mark.parametrize("text", ["", "\n", "# only a comment\n", "---\n", "null\n"])
def test_an_empty_file_gives_the_defaults(tmp_path: Path, text: str) -> None:
    assert load_config(_write(tmp_path, text)) == ServeConfig()


def test_defaults(tmp_path: Path) -> None:
    config = load_config(_write(tmp_path, "{}\n"))
    assert config == ServeConfig()
    assert config.mode is Mode.ENFORCE
    assert config.exempt_namespaces == ("kube-system",)
    assert config.faults_allowed is False
    assert (config.host, config.port, config.max_message_lines) == ("0.0.0.0", 8443, 12)
    assert config.cache == CacheSettings(
        max_bytes=256 << 20,
        outcome_bytes=64 << 20,
        ttl=3600.0,
        negative_ttl=30.0,
        verdict_ttl=300.0,
    )


def test_null_lists_and_sections_mean_the_default(tmp_path: Path) -> None:
    text = "\n".join(
        f"{key}: null"
        for key in (
            "policies",
            "data",
            "facts",
            "trustPolicies",
            "allowedRegistries",
            "exemptNamespaces",
            "dockerConfig",
            "policyModes",
            "cache",
            "tls",
            "listen",
        )
    )
    assert load_config(_write(tmp_path, text)) == ServeConfig()


def test_an_empty_exempt_list_exempts_nothing(tmp_path: Path) -> None:
    assert load_config(_write(tmp_path, "exemptNamespaces: []\n")).exempt_namespaces == ()


def test_relative_paths_resolve_against_the_files_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    conf_dir = tmp_path / "etc" / "sbomgate"
    conf_dir.mkdir(parents=True)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    text = """\
policies: policies
data: data.yaml
facts: ./facts/snapshot.yaml
trustPolicies: ../trust
registryCA: [ca.pem, /abs/ca.pem]
dockerConfig: auth/config.json
tls: {certFile: tls/tls.crt, keyFile: tls/tls.key}
"""
    config = load_config(_write(conf_dir, text))
    assert config.policies == conf_dir / "policies"
    assert config.data == (conf_dir / "data.yaml",)  # a single path is a list of one
    assert config.facts == conf_dir / "facts/snapshot.yaml"
    assert config.trust_policies == (conf_dir / "../trust",)
    assert config.registry_ca == (conf_dir / "ca.pem", Path("/abs/ca.pem"))
    assert config.docker_config == conf_dir / "auth/config.json"
    assert config.tls_cert == conf_dir / "tls/tls.crt"
    assert config.tls_key == conf_dir / "tls/tls.key"


BAD: list[tuple[str, str]] = [
    # (file contents, the key the message must name)
    ("colour: blue\n", "colour"),
    ("mode: Enforce\nMode: Warn\n", "Mode"),
    ("1: x\nfoo: y\n", "1"),  # mixed key types
    ("cache: {ttL: 5}\n", "cache.ttL"),
    ("tls: {cert: a.crt}\n", "tls.cert"),
    ("listen: {address: 0.0.0.0}\n", "listen.address"),
    ("mode: Block\n", "mode"),
    ("mode: enforce\n", "mode"),
    ("mode: null\n", "mode"),
    ("mode: [Enforce]\n", "mode"),
    ("policyModes: [package-age]\n", "policyModes"),
    ("policyModes: Warn\n", "policyModes"),
    ("policyModes: []\n", "policyModes"),
    ("policyModes: {package-age: Deny}\n", "policyModes.package-age"),
    ("policyModes: {licenses: null}\n", "policyModes.licenses"),
    ("faults: Fail\n", "faults"),
    ("faults: deny\n", "faults"),
    ("faults: [Deny]\n", "faults"),
    ("faults: null\n", "faults"),
    ("admissionDeadline: 0\n", "admissionDeadline"),
    ("admissionDeadline: -1\n", "admissionDeadline"),
    ("admissionDeadline: true\n", "admissionDeadline"),
    ("admissionDeadline: '8'\n", "admissionDeadline"),
    ("admissionDeadline: .nan\n", "admissionDeadline"),
    ("admissionDeadline: .inf\n", "admissionDeadline"),
    ("registryTimeout: -0.5\n", "registryTimeout"),
    ("registryTimeout: false\n", "registryTimeout"),
    ("registryTimeout: null\n", "registryTimeout"),
    ("maxMessageLines: 0\n", "maxMessageLines"),
    ("maxMessageLines: 2.5\n", "maxMessageLines"),
    ("maxMessageLines: true\n", "maxMessageLines"),
    ("cache: [1]\n", "cache"),
    ("cache: 5\n", "cache"),
    ("cache: ''\n", "cache"),
    ("cache: {maxBytes: 0}\n", "cache.maxBytes"),
    ("cache: {maxBytes: 0.5}\n", "cache.maxBytes"),
    ("cache: {maxBytes: -1}\n", "cache.maxBytes"),
    ("cache: {maxBytes: true}\n", "cache.maxBytes"),
    ("cache: {ttl: 0}\n", "cache.ttl"),
    ("cache: {ttl: -.inf}\n", "cache.ttl"),
    ("cache: {negativeTtl: -3}\n", "cache.negativeTtl"),
    ("cache: {verdictTtl: true}\n", "cache.verdictTtl"),
    ("cache: {verdictTtl: .nan}\n", "cache.verdictTtl"),
    ("tls: [a, b]\n", "tls"),
    ("tls: {certFile: 5}\n", "tls.certFile"),
    ("tls: {keyFile: [a]}\n", "tls.keyFile"),
    ("tls: {keyFile: false}\n", "tls.keyFile"),
    ("tls: {certFile: ''}\n", "tls.certFile"),
    ("listen: 8443\n", "listen"),
    ("listen: {port: 0}\n", "listen.port"),
    ("listen: {port: 65536}\n", "listen.port"),
    ("listen: {port: -1}\n", "listen.port"),
    ("listen: {port: '8443'}\n", "listen.port"),
    ("listen: {port: 8443.0}\n", "listen.port"),
    ("listen: {port: true}\n", "listen.port"),
    ("listen: {host: null}\n", "listen.host"),
    ("listen: {host: [a]}\n", "listen.host"),
    ("allowedRegistries: ghcr.io\n", "allowedRegistries"),
    ("allowedRegistries: [ghcr.io, 5]\n", "allowedRegistries"),
    ("allowedRegistries: ['']\n", "allowedRegistries"),
    ("allowedRegistries: {ghcr.io: true}\n", "allowedRegistries"),
    ("insecureRegistries: [[a]]\n", "insecureRegistries"),
    ("exemptNamespaces: kube-system\n", "exemptNamespaces"),
    ("data: {a: b}\n", "data"),
    ("data: [ok.yaml, 3]\n", "data"),
    ("trustPolicies: 7\n", "trustPolicies"),
    ("registryCA: ['']\n", "registryCA"),
    ("policies: [a]\n", "policies"),
    ("policies: ''\n", "policies"),
    ("facts: 3\n", "facts"),
    ("dockerConfig: false\n", "dockerConfig"),
]


@pytest.mark.parametrize(("text", "key"), BAD, ids=[t.strip() for t, _ in BAD])
def test_each_bad_value_names_the_file_and_the_key(tmp_path: Path, text: str, key: str) -> None:
    path = _write(tmp_path, text)
    with pytest.raises(InputError) as caught:
        load_config(path)
    message = str(caught.value)
    assert message.startswith(f"{path}: "), message
    assert re.search(rf"(?<![\w.-]){re.escape(key)}(?![\w.-])", message), message


def test_an_unknown_setting_lists_the_known_ones(tmp_path: Path) -> None:
    with pytest.raises(InputError, match=r"unknown setting 'colour' \(known: admissionDeadline,"):
        load_config(_write(tmp_path, "colour: blue\n"))
    with pytest.raises(
        InputError, match=r"'cache\.ttL' \(known: maxBytes, negativeTtl, outcomeBytes, ttl,"
    ):
        load_config(_write(tmp_path, "cache: {ttL: 5}\n"))


@pytest.mark.parametrize("text", ["- mode: Warn\n", "Enforce\n", "3\n"])
def test_a_document_that_is_not_a_mapping_is_refused(tmp_path: Path, text: str) -> None:
    path = _write(tmp_path, text)
    with pytest.raises(InputError, match=f"^{re.escape(str(path))}: .*must be a mapping"):
        load_config(path)


def test_unreadable_and_unparsable_files_name_the_file(tmp_path: Path) -> None:
    missing = tmp_path / "missing.yaml"
    with pytest.raises(InputError, match=re.escape(str(missing))):
        load_config(missing)
    broken = _write(tmp_path, "mode: [Warn\n")
    with pytest.raises(InputError, match=re.escape(str(broken)) + ": invalid YAML"):
        load_config(broken)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("listen: {port: 1}\n", ServeConfig(port=1)),
        ("listen: {port: 65535}\n", ServeConfig(port=65535)),
        ("admissionDeadline: 1\n", ServeConfig(admission_deadline=1.0)),
        ("registryTimeout: 0.001\n", ServeConfig(registry_timeout=0.001)),
        ("maxMessageLines: 1\n", ServeConfig(max_message_lines=1)),
        ("faults: Deny\n", ServeConfig(faults=Faults.DENY)),
        ("mode: Audit\n", ServeConfig(mode=Mode.AUDIT)),
        ("cache: {ttl: 1}\n", ServeConfig(cache=CacheSettings(ttl=1.0))),
        ("cache: {}\n", ServeConfig()),
        ("listen: {host: '::'}\n", ServeConfig(host="::")),
        ("policyModes: {}\n", ServeConfig()),
    ],
)
def test_edge_values_are_accepted(tmp_path: Path, text: str, expected: ServeConfig) -> None:
    assert load_config(_write(tmp_path, text)) == expected


def test_parse_mode() -> None:
    assert parse_mode("Warn", "--mode") is Mode.WARN
    with pytest.raises(InputError, match=r"^--mode: 'warn' is not one of Enforce, Warn, Audit$"):
        parse_mode("warn", "--mode")


def test_with_overrides_ignores_none_and_empty_and_applies_the_rest() -> None:
    base = ServeConfig(
        policies=Path("/p"),
        data=(Path("/d.yaml"),),
        allowed_registries=("ghcr.io",),
        exempt_namespaces=("kube-system", "infra"),
        mode=Mode.WARN,
        port=9443,
    )
    unchanged: dict[str, Any] = {
        "policies": None,
        "data": (),
        "facts": None,
        "allowed_registries": (),
        "exempt_namespaces": (),
        "mode": None,
        "port": None,
        "admission_deadline": None,
        "trust_policies": [],
    }
    assert base.with_overrides(**unchanged) == base
    assert base.with_overrides() == base
    changed = base.with_overrides(
        **unchanged
        | {
            "policies": Path("/q"),
            "data": (Path("/e.yaml"), Path("/f.yaml")),
            "allowed_registries": ("quay.io",),
            "exempt_namespaces": ("ops",),
            "mode": Mode.AUDIT,
            "port": 10250,
            "admission_deadline": 2.5,
            "host": "127.0.0.1",
        }
    )
    assert changed == ServeConfig(
        policies=Path("/q"),
        data=(Path("/e.yaml"), Path("/f.yaml")),
        allowed_registries=("quay.io",),
        exempt_namespaces=("ops",),
        mode=Mode.AUDIT,
        port=10250,
        admission_deadline=2.5,
        host="127.0.0.1",
    )
    # the base is left alone (frozen), and falsy values that are not "not given" still apply
    assert base.port == 9443
    assert base.with_overrides(faults=Faults.DENY, typosquat=False) == ServeConfig(
        policies=Path("/p"),
        data=(Path("/d.yaml"),),
        allowed_registries=("ghcr.io",),
        exempt_namespaces=("kube-system", "infra"),
        mode=Mode.WARN,
        port=9443,
        typosquat=False,
    )
    with pytest.raises(TypeError):
        base.with_overrides(colour="blue")
