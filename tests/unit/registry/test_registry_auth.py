"""Registry credentials from docker configs and pull secrets; WWW-Authenticate challenges."""

from __future__ import annotations

import base64
from pathlib import Path
from typing import Any

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sbomgate.errors import InputError
from sbomgate.registry.auth import Challenge, Credentials, CredentialStore, parse_challenge


def b64(text: str | bytes) -> str:
    raw = text.encode() if isinstance(text, str) else text
    return base64.b64encode(raw).decode("ascii")


def store_from(config: Any, source: str = "config.json") -> CredentialStore:
    store = CredentialStore()
    store.add_docker_config(config, source)
    return store


# --- docker config.json ------------------------------------------------------------------


def test_auth_field_is_base64_user_colon_password() -> None:
    store = store_from({"auths": {"ghcr.io": {"auth": b64("alice:s3cr:et")}}})
    assert store.for_registry("ghcr.io") == Credentials("alice", "s3cr:et")
    assert store.for_registry("GHCR.IO") == Credentials("alice", "s3cr:et")
    assert store.for_registry("quay.io") is None
    assert store.hosts() == ["ghcr.io"]


def test_username_and_password_fields() -> None:
    store = store_from({"auths": {"quay.io": {"username": "bob", "password": "pw"}}})
    assert store.for_registry("quay.io") == Credentials("bob", "pw")


def test_identity_token_alone_is_the_password_of_a_token_user() -> None:
    store = store_from({"auths": {"r.example": {"identitytoken": "tok-123"}}})
    assert store.for_registry("r.example") == Credentials("<token>", "tok-123")


def test_identity_token_saved_by_docker_login_beside_an_empty_password() -> None:
    # `docker login` with an identity token writes auth = base64("user:") and the token.
    entry = {"auth": b64("00000000-0000-0000-0000-000000000000:"), "identitytoken": "refresh"}
    store = store_from({"auths": {"acme.azurecr.io": entry}})
    assert store.for_registry("acme.azurecr.io") == Credentials(
        "00000000-0000-0000-0000-000000000000", "refresh"
    )


def test_password_wins_over_identity_token_when_both_are_given() -> None:
    entry = {"auth": b64("u:p"), "identitytoken": "tok"}
    assert store_from({"auths": {"h.example": entry}}).for_registry("h.example") == Credentials(
        "u", "p"
    )


def test_entry_without_credentials_is_skipped() -> None:
    store = store_from({"auths": {"ghcr.io": {}, "quay.io": {"email": "a@b"}}})
    assert store.hosts() == []


@pytest.mark.parametrize(
    "key",
    [
        "https://index.docker.io/v1/",
        "index.docker.io",
        "registry-1.docker.io",
        "docker.io",
        "https://registry-1.docker.io/v2/",
        "http://index.docker.io/v1/",
    ],
)
def test_docker_hub_keys_become_docker_io(key: str) -> None:
    store = store_from({"auths": {key: {"auth": b64("hub:pw")}}})
    assert store.hosts() == ["docker.io"]
    assert store.for_registry("docker.io") == Credentials("hub", "pw")


@pytest.mark.parametrize(
    ("key", "host"),
    [
        ("https://ghcr.io", "ghcr.io"),
        ("http://localhost:5000/v2/", "localhost:5000"),
        ("https://Registry.Example:8443/v1/", "registry.example:8443"),
        ("  quay.io  ", "quay.io"),
    ],
)
def test_schemes_and_paths_are_stripped_from_keys(key: str, host: str) -> None:
    assert store_from({"auths": {key: {"auth": b64("u:p")}}}).hosts() == [host]


def test_later_sources_override_earlier_ones() -> None:
    store = CredentialStore({"ghcr.io": Credentials("old", "1")})
    store.add_docker_config({"auths": {"ghcr.io": {"auth": b64("new:2")}}}, "a")
    assert store.for_registry("ghcr.io") == Credentials("new", "2")


def test_legacy_dockercfg_has_hosts_at_the_top_level() -> None:
    store = store_from({"https://index.docker.io/v1/": {"auth": b64("u:p"), "email": "x"}})
    assert store.for_registry("docker.io") == Credentials("u", "p")


def test_config_with_only_cli_settings_has_no_credentials() -> None:
    # A common ~/.docker/config.json: no "auths", only a credential helper and CLI settings.
    config = {
        "credsStore": "desktop",
        "credHelpers": {"gcr.io": "gcloud"},
        "currentContext": "desktop-linux",
        "plugins": {"debug": {"hooks": "exec"}},
        "detachKeys": "ctrl-e,e",
        "experimental": "enabled",
    }
    assert store_from(config).hosts() == []


