"""sbomgate's custom resources (group sbomgate.dev, v1alpha1) turned into engine inputs.

    PackagePolicy      -> Policy (Rego loaded and checked like a file; spec overrides METADATA)
    TrustPolicy        -> TrustPolicy (the same document as the YAML file; keys inline)
    PackageQuarantine  -> entries of data.sbomgate.quarantine ({purl, vers, reason})

Every conversion raises a SbomgateError whose message says what is wrong and where (line and
column for Rego), which is what the CRDs' validating webhook answers and what goes in status.
"""

from __future__ import annotations

import hashlib
import tempfile
from collections.abc import Mapping
from dataclasses import replace
from pathlib import Path
from typing import Any

from sbomgate.attest.trust import TrustPolicy, parse_trust_policy
from sbomgate.errors import InputError, TrustPolicyError
from sbomgate.identity import identity_from_purl
from sbomgate.intel.lists import check_quarantine_entry
from sbomgate.policy.loader import Action, Policy, load_policy

GROUP = "sbomgate.dev"
VERSION = "v1alpha1"
API_VERSION = f"{GROUP}/{VERSION}"
PACKAGE_POLICIES = "packagepolicies"
TRUST_POLICIES = "trustpolicies"
PACKAGE_QUARANTINES = "packagequarantines"
MAX_REGO_BYTES = 1 << 20


def _name(obj: Mapping[str, Any]) -> str:
    meta = obj.get("metadata") or {}
    name = meta.get("name") if isinstance(meta, Mapping) else None
    return str(name or meta.get("generateName", "?") if isinstance(meta, Mapping) else "?")


def _spec(obj: Mapping[str, Any], kind: str) -> Mapping[str, Any]:
    spec = obj.get("spec")
    if not isinstance(spec, Mapping):
        raise InputError(f"{kind} {_name(obj)}: spec must be an object")
    return spec


def package_policy(obj: Mapping[str, Any], rego: str | None = None) -> Policy:
    """A PackagePolicy as a loaded Policy. `rego` is the text of a configMapRef, if any."""
    name = _name(obj)
    spec = _spec(obj, "PackagePolicy")
    source = spec.get("rego") if rego is None else rego
    if not isinstance(source, str) or not source.strip():
        raise InputError(f"PackagePolicy {name}: spec.rego is empty")
    if len(source.encode()) > MAX_REGO_BYTES:
        raise InputError(f"PackagePolicy {name}: spec.rego is over 1 MiB")
    policy = load_policy(f"PackagePolicy/{name}", source)
    overrides: dict[str, Any] = {}
    if "action" in spec:
        try:
            overrides["action"] = Action(str(spec["action"]))
        except ValueError:
            allowed = ", ".join(a.value for a in Action)
            raise InputError(
                f"PackagePolicy {name}: spec.action {spec['action']!r} is not one of {allowed}"
            ) from None
    for key, kind in (("precedence", int), ("terminal", bool), ("enabled", bool)):
        if key in spec:
            value = spec[key]
            if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
                raise InputError(f"PackagePolicy {name}: spec.{key} must be {kind.__name__}")
            overrides[key] = value
    for key in ("title", "description"):
        if isinstance(spec.get(key), str) and spec[key]:
            overrides[key] = spec[key]
    scope = spec.get("scope")
    if scope is not None:
        overrides["scope"] = read_scope(scope, name)
    return replace(policy, **overrides)


def read_scope(scope: Any, name: str) -> Mapping[str, Any]:
    """A PackagePolicy's `spec.scope`, checked; InputError naming the policy otherwise."""
    if not isinstance(scope, Mapping):
        raise InputError(f"PackagePolicy {name}: spec.scope must be an object")
    out: dict[str, Any] = {}
    for key in ("namespaces", "images"):
        value = scope.get(key)
        if value is None:
            continue
        if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
            raise InputError(f"PackagePolicy {name}: spec.scope.{key} must be a list of strings")
        out[key] = tuple(value)
    selector = scope.get("namespaceSelector")
    if selector is not None:
        if not isinstance(selector, Mapping):
            raise InputError(
                f"PackagePolicy {name}: spec.scope.namespaceSelector must be an object"
            )
        out["namespaceSelector"] = dict(selector)
    return out


class _RootFiles:
    """TrustedRoot JSON given inline, written to files (sigstore-python reads files, when an
    image is first verified with them)."""

    def __init__(self, directory: Path | None = None) -> None:
        self.directory = directory or Path(tempfile.mkdtemp(prefix="sbomgate-trusted-roots-"))

    def path_for(self, data: str) -> str:
        path = self.directory / f"{hashlib.sha256(data.encode()).hexdigest()[:24]}.json"
        if not path.exists():
            path.write_text(data)
        return str(path)


