"""The policy engine: loading, metadata, precedence, terminal, actions, errors, semantics."""

from __future__ import annotations

import re
import threading
from dataclasses import replace
from pathlib import Path
from typing import Any

import orjson
import pytest

from sbomgate.errors import InputError, PolicyLoadError, SbomgateError
from sbomgate.output import json as json_output
from sbomgate.policy import Action, PolicyEngine, _regorus, load_policy, load_policy_dir
from sbomgate.policy.input import PackageFacts, build_input
from sbomgate.sbom import Component, JsonDocument, Sbom


def rego(body: str, *, meta: str = "") -> str:
    header = f"# METADATA\n{meta}" if meta else ""
    return (
        f"{header}package cloudsmith\n\nimport rego.v1\n\ndefault match := false\n\n"
        f"match if count(reason) > 0\n\n{body}\n"
    )


def write(tmp: Path, name: str, source: str) -> Path:
    path = tmp / name
    path.write_text(source)
    return path


def component(name: str, version: str = "1.0.0", fmt: str = "python", **kw: object) -> Component:
    purl_type = {"python": "pypi"}.get(fmt, fmt)
    return Component(
        name=name,
        version=version,
        purl=f"pkg:{purl_type}/{name}@{version}",
        purl_type=purl_type,
        format=fmt,
        **kw,  # type: ignore[arg-type]
    )


def sbom(*components: Component, subject: Component | None = None) -> Sbom:
    return Sbom(
        source="test.json",
        format="cyclonedx",
        spec_version="1.6",
        subject=subject,
        components=tuple(components),
        document={"bomFormat": "CycloneDX", "specVersion": "1.6", "components": []},
    )


DENY_EVIL = rego(
    'reason contains msg if {\n  input.v0.package.name == "evil"\n'
    '  msg := sprintf("%v is evil", [input.v0.package.name])\n}'
)


def test_metadata_defaults_and_custom_fields(tmp_path: Path) -> None:
    plain = load_policy(str(write(tmp_path, "plain.rego", DENY_EVIL)), DENY_EVIL)
    assert (plain.name, plain.title, plain.action, plain.precedence, plain.terminal) == (
        "plain",
        "plain",
        Action.DENY,
        100,
        False,
    )
    source = rego(
        "reason contains 1 if false",
        meta="# title: Evil things\n# description: no evil\n# custom:\n#   action: Warn\n"
        "#   precedence: 5\n#   terminal: true\n#   enabled: false\n",
    )
    custom = load_policy("custom.rego", source)
    assert (custom.title, custom.description, custom.action) == (
        "Evil things",
        "no evil",
        Action.WARN,
    )
    assert (custom.precedence, custom.terminal, custom.enabled) == (5, True, False)


@pytest.mark.parametrize(
    ("meta", "message"),
    [
        ("# custom:\n#   action: Block\n", "custom.action 'Block' is not one of"),
        ("# custom:\n#   precedence: high\n", "custom.precedence must be an integer"),
        ("# custom:\n#   terminal: yes please\n", "custom.terminal must be true or false"),
    ],
)
def test_bad_metadata_is_a_load_error_with_line(meta: str, message: str) -> None:
    with pytest.raises(PolicyLoadError) as info:
        load_policy("bad.rego", rego("reason contains 1 if false", meta=meta))
    assert message in str(info.value)
    assert str(info.value).startswith("bad.rego:3: ")


def test_parse_error_names_file_and_line() -> None:
    with pytest.raises(PolicyLoadError) as info:
        load_policy("broken.rego", "package cloudsmith\n\nmatch if {\n  input.x ==\n")
    assert str(info.value).startswith("broken.rego:")
    assert info.value.line is not None and info.value.line >= 3


