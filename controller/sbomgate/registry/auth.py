"""Registry credentials (docker config.json, Kubernetes pull secrets) and auth challenges."""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

from sbomgate.errors import InputError
from sbomgate.registry.reference import DOCKER_HUB

_DOCKER_HUB_KEYS = frozenset(
    {"docker.io", "index.docker.io", "registry-1.docker.io", "https://index.docker.io/v1/"}
)
# Top-level settings of a docker CLI config.json. A config without "auths" (only a credsStore,
# say) is read the legacy way, hosts at the top level, so these must not be taken for hosts.
_DOCKER_CLI_SETTINGS = frozenset(
    {
        "credsStore",
        "credHelpers",
        "HttpHeaders",
        "psFormat",
        "imagesFormat",
        "networksFormat",
        "pluginsFormat",
        "volumesFormat",
        "statsFormat",
        "detachKeys",
        "serviceInspectFormat",
        "servicesFormat",
        "tasksFormat",
        "secretFormat",
        "configFormat",
        "nodesFormat",
        "pruneFilters",
        "proxies",
        "experimental",
        "stackOrchestrator",
        "kubernetes",
        "currentContext",
        "cliPluginsExtraDirs",
        "plugins",
        "aliases",
        "features",
    }
)


@dataclass(frozen=True, slots=True)
class Credentials:
    """A username and password (or token) for one registry; never printed."""

    username: str
    password: str

    def basic_header(self) -> str:
        """The HTTP Basic `Authorization` header value."""
        raw = f"{self.username}:{self.password}".encode()
        return "Basic " + base64.b64encode(raw).decode("ascii")

    def __repr__(self) -> str:  # never print a password
        return f"Credentials(username={self.username!r}, password=***)"


def _normalise_key(key: str) -> str:
    if key in _DOCKER_HUB_KEYS:
        return DOCKER_HUB
    key = key.strip()
    for prefix in ("https://", "http://"):
        if key.startswith(prefix):
            key = key[len(prefix) :]
    key = key.split("/", 1)[0].lower()
    return DOCKER_HUB if key in _DOCKER_HUB_KEYS else key


class CredentialStore:
    """Credentials by registry host; later sources override earlier ones."""

    def __init__(self, entries: Mapping[str, Credentials] | None = None) -> None:
        self._by_host: dict[str, Credentials] = dict(entries or {})

    def for_registry(self, registry: str) -> Credentials | None:
        """The credentials for a registry host, if any."""
        return self._by_host.get(registry.lower())

    def hosts(self) -> list[str]:
        """The hosts with credentials, sorted."""
        return sorted(self._by_host)

    def add_docker_config(self, config: Any, source: str) -> None:
        """`{"auths": {host: {"auth": b64(user:pass)} | {"username", "password"}}}`.

        The legacy `.dockercfg` shape (hosts at the top level) is accepted too.
        """
        if not isinstance(config, dict):
            raise InputError(f"{source}: a docker config must be a JSON object")
        auths = config.get("auths", config if "auths" not in config else None)
        if not isinstance(auths, dict):
            raise InputError(f"{source}: 'auths' must be an object")
        for key, entry in auths.items():
            if key in _DOCKER_CLI_SETTINGS:
                continue
            if not isinstance(entry, dict):
                raise InputError(f"{source}: auths[{key!r}] must be an object")
            creds = _entry_credentials(entry, f"{source}: auths[{key!r}]")
            if creds is not None:
                self._by_host[_normalise_key(str(key))] = creds

    def add_docker_config_file(self, path: Path) -> None:
        """Add the logins of a docker config.json file; InputError when it cannot be read."""
        try:
            data = path.read_bytes()
        except OSError as exc:
            raise InputError(f"{path}: cannot read docker config: {exc.strerror or exc}") from None
        try:
            config = orjson.loads(data)
        except orjson.JSONDecodeError as exc:
            raise InputError(f"{path}: docker config is not JSON ({exc.msg})") from None
        self.add_docker_config(config, str(path))

    def add_pull_secret(self, secret: Mapping[str, Any]) -> None:
        """A Kubernetes Secret of type kubernetes.io/dockerconfigjson (or legacy dockercfg)."""
        meta = secret.get("metadata")
        if not isinstance(meta, Mapping):
            meta = {}
        name = f"secret {meta.get('namespace', '')}/{meta.get('name', '?')}".replace(" /", " ")
        data = secret.get("data") or {}
        if not isinstance(data, dict):
            raise InputError(f"{name}: data must be an object")
        for key in (".dockerconfigjson", ".dockercfg"):
            encoded = data.get(key)
            if encoded is None:
                continue
            try:
                config = orjson.loads(base64.b64decode(encoded, validate=True))
            except (binascii.Error, ValueError, TypeError):
                raise InputError(f"{name}: {key} is not base64-encoded JSON") from None
            self.add_docker_config(config, name)
            return
        raise InputError(f"{name}: no .dockerconfigjson in the secret's data")


def _entry_credentials(entry: Mapping[str, Any], where: str) -> Credentials | None:
    token = entry.get("identitytoken") or entry.get("registrytoken")
    if not isinstance(token, str):
        token = ""
    auth = entry.get("auth")
    if isinstance(auth, str) and auth:
        try:
            decoded = base64.b64decode(auth, validate=True).decode("utf-8")
        except (ValueError, UnicodeDecodeError):  # binascii.Error, or non-ASCII text
            raise InputError(f"{where}.auth is not base64 of 'user:password'") from None
        username, sep, password = decoded.partition(":")
        if not sep:
            raise InputError(f"{where}.auth does not decode to 'user:password'")
        if not password and token:
            # `docker login` with an identity token saves auth as "user:" beside the token.
            return Credentials(username or "<token>", token)
        return Credentials(username, password)
    user, secret = entry.get("username"), entry.get("password")
    if isinstance(user, str) and isinstance(secret, str) and (secret or not token):
        return Credentials(user, secret)
    if token:
        # Used as the password of the token request, as the distribution token spec allows.
        return Credentials(user if isinstance(user, str) and user else "<token>", token)
    return None


@dataclass(frozen=True, slots=True)
class Challenge:
    """A `WWW-Authenticate` challenge: its scheme and parameters."""

    scheme: str  # lowercased: "bearer" or "basic"
    params: Mapping[str, str]


# A bare value never contains a quote: an unterminated quoted value ends the parameters.
_PARAM = re.compile(r'\s*([A-Za-z0-9_.-]+)\s*=\s*(?:"((?:[^"\\]|\\.)*)"|([^,\s"]*))\s*(?:,|$)')


def parse_challenge(header: str) -> Challenge | None:
    """The first challenge of a WWW-Authenticate header (`Bearer realm="…",service="…"`)."""
    scheme, _, rest = header.strip().partition(" ")
    if not scheme:
        return None
    params: dict[str, str] = {}
    position = 0
    while position < len(rest):
        match = _PARAM.match(rest, position)
        if not match or match.end() == position:
            break
        quoted, bare = match.group(2), match.group(3)
        value = re.sub(r"\\(.)", r"\1", quoted) if quoted is not None else bare
        params[match.group(1).lower()] = value
        position = match.end()
    return Challenge(scheme.lower(), params)