def test_auths_and_cli_settings_together() -> None:
    config = {"auths": {"ghcr.io": {"auth": b64("u:p")}}, "credsStore": "desktop"}
    assert store_from(config).hosts() == ["ghcr.io"]


@pytest.mark.parametrize(
    ("config", "message"),
    [
        ([], "my.json: a docker config must be a JSON object"),
        ("x", "my.json: a docker config must be a JSON object"),
        ({"auths": []}, "my.json: 'auths' must be an object"),
        ({"auths": None}, "my.json: 'auths' must be an object"),
        ({"auths": {"ghcr.io": "u:p"}}, "my.json: auths['ghcr.io'] must be an object"),
        (
            {"auths": {"ghcr.io": {"auth": "not base64!"}}},
            "my.json: auths['ghcr.io'].auth is not base64 of 'user:password'",
        ),
        (
            {"auths": {"ghcr.io": {"auth": "é"}}},
            "my.json: auths['ghcr.io'].auth is not base64 of 'user:password'",
        ),
        (
            {"auths": {"ghcr.io": {"auth": b64(b"\xff\xfe:x")}}},
            "my.json: auths['ghcr.io'].auth is not base64 of 'user:password'",
        ),
        (
            {"auths": {"ghcr.io": {"auth": b64("nocolon")}}},
            "my.json: auths['ghcr.io'].auth does not decode to 'user:password'",
        ),
    ],
)
def test_bad_configs_name_the_source(config: Any, message: str) -> None:
    with pytest.raises(InputError) as caught:
        store_from(config, "my.json")
    assert str(caught.value) == message


def test_docker_config_file(tmp_path: Path) -> None:
    path = tmp_path / "config.json"
    path.write_bytes(orjson.dumps({"auths": {"ghcr.io": {"auth": b64("u:p")}}}))
    store = CredentialStore()
    store.add_docker_config_file(path)
    assert store.for_registry("ghcr.io") == Credentials("u", "p")


def test_docker_config_file_missing_or_not_json(tmp_path: Path) -> None:
    store = CredentialStore()
    missing = tmp_path / "nope.json"
    with pytest.raises(InputError, match=r"nope\.json: cannot read docker config"):
        store.add_docker_config_file(missing)
    broken = tmp_path / "broken.json"
    broken.write_text("{auths:")
    with pytest.raises(InputError, match=r"broken\.json: docker config is not JSON"):
        store.add_docker_config_file(broken)
    wrong = tmp_path / "wrong.json"
    wrong.write_text('{"auths": {"ghcr.io": {"auth": "%%%"}}}')
    with pytest.raises(InputError, match=r"wrong\.json: auths\['ghcr\.io'\]\.auth"):
        store.add_docker_config_file(wrong)


# --- Kubernetes pull secrets -------------------------------------------------------------


def secret(data: Any, name: str = "regcred", namespace: str | None = "apps") -> dict[str, Any]:
    meta: dict[str, Any] = {"name": name}
    if namespace is not None:
        meta["namespace"] = namespace
    return {"apiVersion": "v1", "kind": "Secret", "metadata": meta, "data": data}


def test_dockerconfigjson_pull_secret() -> None:
    config = {"auths": {"ghcr.io": {"username": "ci", "password": "pat"}}}
    store = CredentialStore()
    store.add_pull_secret(
        {
            **secret({".dockerconfigjson": b64(orjson.dumps(config))}),
            "type": "kubernetes.io/dockerconfigjson",
        }
    )
    assert store.for_registry("ghcr.io") == Credentials("ci", "pat")


def test_legacy_dockercfg_pull_secret() -> None:
    config = {"https://index.docker.io/v1/": {"auth": b64("hub:pw"), "email": "e@x"}}
    store = CredentialStore()
    store.add_pull_secret(
        {**secret({".dockercfg": b64(orjson.dumps(config))}), "type": "kubernetes.io/dockercfg"}
    )
    assert store.for_registry("docker.io") == Credentials("hub", "pw")


