"""Trust policies: loading, refusals that name the file and field, and image/predicate matching."""

from __future__ import annotations

import textwrap
from pathlib import Path
from typing import Any

import pytest
import yaml
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from sbomgate.attest.trust import (
    PREDICATE_ALIASES,
    AttestationRequirement,
    KeylessIdentity,
    TrustPolicy,
    glob_to_regex,
    is_provenance_predicate,
    is_sbom_predicate,
    load_trust_policies,
    parse_trust_policy,
    predicate_matches,
)
from sbomgate.errors import TrustPolicyError


def public_pem(private: Any) -> str:
    pem: bytes = private.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return pem.decode()


@pytest.fixture(scope="module")
def pem() -> str:
    return public_pem(ec.generate_private_key(ec.SECP256R1()))


@pytest.fixture(scope="module")
def pem2() -> str:
    return public_pem(ec.generate_private_key(ec.SECP384R1()))


def policy_doc(pem: str, name: str = "default", **spec: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "images": ["registry.example/**"],
        "authorities": [{"name": "ci-key", "key": {"data": pem}}],
    }
    body.update(spec)
    return {
        "apiVersion": "sbomgate.dev/v1alpha1",
        "kind": "TrustPolicy",
        "metadata": {"name": name},
        "spec": body,
    }


def write(path: Path, *docs: Any) -> Path:
    path.write_text(yaml.safe_dump_all(docs, sort_keys=False))
    return path


def refusal(tmp_path: Path, doc: Any) -> str:
    path = write(tmp_path / "policy.yaml", doc)
    with pytest.raises(TrustPolicyError) as caught:
        load_trust_policies([path])
    message = str(caught.value)
    assert message.startswith(str(path))
    return message


# --- loading ------------------------------------------------------------------------------


def test_example_from_the_module_docstring(tmp_path: Path, pem: str) -> None:
    (tmp_path / "trusted_root.json").write_text("{}")
    (tmp_path / "policy.yaml").write_text(
        textwrap.dedent(
            """\
            apiVersion: sbomgate.dev/v1alpha1
            kind: TrustPolicy
            metadata: {name: default}
            spec:
              images: ["registry.example/**"]
              authorities:
                - {name: ci-key, key: {data: "PEM"}}
                - name: ci-keyless
                  keyless:
                    identities:
                      - {issuer: "https://token.actions.githubusercontent.com",
                         subjectRegExp: "^https://github.com/acme/"}
                    trustedRoot: {file: trusted_root.json}
              attestations:
                - {name: sbom, predicateTypes: [https://cyclonedx.org/bom, https://spdx.dev/Document]}
                - {name: provenance, predicateTypes: [https://slsa.dev/provenance/v1], required: false,
                   builderIds: [https://builder.example], sourceRepositories: [github.com/acme/app]}
              allowUnsigned: false
            """
        ).replace('"PEM"', repr(pem).replace("'", '"'))
    )
    [policy] = load_trust_policies([tmp_path / "policy.yaml"])
    assert policy.name == "default"
    assert policy.source == str(tmp_path / "policy.yaml")
    assert policy.images == ("registry.example/**",)
    assert policy.allow_unsigned is False
    key_authority, keyless = policy.authorities
    assert key_authority.name == "ci-key"
    assert not key_authority.keyless
    assert [k.kind for k in key_authority.keys] == ["ecdsa-secp256r1"]
    assert keyless.keyless
    assert keyless.keys == ()
    assert keyless.trusted_root == str(tmp_path / "trusted_root.json")
    assert keyless.identities == (
        KeylessIdentity(
            issuer="https://token.actions.githubusercontent.com",
            issuer_regexp=None,
            subject=None,
            subject_regexp="^https://github.com/acme/",
        ),
    )
    sbom, provenance = policy.attestations
    assert sbom == AttestationRequirement(
        "sbom", ("https://cyclonedx.org/bom", "https://spdx.dev/Document")
    )
    assert provenance == AttestationRequirement(
        "provenance",
        ("https://slsa.dev/provenance/v1",),
        required=False,
        builder_ids=("https://builder.example",),
        source_repositories=("github.com/acme/app",),
    )