@pytest.mark.parametrize(
    ("call", "message"),
    [
        ('net.cidr_overlap("10.0.0.0/8", "10.0.0.1")', "builtin net.cidr_overlap is not supported"),
        ('http.send({"method": "GET", "url": "http://169.254.169.254/"})', "http.send is disabled"),
        ('net.lookup_ip_addr("example.com")', "policies cannot reach the network"),
        ("providers.aws.sign_req({}, {}, 0)", "providers.aws.sign_req is disabled"),
        ("no_such.function(1)", "unknown function no_such.function"),
        # OPA's conformance runner registers it for its cases; `opa eval` refuses it, and a
        # policy must not hold up the webhook.
        ('test.sleep("1ms")', "unknown function test.sleep"),
        (  # as OPA 1.x refuses it (a Cloudsmith legacy recipe calls it)
            're_match(".*debug.*", input.v0.package.filename)',
            "re_match is a deprecated builtin that OPA 1.x no longer has: use regex.match",
        ),
    ],
)
def test_unavailable_builtins_are_refused_at_load_time(call: str, message: str) -> None:
    with pytest.raises(PolicyLoadError) as info:
        load_policy("net.rego", rego(f'reason contains "x" if {{\n  {call}\n}}'))
    assert message in str(info.value)
    assert info.value.line == 10


def test_json_patch_is_provided() -> None:
    policy = load_policy(
        "patch.rego",
        rego(
            'reason contains msg if {\n  p := json.patch({"a": 1}, [{"op": "add", "path": "/b", "value": 2}])\n'
            '  p.b == 2\n  msg := "patched"\n}'
        ),
    )
    verdict = PolicyEngine([policy]).evaluate_sbom(sbom(component("x")))
    # Once for the SBOM-level input and once for the component.
    assert [f.reasons for f in verdict.violations] == [("patched",), ("patched",)]


def test_match_without_reason_and_policy_without_match(tmp_path: Path) -> None:
    with pytest.raises(PolicyLoadError, match="has no `match` rule"):
        load_policy("nomatch.rego", "package cloudsmith\nreason := 1\n")
    src = 'package cloudsmith\nimport rego.v1\nmatch if input.v0.package.name == "evil"\n'
    policy = load_policy("bare.rego", src)
    verdict = PolicyEngine([policy]).evaluate_sbom(sbom(component("evil"), component("good")))
    assert [(f.name, f.reasons) for f in verdict.violations] == [("evil", ("bare",))]


def test_reason_as_set_and_as_object() -> None:
    as_set = load_policy("s.rego", DENY_EVIL)
    as_object = load_policy(
        "o.rego",
        rego('reason[msg] if {\n  input.v0.package.name == "evil"\n  msg := "object form"\n}'),
    )
    verdict = PolicyEngine([as_set, as_object]).evaluate_sbom(sbom(component("evil")))
    assert sorted(f.reasons for f in verdict.violations) == [("evil is evil",), ("object form",)]
    assert not verdict.allowed


def test_precedence_terminal_allow_and_actions() -> None:
    allow = load_policy(
        "allow.rego",
        rego(
            'reason contains "reviewed" if input.v0.package.name == "evil"',
            meta="# custom:\n#   action: Allow\n#   precedence: 1\n#   terminal: true\n",
        ),
    )
    deny = load_policy("deny.rego", DENY_EVIL)
    warn = load_policy(
        "warn.rego",
        rego(
            'reason contains "old" if input.v0.package.version == "0.1.0"',
            meta="# custom:\n#   action: Warn\n#   precedence: 200\n",
        ),
    )
    audit = load_policy(
        "audit.rego",
        rego(
            'reason contains "seen" if true',
            meta="# custom:\n#   action: Audit\n#   precedence: 300\n",
        ),
    )
    engine = PolicyEngine([warn, audit, deny, allow])
    assert [p.name for p in engine.policies] == ["allow", "deny", "warn", "audit"]
    verdict = engine.evaluate_sbom(sbom(component("evil"), component("old", "0.1.0")))
    # The Allow exemption is terminal: nothing later runs for `evil`.
    assert [(f.name, f.policy) for f in verdict.exemptions] == [("evil", "allow")]
    assert verdict.violations == ()
    assert [(f.name, f.reasons) for f in verdict.warnings] == [("old", ("old",))]
    assert {f.name for f in verdict.audits} == {"old", None}  # the subject-less SBOM input too
    assert verdict.allowed