@pytest.mark.parametrize(
    ("bad", "message"),
    [
        (secret({}), "secret apps/regcred: no .dockerconfigjson in the secret's data"),
        (secret(None), "secret apps/regcred: no .dockerconfigjson in the secret's data"),
        (secret(["x"]), "secret apps/regcred: data must be an object"),
        (
            secret({".dockerconfigjson": "!!not base64!!"}),
            "secret apps/regcred: .dockerconfigjson is not base64-encoded JSON",
        ),
        (
            secret({".dockerconfigjson": b64("not json")}),
            "secret apps/regcred: .dockerconfigjson is not base64-encoded JSON",
        ),
        (
            secret({".dockerconfigjson": 42}),
            "secret apps/regcred: .dockerconfigjson is not base64-encoded JSON",
        ),
        (
            secret({".dockercfg": "é"}),
            "secret apps/regcred: .dockercfg is not base64-encoded JSON",
        ),
        (
            secret({".dockerconfigjson": b64('{"auths": {"ghcr.io": {"auth": "@@"}}}')}),
            "secret apps/regcred: auths['ghcr.io'].auth is not base64 of 'user:password'",
        ),
        (
            secret({".dockerconfigjson": b64("[1]")}),
            "secret apps/regcred: a docker config must be a JSON object",
        ),
        (secret({}, namespace=None), "secret regcred: no .dockerconfigjson"),
        ({"data": {}}, "secret ?: no .dockerconfigjson"),
        ({"metadata": "junk", "data": {}}, "secret ?: no .dockerconfigjson"),
    ],
)
def test_bad_pull_secrets_name_the_secret(bad: dict[str, Any], message: str) -> None:
    with pytest.raises(InputError) as caught:
        CredentialStore().add_pull_secret(bad)
    assert str(caught.value).startswith(message)


# --- Credentials --------------------------------------------------------------------------


def test_credentials_repr_hides_the_password() -> None:
    creds = Credentials("alice", "hunter2-very-secret")
    assert "hunter2" not in repr(creds)
    assert "alice" in repr(creds)
    assert "hunter2" not in repr(CredentialStore({"h": creds}).for_registry("h"))
    assert "hunter2" not in f"{[creds]}"


def test_basic_header() -> None:
    header = Credentials("alice", "pa:ss").basic_header()
    assert header == "Basic " + b64("alice:pa:ss")


# --- WWW-Authenticate ---------------------------------------------------------------------


def test_bearer_challenge_with_quoted_commas_and_escaped_quotes() -> None:
    header = (
        'Bearer realm="https://auth.example/token?a=1,b=2",service="registry.example",'
        'scope="repository:acme/app:pull,push", error="say \\"hi\\""'
    )
    assert parse_challenge(header) == Challenge(
        "bearer",
        {
            "realm": "https://auth.example/token?a=1,b=2",
            "service": "registry.example",
            "scope": "repository:acme/app:pull,push",
            "error": 'say "hi"',
        },
    )


def test_bearer_challenge_with_bare_values_and_spacing() -> None:
    challenge = parse_challenge('  BEARER   Realm = "https://a/t" ,  service=reg.example  ')
    assert challenge == Challenge("bearer", {"realm": "https://a/t", "service": "reg.example"})


def test_docker_hub_challenge() -> None:
    header = (
        'Bearer realm="https://auth.docker.io/token",service="registry.docker.io",'
        'scope="repository:library/nginx:pull"'
    )
    challenge = parse_challenge(header)
    assert challenge is not None
    assert challenge.params["scope"] == "repository:library/nginx:pull"


def test_basic_challenge() -> None:
    assert parse_challenge('Basic realm="Registry Realm"') == Challenge(
        "basic", {"realm": "Registry Realm"}
    )
    assert parse_challenge("Basic") == Challenge("basic", {})


def test_only_the_first_challenge_is_read() -> None:
    challenge = parse_challenge('Bearer realm="https://a/t", Basic realm="x"')
    assert challenge == Challenge("bearer", {"realm": "https://a/t"})


@pytest.mark.parametrize("header", ["", "   "])
def test_empty_header_is_no_challenge(header: str) -> None:
    assert parse_challenge(header) is None


@pytest.mark.parametrize("header", ["garbage", "!!! ???", '"quoted" realm', "Negotiate abc=="])
def test_garbage_is_not_a_usable_challenge(header: str) -> None:
    challenge = parse_challenge(header)
    assert challenge is None or (challenge.scheme not in ("bearer", "basic"))


def test_unterminated_quote_stops_parsing() -> None:
    challenge = parse_challenge('Bearer service="x",realm="https://a/t')
    assert challenge == Challenge("bearer", {"service": "x"})


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=200))
def test_parse_challenge_never_raises(header: str) -> None:
    challenge = parse_challenge(header)
    if challenge is not None:
        assert challenge.scheme == challenge.scheme.lower()
        assert all(isinstance(v, str) for v in challenge.params.values())