def test_default_attestation_is_an_sbom(tmp_path: Path, pem: str) -> None:
    [policy] = load_trust_policies([write(tmp_path / "p.yaml", policy_doc(pem))])
    [requirement] = policy.attestations
    assert requirement.name == "sbom"
    assert requirement.required
    assert requirement.wants("https://cyclonedx.org/bom/v1.6")
    assert requirement.wants("https://spdx.dev/Document")
    assert not requirement.wants("https://slsa.dev/provenance/v1")


def test_multiple_documents_per_file(tmp_path: Path, pem: str) -> None:
    path = tmp_path / "p.yaml"
    path.write_text(
        "---\n"
        + yaml.safe_dump(policy_doc(pem, "one"))
        + "---\n"
        + "# an empty document is skipped\n"
        + "---\n"
        + yaml.safe_dump(policy_doc(pem, "two", images=["ghcr.io/acme/*"]))
    )
    one, two = load_trust_policies([path])
    assert (one.name, two.name) == ("one", "two")
    assert one.source == f"{path} (document 1)"
    assert two.source == f"{path} (document 2)"
    assert two.images == ("ghcr.io/acme/*",)


def test_a_directory_loads_its_yaml_files_in_order(tmp_path: Path, pem: str) -> None:
    write(tmp_path / "b.yml", policy_doc(pem, "b"))
    write(tmp_path / "a.yaml", policy_doc(pem, "a"))
    (tmp_path / "notes.txt").write_text("not a policy")
    (tmp_path / "README.md").write_text("# no")
    assert [p.name for p in load_trust_policies([tmp_path])] == ["a", "b"]


def test_directory_and_file_together(tmp_path: Path, pem: str) -> None:
    directory = tmp_path / "d"
    directory.mkdir()
    write(directory / "a.yaml", policy_doc(pem, "a"))
    extra = write(tmp_path / "extra.yaml", policy_doc(pem, "x"))
    assert [p.name for p in load_trust_policies([directory, extra])] == ["a", "x"]


def test_key_file_relative_to_the_policy_file(tmp_path: Path, pem: str, pem2: str) -> None:
    keys = tmp_path / "keys"
    keys.mkdir()
    (keys / "cosign.pub").write_text(pem + "\n" + pem2)  # two keys in one file
    policies = tmp_path / "policies"
    policies.mkdir()
    doc = policy_doc(pem, authorities=[{"name": "k", "key": {"file": "../keys/cosign.pub"}}])
    [policy] = load_trust_policies([write(policies / "p.yaml", doc)])
    assert [k.kind for k in policy.authorities[0].keys] == ["ecdsa-secp256r1", "ecdsa-secp384r1"]


def test_absolute_key_file(tmp_path: Path, pem: str) -> None:
    key = tmp_path / "cosign.pub"
    key.write_text(pem)
    doc = policy_doc(pem, authorities=[{"name": "k", "key": {"file": str(key)}}])
    [policy] = load_trust_policies([write(tmp_path / "p.yaml", doc)])
    assert len(policy.authorities[0].keys) == 1


def test_allow_unsigned_needs_no_authorities(tmp_path: Path, pem: str) -> None:
    doc = policy_doc(pem, allowUnsigned=True)
    del doc["spec"]["authorities"]
    [policy] = load_trust_policies([write(tmp_path / "p.yaml", doc)])
    assert policy.allow_unsigned
    assert policy.authorities == ()


def test_parse_trust_policy_without_a_base_dir(pem: str) -> None:
    policy = parse_trust_policy(policy_doc(pem), "inline")
    assert isinstance(policy, TrustPolicy)
    assert policy.source == "inline"