def test_terminal_deny_stops_later_policies() -> None:
    first = load_policy(
        "first.rego",
        DENY_EVIL.replace(
            "package", "# METADATA\n# custom:\n#   terminal: true\n#   precedence: 1\npackage", 1
        ),
    )
    second = load_policy("second.rego", rego('reason contains "also" if true'))
    verdict = PolicyEngine([first, second]).evaluate_sbom(sbom(component("evil"), component("ok")))
    by_name = {(f.name, f.policy) for f in verdict.violations}
    assert ("evil", "first") in by_name and ("evil", "second") not in by_name
    assert ("ok", "second") in by_name


def test_quarantine_denies() -> None:
    policy = load_policy(
        "q.rego",
        DENY_EVIL.replace("package", "# METADATA\n# custom:\n#   action: Quarantine\npackage", 1),
    )
    verdict = PolicyEngine([policy]).evaluate_sbom(sbom(component("evil")))
    assert not verdict.allowed
    assert verdict.violations[0].action is Action.QUARANTINE


def test_disabled_policy_does_not_run() -> None:
    policy = load_policy(
        "off.rego",
        DENY_EVIL.replace("package", "# METADATA\n# custom:\n#   enabled: false\npackage", 1),
    )
    assert PolicyEngine([policy]).evaluate_sbom(sbom(component("evil"))).allowed


def test_evaluation_error_is_reported_and_denies() -> None:
    conflict = load_policy(
        "conflict.rego",
        rego('level := 1 if true\n\nlevel := 2 if true\n\nreason contains "x" if level == 1'),
    )
    fine = load_policy("fine.rego", DENY_EVIL)
    verdict = PolicyEngine([conflict, fine]).evaluate_sbom(sbom(component("good")))
    assert not verdict.allowed
    assert {e.policy for e in verdict.errors} == {"conflict"}
    assert "conflict" in verdict.errors[0].message
    assert json_output.document(verdict)["summary"]["errors"] == len(verdict.errors)


def test_builtin_errors_are_undefined_like_opa() -> None:
    """`some v in null`, `count(null)`, `to_number("x")`: that body is undefined, others still
    count, and no error is reported (OPA's non-strict builtin errors)."""
    policy = load_policy(
        "nulls.rego",
        rego(
            'reason contains "osv" if {\n  some v in input.v0.osv\n  startswith(v.id, "MAL-")\n}\n\n'
            'reason contains "count" if count(input.v0.osv) > 0\n\n'
            'reason contains "number" if to_number(input.v0.package.version) > 1\n\n'
            'reason contains "name" if input.v0.package.name == "evil"'
        ),
    )
    engine = PolicyEngine([policy])
    verdict = engine.evaluate_sbom(sbom(component("evil", "x.y"), component("good", "x.y")))
    assert verdict.errors == ()
    assert [(f.name, f.reasons) for f in verdict.violations] == [("evil", ("name",))]


