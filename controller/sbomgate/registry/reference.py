"""Image references (`[host[:port]/]path[:tag][@digest]`), normalised the way Docker does.

References come from Pod specs, so they are attacker-controlled: the grammar is strict (no
userinfo, no schemes, no whitespace) and everything is checked before any use.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass
from functools import lru_cache

from sbomgate.errors import InputError

DOCKER_HUB = "docker.io"
_DOCKER_HUB_ALIASES = frozenset({"docker.io", "index.docker.io", "registry-1.docker.io"})
DOCKER_HUB_API_HOST = "registry-1.docker.io"

_PATH_COMPONENT = re.compile(r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*")
_TAG = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}")
_DIGEST = re.compile(r"(sha256:[0-9a-f]{64}|sha512:[0-9a-f]{128})")
_HOSTNAME = re.compile(
    r"(?:[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*"
)
_IPV6 = re.compile(r"\[[0-9A-Fa-f:.]+(?:%[A-Za-z0-9]+)?\]")
_PORT = re.compile(r"[0-9]{1,5}")
MAX_NAME_LENGTH = 255
# Whitespace (as str.isspace has it: `\s` is the same set) and control characters.
_UNSAFE = re.compile(r"[\s\x00-\x1f]")


def is_digest(value: str) -> bool:
    """True for a sha256 or sha512 digest in canonical form (`algorithm:hex`)."""
    return _DIGEST.fullmatch(value) is not None


@dataclass(frozen=True, slots=True)
class ImageReference:
    """A parsed image reference. `registry` is as Docker names it (docker.io, not registry-1)."""

    registry: str
    repository: str
    tag: str | None = None
    digest: str | None = None

    @property
    def api_host(self) -> str:
        """Where the distribution API is served for this registry."""
        return DOCKER_HUB_API_HOST if self.registry == DOCKER_HUB else self.registry

    @property
    def name(self) -> str:
        """`registry/repository`, without tag or digest."""
        return f"{self.registry}/{self.repository}"

    def with_digest(self, digest: str) -> ImageReference:
        """The same reference with `digest`."""
        return ImageReference(
            registry=self.registry, repository=self.repository, tag=self.tag, digest=digest
        )

    def __str__(self) -> str:
        out = self.name
        if self.tag:
            out += f":{self.tag}"
        if self.digest:
            out += f"@{self.digest}"
        return out

    @property
    def pinned(self) -> str:
        """`registry/repository@digest` (only meaningful once the digest is known)."""
        return f"{self.name}@{self.digest}" if self.digest else str(self)


def _bad(ref: str, why: str) -> InputError:
    shown = ref if len(ref) <= 200 else ref[:200] + "…"
    return InputError(f"invalid image reference {shown!r}: {why}")


def _is_host(first: str) -> bool:
    return "." in first or ":" in first or first == "localhost" or first.startswith("[")


def _is_ipv6(bracketed: str) -> bool:
    if not _IPV6.fullmatch(bracketed):
        return False
    try:
        ipaddress.IPv6Address(bracketed[1:-1])
    except ValueError:
        return False
    return True


def _check_host(ref: str, host: str) -> str:
    port = None
    name = host
    if host.startswith("["):
        end = host.find("]")
        if end < 0 or not _is_ipv6(host[: end + 1]):
            raise _bad(ref, f"bad IPv6 registry address {host!r}")
        rest = host[end + 1 :]
        if rest and not rest.startswith(":"):
            raise _bad(ref, f"bad registry address {host!r}")
        port = rest[1:] if rest else None
        name = host[: end + 1]
    elif ":" in host:
        name, port = host.rsplit(":", 1)
    if port is not None and (not _PORT.fullmatch(port) or not 0 < int(port) < 65536):
        raise _bad(ref, f"bad registry port {port!r}")
    if not name.startswith("[") and not _HOSTNAME.fullmatch(name):
        raise _bad(ref, f"bad registry host name {name!r}")
    return host.lower()


def parse_reference(ref: str) -> ImageReference:
    """Parse and normalise `ref`; raises InputError with the reason when it is not valid."""
    if not isinstance(ref, str) or not ref:
        raise _bad(str(ref), "empty")
    return _parse(ref)


@lru_cache(maxsize=4096)  # every review parses its references several times (pin, check, scope)
def _parse(ref: str) -> ImageReference:
    if len(ref) > 2 * MAX_NAME_LENGTH + 200:
        raise _bad(ref, "too long")
    if _UNSAFE.search(ref):
        raise _bad(ref, "contains whitespace or control characters")
    if "://" in ref:
        raise _bad(ref, "a reference has no scheme (drop the http:// or https://)")
    rest = ref
    digest = None
    if "@" in rest:
        rest, digest = rest.rsplit("@", 1)
        if "/" in digest:  # `user@host/repo`: a digest never contains a slash
            raise _bad(
                ref,
                "userinfo ('user@' before the registry) is not allowed; what follows '@' must "
                f"be a digest (bad digest {digest!r})",
            )
        if not _DIGEST.fullmatch(digest):
            raise _bad(ref, f"bad digest {digest!r} (expected sha256:<64 hex> or sha512:<128 hex>)")
        if "@" in rest:
            raise _bad(ref, "more than one '@' (userinfo is not allowed in a reference)")
    tag = None
    slash = rest.rfind("/")
    colon = rest.rfind(":")
    if colon > slash:
        rest, tag = rest[:colon], rest[colon + 1 :]
        if not _TAG.fullmatch(tag):
            raise _bad(ref, f"bad tag {tag!r}")
    first, _, path = rest.partition("/")
    if path and _is_host(first):
        registry = _check_host(ref, first)
    else:
        registry, path = DOCKER_HUB, rest
    if registry in _DOCKER_HUB_ALIASES:
        registry = DOCKER_HUB
        if "/" not in path:
            path = f"library/{path}"
    if not path:
        raise _bad(ref, "no repository name")
    for component in path.split("/"):
        if not _PATH_COMPONENT.fullmatch(component):
            raise _bad(
                ref,
                f"bad repository name component {component!r} "
                "(lowercase letters, digits and . _ - separators)",
            )
    if len(registry) + 1 + len(path) > MAX_NAME_LENGTH:
        raise _bad(ref, f"name longer than {MAX_NAME_LENGTH} characters")
    if tag is None and digest is None:
        tag = "latest"
    return ImageReference(registry=registry, repository=path, tag=tag, digest=digest)