def test_predicate_aliases_are_expanded(tmp_path: Path, pem: str) -> None:
    doc = policy_doc(
        pem,
        attestations=[
            {"name": "sbom", "predicateTypes": ["cyclonedx", "spdxjson"]},
            {"name": "prov", "predicateTypes": ["slsaprovenance1", "https://example/custom"]},
        ],
    )
    [policy] = load_trust_policies([write(tmp_path / "p.yaml", doc)])
    assert policy.attestations[0].predicate_types == (
        "https://cyclonedx.org/bom",
        "https://spdx.dev/Document",
    )
    assert policy.attestations[1].predicate_types == (
        "https://slsa.dev/provenance/v1",
        "https://example/custom",
    )
    assert PREDICATE_ALIASES["cyclonedx"] == "https://cyclonedx.org/bom"


# --- refusals -----------------------------------------------------------------------------


def without(doc: dict[str, Any], *path: str | int) -> dict[str, Any]:
    target: Any = doc
    for key in path[:-1]:
        target = target[key]
    del target[path[-1]]
    return doc


@pytest.mark.parametrize(
    ("change", "where", "what"),
    [
        (
            lambda d: d.update(apiVersion="v1"),
            "document",
            "expected apiVersion sbomgate.dev/v1alpha1",
        ),
        (lambda d: d.update(kind="ClusterImagePolicy"), "document", "and kind TrustPolicy"),
        (lambda d: without(d, "metadata", "name"), "metadata.name", "is required"),
        (lambda d: d["metadata"].update(name=""), "metadata.name", "must be a non-empty string"),
        (lambda d: d.update(metadata=["x"]), "metadata", "must be a mapping"),
        (lambda d: without(d, "spec"), "spec", "must be a mapping"),
        (lambda d: d["spec"].update(image=["x/**"]), "spec", "unknown field 'image'"),
        (lambda d: d["spec"].update(images=[]), "spec.images", "must not be empty"),
        (
            lambda d: without(d, "spec", "images"),
            "spec.images",
            "must be a list of non-empty strings",
        ),
        (lambda d: d["spec"].update(images="registry.example/**"), "spec.images", "must be a list"),
        (lambda d: d["spec"].update(images=["a/*", ""]), "spec.images", "non-empty strings"),
        (
            lambda d: d["spec"].update(allowUnsigned="yes please"),
            "spec.allowUnsigned",
            "must be true or false",
        ),
        (
            lambda d: d["spec"].update(authorities=[]),
            "spec.authorities",
            "is empty: nothing could ever verify",
        ),
        (lambda d: without(d, "spec", "authorities"), "spec.authorities", "is empty"),
        (lambda d: d["spec"].update(authorities={}), "spec.authorities", "must be a list"),
        (lambda d: d["spec"].update(authorities="ci-key"), "spec.authorities", "must be a list"),
        (
            lambda d: d["spec"]["authorities"].append("k"),
            "spec.authorities[1]",
            "must be a mapping",
        ),
        (
            lambda d: d["spec"]["authorities"].append(dict(d["spec"]["authorities"][0])),
            "spec.authorities",
            "names must be unique",
        ),
        (
            lambda d: d["spec"]["authorities"][0].update(extra=1),
            "spec.authorities[0]",
            "unknown field 'extra'",
        ),
        (
            lambda d: without(d, "spec", "authorities", 0, "name"),
            "spec.authorities[0].name",
            "is required",
        ),
        (
            lambda d: without(d, "spec", "authorities", 0, "key"),
            "spec.authorities[0]",
            "needs exactly one of 'key' or 'keyless'",
        ),
        (
            lambda d: d["spec"]["authorities"][0].update(keyless={"identities": []}),
            "spec.authorities[0]",
            "needs exactly one of 'key' or 'keyless'",
        ),
        (
            lambda d: d["spec"]["authorities"][0].update(key="PEM"),
            "spec.authorities[0].key",
            "must be a mapping",
        ),
        (
            lambda d: d["spec"]["authorities"][0].update(key={}),
            "spec.authorities[0].key",
            "needs exactly one of 'data' or 'file'",
        ),
        (
            lambda d: d["spec"]["authorities"][0]["key"].update(file="k.pub"),
            "spec.authorities[0].key",
            "needs exactly one of 'data' or 'file'",
        ),
        (
            lambda d: d["spec"]["authorities"][0]["key"].update(path="k.pub"),
            "spec.authorities[0].key",
            "unknown field 'path'",
        ),
        (
            lambda d: d["spec"]["authorities"][0].update(key={"data": ""}),
            "spec.authorities[0].key.data",
            "must be a non-empty string",
        ),
        (
            lambda d: d["spec"]["authorities"][0].update(key={"data": "no pem here"}),
            "spec.authorities[0].key",
            "no PEM public key found",
        ),
        (
            lambda d: d["spec"]["authorities"][0].update(key={"file": "missing.pub"}),
            "spec.authorities[0].key.file",
            "cannot read",
        ),
        (
            lambda d: d["spec"]["authorities"][0].update(key={"file": 7}),
            "spec.authorities[0].key.file",
            "must be a non-empty string",
        ),
        (
            lambda d: d["spec"]["authorities"][0].update(
                key={"data": "-----BEGIN PRIVATE KEY-----\nMIIB\n-----END PRIVATE KEY-----"}
            ),
            "spec.authorities[0].key",
            "this is a private key",
        ),
        (
            lambda d: d["spec"].update(attestations=[{"name": "sbom"}]),
            "spec.attestations[0].predicateTypes",
            "must be a list of non-empty strings",
        ),
        (
            lambda d: d["spec"].update(attestations=[{"name": "sbom", "predicateTypes": []}]),
            "spec.attestations[0].predicateTypes",
            "must not be empty",
        ),
        (
            lambda d: d["spec"].update(
                attestations=[{"name": "s", "predicateTypes": ["spdx"], "predicates": 1}]
            ),
            "spec.attestations[0]",
            "unknown field 'predicates'",
        ),
        (
            lambda d: d["spec"].update(
                attestations=[{"name": "s", "predicateTypes": ["spdx"], "required": "no"}]
            ),
            "spec.attestations[0].required",
            "must be true or false",
        ),
        (
            lambda d: d["spec"].update(
                attestations=[{"name": "s", "predicateTypes": ["x"], "builderIds": "b"}]
            ),
            "spec.attestations[0].builderIds",
            "must be a list",
        ),
        (
            lambda d: d["spec"].update(attestations={"name": "sbom"}),
            "spec.attestations",
            "must be a list",
        ),
        (
            lambda d: d["spec"].update(attestations=[{"predicateTypes": ["spdx"]}]),
            "spec.attestations[0].name",
            "is required",
        ),
    ],
)
def test_refusals_name_file_and_field(
    tmp_path: Path, pem: str, change: Any, where: str, what: str
) -> None:
    doc = policy_doc(pem)
    change(doc)
    message = refusal(tmp_path, doc)
    assert f": {where}: " in message
    assert what in message