_ROOTS: _RootFiles | None = None


def trust_policy(obj: Mapping[str, Any], *, check_only: bool = False) -> TrustPolicy:
    """A TrustPolicy resource; inline `trustedRoot.data` is written to a file for sigstore.

    `check_only` (`/validate-policy`) writes those files to a directory removed afterwards:
    reviews of resources never stored must not fill the disk."""
    if check_only:
        with tempfile.TemporaryDirectory(prefix="sbomgate-root-check-") as directory:
            return _trust_policy(obj, _RootFiles(Path(directory)))
    global _ROOTS
    if _ROOTS is None:
        _ROOTS = _RootFiles()
    return _trust_policy(obj, _ROOTS)


def _trust_policy(obj: Mapping[str, Any], roots: _RootFiles) -> TrustPolicy:
    name = _name(obj)
    spec = dict(_spec(obj, "TrustPolicy"))
    authorities = []
    raw_authorities = spec.get("authorities")
    if not isinstance(raw_authorities, list):
        raw_authorities = []  # parse_trust_policy reports the real problem
    for position, authority in enumerate(raw_authorities):
        keyless = authority.get("keyless") if isinstance(authority, Mapping) else None
        root = keyless.get("trustedRoot") if isinstance(keyless, Mapping) else None
        key = authority.get("key") if isinstance(authority, Mapping) else None
        for where, part in (("key", key), ("keyless.trustedRoot", root)):
            if isinstance(part, Mapping) and "file" in part:
                # Files are the webhook's own filesystem: a resource may not name them (and
                # the answer would tell whether a path exists).
                raise TrustPolicyError(
                    f"TrustPolicy {name}: spec.authorities[{position}].{where}.file is not "
                    f"accepted in a resource: give the {where.split('.')[-1]} inline as data"
                )
        if isinstance(root, Mapping) and "data" in root:
            data = root["data"]
            if not isinstance(data, str) or not data:
                raise TrustPolicyError(
                    f"TrustPolicy {name}: spec.authorities[{position}].keyless.trustedRoot.data "
                    "must be the TrustedRoot JSON"
                )
            assert isinstance(keyless, Mapping)
            authority = {
                **authority,
                "keyless": {**keyless, "trustedRoot": {"file": roots.path_for(data)}},
            }
        authorities.append(authority)
    if authorities:
        spec["authorities"] = authorities
    document = {
        "apiVersion": API_VERSION,
        "kind": "TrustPolicy",
        "metadata": {"name": name},
        "spec": spec,
    }
    return parse_trust_policy(document, f"TrustPolicy {name}")


def quarantine_entries(obj: Mapping[str, Any], now: str | None = None) -> list[dict[str, Any]]:
    """The unexpired entries of a PackageQuarantine, as the quarantine policy reads them."""
    name = _name(obj)
    entries = _spec(obj, "PackageQuarantine").get("entries")
    if not isinstance(entries, list):
        raise InputError(f"PackageQuarantine {name}: spec.entries must be a list")
    out = []
    for position, entry in enumerate(entries):
        if not isinstance(entry, Mapping) or not isinstance(entry.get("purl"), str):
            raise InputError(f"PackageQuarantine {name}: spec.entries[{position}] needs a purl")
        expires = entry.get("expiresAt")
        if now is not None and isinstance(expires, str) and expires <= now:
            continue  # RFC 3339 UTC strings compare in time order
        item: dict[str, Any] = {"purl": entry["purl"], "reason": entry.get("reason") or ""}
        if isinstance(entry.get("versions"), str) and entry["versions"]:
            item["vers"] = entry["versions"]
        item["source"] = f"PackageQuarantine {name}"
        # The entry as the quarantine list will read it: refused here, with the resource named,
        # rather than skipped there.
        check_quarantine_entry(item, f"PackageQuarantine {name}: spec.entries[{position}]")
        out.append(item)
    return out


def quarantine_name(purl: str) -> str:
    """One PackageQuarantine per package the Quarantine action records: a stable name, the
    same for every spelling of the package (canonical identity: `pkg:pypi/Idna` is `idna`, but
    npm's `JSONStream` is not `jsonstream`)."""
    try:
        key = repr(identity_from_purl(purl).key)
    except ValueError:
        key = purl
    return "auto-" + hashlib.sha256(key.encode()).hexdigest()[:20]