def test_a_binding_that_cannot_evaluate_non_strict_is_refused(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """PyPI's gordon-to-regorus lacks set_strict_builtin_errors (the patched build has it): a
    policy is then not loaded at all, with what to do, rather than evaluated strictly (where
    one builtin's error fails a whole rule, and a `not` over it can flip to a match)."""

    patched = _regorus.regorus.Engine

    class Unpatched:  # the PyPI binding's Engine: the same, without the setting
        def __init__(self) -> None:
            self._engine = patched()

        def __getattr__(self, name: str) -> object:
            if name == "set_strict_builtin_errors":
                raise AttributeError(name)
            return getattr(self._engine, name)

    monkeypatch.setattr(_regorus.regorus, "Engine", Unpatched)
    with pytest.raises(SbomgateError, match=r"0\.13\.0\+sbomgate\.\d+.*make venv"):
        load_policy("deny.rego", DENY_EVIL)


def test_an_older_sbomgate_build_of_the_binding_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    """A binding built from an older patch has every setting, but reads numbers (and more) as
    regorus did: it is refused by its version, with what to do."""
    monkeypatch.setattr(_regorus.importlib.metadata, "version", lambda _: "0.13.0+sbomgate.17")
    _regorus._binding_is_current.cache_clear()
    try:
        with pytest.raises(
            SbomgateError, match=re.escape(_regorus.BINDING_VERSION) + ".*make venv"
        ):
            load_policy("deny.rego", DENY_EVIL)
    finally:
        _regorus._binding_is_current.cache_clear()


def test_rule_values_with_numbers_past_f64_and_64_bits_reach_python() -> None:
    """An integer past 64 bits is a Python int (it was "not an i64"); a number beyond f64's
    range is the float OPA's JSON reads (inf), also inside a set of objects, which Python gets
    from the rule's JSON (orjson refuses `1e400`; the standard library reads it)."""
    module = _regorus.analyse_module(
        "n.rego",
        "package n\n\nr := [1234567890123456789012, -2 * 1234567890123456789012, 1e300, 1e400]\n"
        's := {{"n": 1e400}, {"n": 1}}\n',
    )
    engine = _regorus.RegoEngine([module], {})
    assert engine.eval_rule("data.n.r") == [
        1234567890123456789012,
        -2469135780246913578024,
        1e300,
        float("inf"),
    ]
    assert sorted(engine.eval_rule("data.n.s"), key=str) == [{"n": 1}, {"n": float("inf")}]
    # past the 4,300 digits Python reads an int from: computed, it is an integer, not a float
    big = _regorus.analyse_module("b.rego", "package b\n\nr := 1e5000 + 1\n")
    assert _regorus.RegoEngine([big], {}).eval_rule("data.b.r") == 10**5000 + 1


def test_a_json_number_past_f64_cannot_be_forged_from_a_string() -> None:
    """JSON holding `1e400` is read again with each such number written as a marked string,
    then turned back into numbers. A string of the text's own that spells the mark (escapes
    can) makes that reading fail, undefined as before: it never becomes a number."""
    engine = _regorus.new_engine()
    forged = '{"a": 1e400, "b": "\\u0000\\u0073bomgate-number:5"}'
    query = f"x := json.unmarshal({orjson.dumps(forged).decode()})"
    assert engine.eval_query(query)["result"] == []
    plain = '{"a": 1e400, "b": "sbomgate-number:5"}'
    query = f"x := json.unmarshal({orjson.dumps(plain).decode()})"
    assert engine.eval_query(query)["result"][0]["bindings"]["x"] == {
        "a": float("inf"),
        "b": "sbomgate-number:5",
    }


def test_semver_compare_reads_semver_as_opa_and_anything_else_is_undefined() -> None:
    policy = load_policy(
        "h11.rego",
        rego(
            "reason contains msg if {\n  pkg := input.v0.package\n"
            '  semver.compare(pkg.version, "0.16.0") == -1\n'
            '  msg := sprintf("%v %v < 0.16.0", [pkg.name, pkg.version])\n}'
        ),
    )
    other = load_policy("other.rego", DENY_EVIL)
    verdict = PolicyEngine([policy, other]).evaluate_sbom(
        sbom(
            component("a", "0.15.2"),
            component("b", "v0.9.0"),  # OPA reads one leading `v`
            component("c", "0.16.1"),
            component("d", "0.15"),  # not SemVer: undefined, as in OPA
            component("e", "0.15.0-rc.01"),  # a leading zero: not SemVer either
            component("evil", "not-a-version"),
        )
    )
    assert verdict.errors == ()
    assert sorted((f.name, f.policy) for f in verdict.violations) == [
        ("a", "h11"),
        ("b", "h11"),
        ("evil", "other"),  # not-a-version: h11 is undefined, the other policy still ran
    ]


def test_input_has_every_key_with_nulls() -> None:
    document = build_input(component("x", license=None))
    v0 = document["v0"]
    assert set(v0) == {
        "package",
        "identity",
        "lists",
        "osv",
        "vulnerabilities",
        "repository",
        "sbom",
        "image_subject",
        "image",
        "workload",
    }
    assert v0["image_subject"] is False
    assert {k: list(v) for k, v in v0["lists"].items()} == {
        "allow": [],
        "blocklist": [],
        "quarantine": [],
    }
    assert v0["osv"] is None and v0["repository"] is None and v0["sbom"] is None
    assert v0["package"]["license"] is None
    assert v0["package"]["upstream_metadata"] == {
        "published_at": None,
        "first_published_at": None,
        "published_days_ago": None,
        "first_published_days_ago": None,
        "checksum_mismatch": None,
        "yanked": None,
    }
    assert v0["package"]["typosquat_of"] is None
    facts = PackageFacts(repository={"name": "pypi"}, published_at="2026-01-01T00:00:00Z", osv=())
    v0 = build_input(component("x", license="MIT", raw_license="MIT"), facts=facts)["v0"]
    assert v0["package"]["license"] == {
        "oss_license": {"spdx_identifier": "MIT"},
        "raw_license": "MIT",
        "spdx_terms": ["MIT"],
    }
    assert v0["osv"] == [] and v0["repository"] == {"name": "pypi"}


def test_subject_sees_the_whole_sbom_and_components_do_not() -> None:
    policy = load_policy(
        "image.rego",
        rego(
            'reason contains "image" if input.v0.sbom.bomFormat == "CycloneDX"\n\n'
            'reason contains "package" if input.v0.sbom == null'
        ),
    )
    verdict = PolicyEngine([policy]).evaluate_sbom(
        sbom(component("dep"), subject=component("app", fmt="docker"))
    )
    assert sorted((f.name, f.reasons, f.subject) for f in verdict.violations) == [
        ("app", ("image",), True),
        ("dep", ("package",), False),
    ]


def test_an_sbom_document_kept_as_json_reads_as_the_document() -> None:
    """An admission keeps the attested SBOM's document as its JSON text (JsonDocument): the
    policies that read input.v0.sbom see what they see of the decoded document."""
    policy = load_policy(
        "image.rego",
        rego(
            'reason contains sprintf("%s %d", [input.v0.sbom.bomFormat, '
            "count(input.v0.sbom.components)]) if input.v0.image_subject"
        ),
    )
    decoded = sbom(component("dep"), component("other"), subject=component("app", fmt="docker"))
    kept = replace(decoded, document=JsonDocument(orjson.dumps(decoded.document)))
    # As an admission keeps an attestation's: the statement's JSON, the predicate inside.
    statement = orjson.dumps({"_type": "x", "subject": [], "predicate": decoded.document})
    in_statement = replace(decoded, document=JsonDocument.in_statement(statement))
    for document in (kept.document, in_statement.document):
        assert dict(document) == decoded.document and len(document) == len(decoded.document)
    engine = PolicyEngine([policy])
    verdicts = [engine.evaluate_sbom(s, now_ns=0) for s in (decoded, kept, in_statement)]
    assert verdicts[0] == verdicts[1] == verdicts[2]
    assert [f.reasons for f in verdicts[1].violations] == [("CycloneDX 0",)]
    for other in (kept, in_statement):
        assert orjson.loads(orjson.dumps(build_input(other.subject, sbom=other))) == orjson.loads(
            orjson.dumps(build_input(decoded.subject, sbom=decoded))
        )
    fresh = JsonDocument.in_statement(statement)  # its text written when first asked for
    assert orjson.loads(fresh.json) == decoded.document


def test_only_the_policies_that_read_the_sbom_are_given_it() -> None:
    """The subject is evaluated without input.v0.sbom for the policies that cannot read it, and
    with it for those that may; in policy order, a terminal match of either kind stops the
    rest, as one evaluation with the whole SBOM would."""
    blind = load_policy(
        "blind.rego",
        rego(
            'reason contains "blind" if input.v0.image_subject == true',
            meta="# custom:\n#   precedence: 1\n",
        ),
    )
    reader = load_policy(
        "reader.rego",
        rego(
            'reason contains sprintf("%d in the SBOM", [count(input.v0.sbom.components)]) '
            "if input.v0.image_subject",
            meta="# custom:\n#   precedence: 2\n#   terminal: true\n",
        ),
    )
    whole = load_policy(
        "whole.rego",
        rego(
            'reason contains "whole" if input.v0.image_subject',
            meta="# custom:\n#   precedence: 3\n",
        ).replace("if input.v0.image_subject", "if {\n  v := input.v0\n  v.sbom.bomFormat\n}"),
    )
    late = load_policy(
        "late.rego", rego('reason contains "late" if true', meta="# custom:\n#   precedence: 4\n")
    )
    engine = PolicyEngine([late, whole, reader, blind])
    assert engine.sbom_readers == {"reader", "whole"}
    image = sbom(component("dep"), subject=component("app", fmt="docker"))
    verdict = engine.evaluate_sbom(image)
    subject = sorted((f.policy, f.reasons) for f in verdict.violations if f.subject)
    # `reader` matched (terminal): `whole` and `late` are after it.
    assert subject == [("blind", ("blind",)), ("reader", ("0 in the SBOM",))]
    # Packages: neither SBOM reader nor the flag matches; `late` does.
    assert sorted(f.policy for f in verdict.violations if not f.subject) == ["late"]
    # The same as evaluating the whole subject input with every policy, in one go.
    full = build_input(image.subject, sbom=image)
    outcomes = engine.evaluate_input(orjson.dumps(full).decode())
    assert [(o.policy.name, o.reasons) for o in outcomes if o.matched] == [
        ("blind", ("blind",)),
        ("reader", ("0 in the SBOM",)),
    ]


def test_engines_are_per_thread() -> None:
    engine = PolicyEngine([load_policy("t.rego", DENY_EVIL)])
    results: list[bool] = []
    threads = [
        threading.Thread(
            target=lambda: results.append(engine.evaluate_sbom(sbom(component("evil"))).allowed)
        )
        for _ in range(3)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert results == [False, False, False]
    assert engine.evaluate_sbom(sbom(component("good"))).allowed


def test_policy_dir_errors(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="policy directory not found"):
        load_policy_dir(tmp_path / "missing")
    with pytest.raises(InputError, match=r"no \.rego policies found"):
        load_policy_dir(tmp_path)
    write(tmp_path, "a.rego", DENY_EVIL)
    write(tmp_path, "a_test.rego", "package cloudsmith_test\n")
    assert [p.name for p in load_policy_dir(tmp_path)] == ["a"]


def test_bundled_policies_load(policies_dir: Path) -> None:
    loaded = load_policy_dir(policies_dir)
    assert len(loaded) >= 7
    assert [p.precedence for p in loaded] == sorted(p.precedence for p in loaded)


def _panic_type() -> type[BaseException]:
    """pyo3's PanicException, as regorus raises it: the real one, from a real panic (an engine
    used on a thread that did not make it)."""
    import regorus

    engine = regorus.Engine()
    caught: list[BaseException] = []

    def use() -> None:
        try:
            engine.eval_query("true")
        except BaseException as exc:  # PanicException derives from BaseException
            caught.append(exc)

    worker = threading.Thread(target=use)
    worker.start()
    worker.join()
    assert caught and type(caught[0]).__name__ == "PanicException"
    return type(caught[0])


def test_a_regorus_panic_fails_that_evaluation_only(monkeypatch: pytest.MonkeyPatch) -> None:
    """A panic inside regorus (a bug of its own, such as strings.count(x, "") before the
    patch) is that package's policy error, with a message, never a traceback or a crashed
    process; the engine is replaced and the next package is evaluated as usual."""
    panic = _panic_type()
    engine = PolicyEngine([load_policy("deny.rego", DENY_EVIL)])
    real = _regorus._rule_value

    def panics_on_evil(regorus_engine: Any, path: str, undefined: Any = None) -> Any:
        if '"evil"' in regorus_engine.eval_query_as_json("input.v0.package.name"):
            raise panic("window size must be non-zero")
        return real(regorus_engine, path, undefined)

    monkeypatch.setattr(_regorus, "_rule_value", panics_on_evil)
    verdict = engine.evaluate_sbom(sbom(component("evil"), component("good")))
    assert not verdict.allowed
    assert [(e.name, e.policy) for e in verdict.errors] == [("evil", "deny")]
    assert "regorus panicked: window size must be non-zero" in verdict.errors[0].message
    monkeypatch.setattr(_regorus, "_rule_value", real)
    verdict = engine.evaluate_sbom(sbom(component("evil"), component("good")))
    assert [(f.name, f.policy) for f in verdict.violations] == [("evil", "deny")]
    assert verdict.errors == ()


def test_a_keyword_may_begin_a_reference_as_in_opa() -> None:
    """OPA reads a keyword followed by `.` and a name as a reference (keywords in refs) at the
    start of a rule or a literal: `package.denied` and `default.reason(x)` are rules here.
    Elsewhere it is a parse error, in OPA as here."""
    policy = load_policy(
        "keywords.rego",
        rego(
            'package.denied := {"evil"}\n\nnot.checked := true\n\n'
            'default default.reason(_) := "is denied"\n\n'
            'default.reason(name) := "is evil" if name == "evil"\n\n'
            "reason contains msg if {\n"
            "  package.denied[input.v0.package.name]\n"
            "  not.checked\n"
            "  default.reason(input.v0.package.name) = why\n"
            '  msg := sprintf("%v %v", [input.v0.package.name, why])\n'
            "}"
        ),
    )
    verdict = PolicyEngine([policy]).evaluate_sbom(sbom(component("evil"), component("good")))
    assert [(f.name, f.reasons) for f in verdict.violations] == [("evil", ("evil is evil",))]
    assert verdict.errors == ()
    with pytest.raises(PolicyLoadError, match=r"keywords\.rego:9: unexpected keyword `package`"):
        load_policy("keywords.rego", rego("reason contains x if x := package.denied"))


def test_a_policy_error_leaves_no_engine_to_drop_on_another_thread(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import gc
    import sys

    (tmp_path / "conflict.rego").write_text(
        "package conflict\n\nimport rego.v1\n\n"
        "match := true if input.v0.package.name\n"
        "match := false if input.v0.package.version\n"
    )
    errors: list[str | None] = []

    def evaluate() -> None:
        # The engine and its regorus engines live only in this thread's frames and store.
        engine = PolicyEngine(load_policy_dir(tmp_path))
        document = '{"v0": {"package": {"name": "x", "version": "1"}}}'
        errors.extend(o.error for o in engine.evaluate_input(document))

    unraisable: list[str] = []
    monkeypatch.setattr(sys, "unraisablehook", lambda u: unraisable.append(str(u.exc_value)))
    worker = threading.Thread(target=evaluate)
    worker.start()
    worker.join()
    assert errors and errors[0]  # the policy failed: a RegoError was raised and caught
    gc.collect()  # a cycle holding the thread's engines would be collected here, off-thread
    assert not [u for u in unraisable if "unsendable" in u]


def test_reasons_that_are_objects_are_kept() -> None:
    """A set of objects is unhashable in Python: its values come as JSON, never as an
    undefined rule (they were lost: no reason, or a match on nothing)."""
    policy = load_policy(
        "objects.rego",
        rego(
            'reason contains {"msg": sprintf("%s is evil", [input.v0.package.name])} if {\n'
            '  input.v0.package.name == "evil"\n}'
        ),
    )
    verdict = PolicyEngine([policy]).evaluate_sbom(sbom(component("evil"), component("good")))
    assert [(f.name, f.reasons) for f in verdict.violations] == [
        ("evil", ('{"msg":"evil is evil"}',))
    ]


def test_an_object_key_with_two_values_is_an_error_as_in_opa() -> None:
    """OPA's eval_conflict_error, even in non-strict mode: never a quiet empty object (the
    package would have matched nothing, and been allowed)."""
    policy = load_policy(
        "keys.rego",
        rego(
            'reasons_by_name := {"evil": msg | msg := ["one", "two"][_]} if {\n'
            '  input.v0.package.name == "evil"\n}\n\n'
            "reason contains msg if msg := reasons_by_name[_]"
        ),
    )
    verdict = PolicyEngine([policy]).evaluate_sbom(sbom(component("evil"), component("good")))
    assert not verdict.allowed
    assert [(e.name, e.policy) for e in verdict.errors] == [("evil", "keys")]
    assert "generated multiple times" in verdict.errors[0].message


@pytest.mark.parametrize(
    "functions",
    [
        'default f(_) := "evil"\n\nreason contains f(1) if input.v0.package.name == "evil"',
        'g["h"](x) := x\n\nreason contains g.h("evil") if input.v0.package.name == "evil"',
    ],
    ids=["only a default", "a ref head"],
)
def test_functions_opa_accepts_load(functions: str) -> None:
    policy = load_policy("functions.rego", rego(functions))
    verdict = PolicyEngine([policy]).evaluate_sbom(sbom(component("evil"), component("good")))
    assert [(f.name, f.reasons) for f in verdict.violations] == [("evil", ("evil",))]


def test_a_template_string_may_be_a_function_argument() -> None:
    """`f($"{x}") := ...` as OPA reads it: a call matches where its argument is the template's
    text, the template's variables bound by the body, each body of an else chain its own (the
    patch's parser took the template for a pattern, which failed: "statements not scheduled")."""
    policy = load_policy(
        "args.rego",
        rego(
            'why($"{fmt}:{name}") := text if {\n'
            '  some [fmt, name, text] in [["python", "evil", "malware"]]\n'
            "}\n\n"
            'kind([$"{a}-{b}", _]) := "first" if [a, b] := ["x", "1"]\n'
            'else := "second" if [a, b] := ["y", "2"]\n\n'
            'reason contains why($"{input.v0.package.format}:{input.v0.package.name}")\n\n'
            'reason contains kind(["y-2", input.v0.package.name]) if input.v0.package.name == "ok"'
        ),
    )
    verdict = PolicyEngine([policy]).evaluate_sbom(sbom(component("evil"), component("ok")))
    assert sorted((f.name, f.reasons) for f in verdict.violations) == [
        ("evil", ("malware",)),
        ("ok", ("second",)),
    ]
    assert verdict.errors == ()


def test_an_unsafe_variable_is_a_load_error_as_in_opa() -> None:
    """A misspelt variable in a deny rule: OPA refuses the module; evaluated, the definition
    would only be undefined (a rule that never matches, so an allow)."""
    source = rego(
        'reason contains msg if {\n  input.v0.package.name == "evil"\n'
        '  msg := sprintf("%s is evil", [nmae])\n}'
    )
    with pytest.raises(PolicyLoadError) as caught:
        load_policy("typo.rego", source)
    assert "nmae" in str(caught.value) and "typo.rego:" in str(caught.value)


@pytest.mark.parametrize(
    "expression",
    ["1+" * 50_000 + "1", "input" + ".a" * 50_000, "-" * 50_000 + "x"],
    ids=["plus-chain", "ref-chain", "unary-chain"],
)
def test_a_policy_nested_too_deeply_is_refused_not_a_crash(expression: str) -> None:
    """regorus' parser and AST writer recurse a level at a time: on the caller's stack such a
    policy crashed the process (the webhook, when a PackagePolicy is validated)."""
    with pytest.raises(PolicyLoadError, match="nested too deeply"):
        load_policy("deep.rego", rego(f"reason contains x if {{\n  x := {expression}\n}}"))


def test_a_parse_error_on_the_deep_stack_leaves_no_engine_to_drop_elsewhere(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The parse runs on a thread of its own (_deepstack.py); its error reaches the caller
    without the frames that hold that thread's regorus engine."""
    import gc
    import sys

    unraisable: list[str] = []
    monkeypatch.setattr(sys, "unraisablehook", lambda u: unraisable.append(str(u.exc_value)))
    with pytest.raises(PolicyLoadError, match=r"broken\.rego"):
        load_policy("broken.rego", "package cloudsmith\n\nmatch if {\n  input.x ==\n")
    gc.collect()
    assert not [u for u in unraisable if "unsendable" in u]