def test_refusal_inside_the_spec_names_the_policy(tmp_path: Path, pem: str) -> None:
    doc = policy_doc(pem, "prod")
    doc["spec"]["images"] = []
    message = refusal(tmp_path, doc)
    assert (
        message == f"{tmp_path / 'policy.yaml'} (TrustPolicy prod): spec.images: must not be empty"
    )


def test_refusal_in_a_later_document_names_it(tmp_path: Path, pem: str) -> None:
    bad = policy_doc(pem, "two")
    bad["kind"] = "Other"
    path = write(tmp_path / "p.yaml", policy_doc(pem, "one"), bad)
    with pytest.raises(TrustPolicyError, match=r"p\.yaml \(document 2\): document: expected"):
        load_trust_policies([path])


def keyless_doc(pem: str, identities: Any, **keyless: Any) -> dict[str, Any]:
    return policy_doc(
        pem, authorities=[{"name": "kl", "keyless": {"identities": identities, **keyless}}]
    )


@pytest.mark.parametrize(
    ("identities", "extra", "where", "what"),
    [
        (
            [{"subject": "a@b"}],
            {},
            "spec.authorities[0].keyless.identities[0]",
            "needs issuer or issuerRegExp",
        ),
        (
            [{"issuer": "https://i"}],
            {},
            "spec.authorities[0].keyless.identities[0]",
            "needs subject or subjectRegExp",
        ),
        (
            [{"issuer": "https://i", "subject": "s"}, {"issuerRegExp": ".*"}],
            {},
            "spec.authorities[0].keyless.identities[1]",
            "needs subject or subjectRegExp",
        ),
        (
            [{"issuer": "https://i", "subjectRegExp": "(unclosed"}],
            {},
            "spec.authorities[0].keyless.identities[0].subjectRegExp",
            "invalid regular expression",
        ),
        (
            [{"issuerRegExp": "[", "subject": "s"}],
            {},
            "spec.authorities[0].keyless.identities[0].issuerRegExp",
            "invalid regular expression",
        ),
        (
            [{"issuer": "https://i", "subject": "s", "email": "x"}],
            {},
            "spec.authorities[0].keyless.identities[0]",
            "unknown field 'email'",
        ),
        (
            [{"issuer": "", "subject": "s"}],
            {},
            "spec.authorities[0].keyless.identities[0].issuer",
            "must be a non-empty string",
        ),
        ([], {}, "spec.authorities[0].keyless.identities", "must be a non-empty list"),
        (None, {}, "spec.authorities[0].keyless.identities", "must be a non-empty list"),
        (["x"], {}, "spec.authorities[0].keyless.identities[0]", "must be a mapping"),
        (
            [{"issuer": "i", "subject": "s"}],
            {"rekor": True},
            "spec.authorities[0].keyless",
            "unknown field 'rekor'",
        ),
        (
            [{"issuer": "i", "subject": "s"}],
            {"trustedRoot": {"file": "nope.json"}},
            "spec.authorities[0].keyless.trustedRoot.file",
            "does not exist",
        ),
        (
            [{"issuer": "i", "subject": "s"}],
            {"trustedRoot": {}},
            "spec.authorities[0].keyless.trustedRoot",
            "needs 'file'",
        ),
        (
            [{"issuer": "i", "subject": "s"}],
            {"trustedRoot": {"file": None}},
            "spec.authorities[0].keyless.trustedRoot.file",
            "is required",
        ),
        (
            [{"issuer": "i", "subject": "s"}],
            {"trustedRoot": "root.json"},
            "spec.authorities[0].keyless.trustedRoot",
            "must be a mapping",
        ),
        (
            [{"issuer": "i", "subject": "s"}],
            {"trustedRoot": {"file": "root.json", "url": "https://x"}},
            "spec.authorities[0].keyless.trustedRoot",
            "unknown field 'url'",
        ),
    ],
)
def test_keyless_refusals(
    tmp_path: Path, pem: str, identities: Any, extra: dict[str, Any], where: str, what: str
) -> None:
    (tmp_path / "root.json").write_text("{}")
    message = refusal(tmp_path, keyless_doc(pem, identities, **extra))
    assert f": {where}: " in message
    assert what in message


def test_trusted_root_missing_next_to_the_policy(tmp_path: Path, pem: str) -> None:
    doc = keyless_doc(pem, [{"issuer": "i", "subject": "s"}], trustedRoot={"file": "root.json"})
    message = refusal(tmp_path, doc)
    assert str(tmp_path / "root.json") in message


@pytest.mark.parametrize(
    ("text", "what"),
    [
        ("spec: [unclosed\n", "invalid YAML at line"),
        ("- a\n- b\n", "document: must be a mapping"),
        ("just a string\n", "document: must be a mapping"),
    ],
)
def test_not_a_policy_document(tmp_path: Path, text: str, what: str) -> None:
    path = tmp_path / "p.yaml"
    path.write_text(text)
    with pytest.raises(TrustPolicyError) as caught:
        load_trust_policies([path])
    assert str(caught.value).startswith(str(path))
    assert what in str(caught.value)


def test_empty_inputs_are_refused(tmp_path: Path) -> None:
    (tmp_path / "empty.yaml").write_text("# nothing\n")
    with pytest.raises(
        TrustPolicyError, match=r"no TrustPolicy found in .*nothing can be admitted"
    ):
        load_trust_policies([tmp_path / "empty.yaml"])
    empty_dir = tmp_path / "dir"
    empty_dir.mkdir()
    with pytest.raises(TrustPolicyError, match="no TrustPolicy found"):
        load_trust_policies([empty_dir])


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(TrustPolicyError, match=r"missing\.yaml: cannot read trust policy"):
        load_trust_policies([tmp_path / "missing.yaml"])


def test_oversized_file(tmp_path: Path) -> None:
    path = tmp_path / "big.yaml"
    path.write_bytes(b"#" * ((1 << 20) + 1))
    with pytest.raises(TrustPolicyError, match="over 1 MiB"):
        load_trust_policies([path])


def test_duplicate_policy_names_name_both_places(tmp_path: Path, pem: str) -> None:
    first = write(tmp_path / "a.yaml", policy_doc(pem, "same"))
    second = write(tmp_path / "b.yaml", policy_doc(pem, "same"))
    with pytest.raises(TrustPolicyError) as caught:
        load_trust_policies([tmp_path])
    message = str(caught.value)
    assert message.startswith(
        f"{second}: metadata.name: TrustPolicy 'same' is defined more than once"
    )
    assert f"first in {first}" in message


def test_duplicate_names_within_one_file(tmp_path: Path, pem: str) -> None:
    path = write(tmp_path / "p.yaml", policy_doc(pem, "x"), policy_doc(pem, "x"))
    with pytest.raises(
        TrustPolicyError, match=r"\(document 2\): metadata.name: .*defined more than once"
    ):
        load_trust_policies([path])


# --- matching -----------------------------------------------------------------------------


def covering(*images: str) -> TrustPolicy:
    return TrustPolicy("p", images, (), (), allow_unsigned=True)


@pytest.mark.parametrize(
    ("pattern", "image", "covered"),
    [
        ("registry.example/**", "registry.example/a", True),
        ("registry.example/**", "registry.example/a/b/c", True),
        ("registry.example/**", "registry.example.evil.io/a", False),
        ("registry.example/**", "other.example/registry.example/a", False),
        ("ghcr.io/acme/*", "ghcr.io/acme/app", True),
        ("ghcr.io/acme/*", "ghcr.io/acme/team/app", False),
        ("ghcr.io/acme/*", "ghcr.io/acme", False),
        ("ghcr.io/*/app", "ghcr.io/acme/app", True),
        ("ghcr.io/**/app", "ghcr.io/a/b/app", True),
        ("ghcr.io/**/app", "ghcr.io/a/b/app2", False),
        ("ghcr.io/acme/app?", "ghcr.io/acme/app2", True),
        ("ghcr.io/acme/app?", "ghcr.io/acme/app/", False),
        ("GHCR.io/Acme/*", "ghcr.io/acme/app", True),
        ("ghcr.io/acme/*", "GHCR.IO/ACME/APP", True),
        ("docker.io/library/nginx", "docker.io/library/nginx", True),
        ("docker.io/library/nginx", "docker.io/library/nginx-x", False),
        ("registry.example/a", "registryXexample/a", False),  # "." is literal
        ("r.example/[abc]", "r.example/a", False),  # brackets are literal too
        ("r.example/[abc]", "r.example/[abc]", True),
        ("**", "anything/at/all", True),
    ],
)
def test_covers_glob_semantics(pattern: str, image: str, covered: bool) -> None:
    assert covering(pattern).covers(image) is covered
    assert (glob_to_regex(pattern).fullmatch(image) is not None) is covered


def test_covers_any_of_several_patterns() -> None:
    policy = covering("ghcr.io/acme/*", "docker.io/library/**")
    assert policy.covers("docker.io/library/nginx")
    assert policy.covers("ghcr.io/acme/app")
    assert not policy.covers("quay.io/acme/app")


@pytest.mark.parametrize(
    ("wanted", "actual", "matches"),
    [
        ("https://cyclonedx.org/bom", "https://cyclonedx.org/bom", True),
        ("https://cyclonedx.org/bom", "https://cyclonedx.org/bom/v1.6", True),
        ("https://cyclonedx.org/bom/", "https://cyclonedx.org/bom/v1.6", True),
        ("https://cyclonedx.org/bom", "https://cyclonedx.org/bomx", False),
        ("https://cyclonedx.org/bom", "https://cyclonedx.org/bo", False),
        ("https://cyclonedx.org/bom/v1.6", "https://cyclonedx.org/bom", False),
        ("https://spdx.dev/Document", "https://spdx.dev/Document/v2.3", True),
        ("https://spdx.dev/Document", "https://spdx.dev/document", False),
    ],
)
def test_predicate_matches(wanted: str, actual: str, matches: bool) -> None:
    assert predicate_matches(wanted, actual) is matches


def test_sbom_and_provenance_predicates() -> None:
    assert is_sbom_predicate("https://cyclonedx.org/bom")
    assert is_sbom_predicate("https://cyclonedx.org/bom/v1.5")
    assert is_sbom_predicate("https://spdx.dev/Document")
    assert not is_sbom_predicate("https://cyclonedx.org/bomx")
    assert not is_sbom_predicate("https://slsa.dev/provenance/v1")
    assert is_provenance_predicate("https://slsa.dev/provenance/v0.2")
    assert is_provenance_predicate("https://slsa.dev/provenance/v1")
    assert not is_provenance_predicate("https://slsa.dev/verification_summary/v1")


# --- keyless identities -------------------------------------------------------------------

GITHUB = "https://token.actions.githubusercontent.com"
WORKFLOW = "https://github.com/acme/app/.github/workflows/release.yml@refs/heads/main"


def test_exact_identity() -> None:
    identity = KeylessIdentity(GITHUB, None, WORKFLOW, None)
    assert identity.accepts(GITHUB, WORKFLOW)
    assert not identity.accepts(GITHUB, WORKFLOW + "x")
    assert not identity.accepts("https://accounts.google.com", WORKFLOW)
    assert not identity.accepts(None, WORKFLOW)
    assert not identity.accepts(GITHUB, None)
    assert identity.describe() == f"{WORKFLOW} from {GITHUB}"


def test_regexp_identity() -> None:
    identity = KeylessIdentity(
        None,
        r"^https://token\.actions\.githubusercontent\.com$",
        None,
        r"^https://github\.com/acme/",
    )
    assert identity.accepts(GITHUB, WORKFLOW)
    assert not identity.accepts(GITHUB, "https://github.com/evil/app/.github/workflows/x@main")
    assert not identity.accepts(GITHUB + ".evil.io", WORKFLOW)
    assert not identity.accepts(None, None)
    assert identity.describe() == (
        r"/^https://github\.com/acme// from /^https://token\.actions\.githubusercontent\.com$/"
    )


def test_exact_and_regexp_together_must_both_hold() -> None:
    identity = KeylessIdentity(GITHUB, r"githubusercontent", WORKFLOW, r"acme")
    assert identity.accepts(GITHUB, WORKFLOW)
    assert not KeylessIdentity(GITHUB, r"^nope", WORKFLOW, None).accepts(GITHUB, WORKFLOW)
    assert not KeylessIdentity(GITHUB, None, WORKFLOW, r"^nope").accepts(GITHUB, WORKFLOW)
