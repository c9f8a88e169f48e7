"""The SBOMs that syft, trivy, cyclonedx-py, cyclonedx-npm and cdxgen really write, over a real
Debian root filesystem, a real venv and a real Node project (tests/support/real_sboms.py makes
and caches them; `make sbom-tools sbom-targets` installs the tools and builds the targets).

For every (tool, target, format): sbomgate must read the file, and for every component what it
read must be what the tool wrote (tests/support/sbom_truth.py reads that side with json and
xml.etree alone):

- name: as written; an npm package's scope belongs to its name (`@scope/name`), from the group
  the tool wrote beside it (CycloneDX `group`) or from the purl when the format has no group; a
  namespace sbomgate keeps apart (GitHub's owner, maven's group) still counts as written;
- version: as written (the purl's when the document gives none);
- purl: the string written, or one with the same parts once percent-decoding, qualifier order
  and the type's own case rules are undone (the purl spec's canonical form). `%2F` inside a name
  is part of the name: decoding it turns one package into another;
- licence: the SPDX ids and expressions written, joined by AND, equal as SPDX expressions (ids
  are case-insensitive, a deprecated id is the one that replaced it); a trove classifier written
  beside an id says the same thing again and adds no licence. What is not on the SPDX list (a
  free-text name, a LicenseRef-, an id or exception a tool made up) is sbomgate's to resolve,
  but every listed id written must be kept and nothing may be lost to None;
- type: the component's type as written (library, application, operating-system, file, data,
  ...); and what the tool says is a file, data or a cryptographic asset is not judged as a
  package (`Sbom.others`), while a library, framework, application or untyped component is.

`pytest -s -k figures` prints, per tool and format, how many SBOMs, components, packages and
files there are (`FIGURE` lines), and each SBOM's count.
"""

from __future__ import annotations

import re
from collections import Counter, defaultdict, deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from functools import cache, lru_cache
from typing import Any
from urllib.parse import unquote

import orjson
import pytest
from license_expression import ExpressionError, get_spdx_licensing
from packaging.utils import canonicalize_name

from sbomgate.errors import SbomError
from sbomgate.sbom import (
    Component,
    JsonDocument,
    Sbom,
    load_sbom_file,
    parse_sbom,
    parse_sbom_decoded,
    parse_sbom_in_statement,
)
from support.real_sboms import TIMINGS, Output, outputs, pinned_versions, real_sbom, tool_version
from support.sbom_truth import CYCLONEDX_TYPES, Written, WrittenSbom, read_written
from support.spdx_license_list import read_list

OUTPUTS = outputs()
SHOWN = 25
CLASSIFIER = "License :: "
NOT_PACKAGES = {"file": "files", "data": "data", "cryptographic-asset": "other"}
SOFTWARE = {None, "library", "framework", "application"}
PACKAGE_TYPES = {
    None,
    "library",
    "framework",
    "application",
    "firmware",
    "device-driver",
    "install",
    "archive",
    "source",
}


@dataclass
class Reading:
    """One SBOM file as written and as sbomgate read it, its components paired."""

    output: Output
    written: WrittenSbom
    sbom: Sbom | None = None
    refused: str | None = None
    pairs: list[tuple[Written, Component]] = field(default_factory=list)
    missing: list[Written] = field(default_factory=list)
    extra: list[Component] = field(default_factory=list)
    judged: set[int] = field(default_factory=set)  # id() of the components judged as packages


@cache
def reading(output: Output) -> Reading:
    """Read once per session: the tool's file, by both sides."""
    path = real_sbom(output)
    result = Reading(output, read_written(path, output.kind))
    try:
        result.sbom = load_sbom_file(path)
    except SbomError as exc:
        result.refused = str(exc)
        return result
    _pair(result)
    return result


def _pair(result: Reading) -> None:
    """Pair written components with what sbomgate read (its packages, `components`, and the
    rest, `others`): by reference (bom-ref, SPDXID) first, then the rest in document order.
    SPDX files may be listed by sbomgate (apart from the packages) or not."""
    assert result.sbom is not None
    read = [*result.sbom.components, *result.sbom.others]
    result.judged = {id(c) for c in result.sbom.components}
    by_ref: dict[str | None, deque[int]] = defaultdict(deque)
    for i, component in enumerate(read):
        by_ref[component.bom_ref].append(i)
    used: set[int] = set()
    unpaired: list[Written] = []
    for w, required in [(w, True) for w in result.written.components] + [
        (f, False) for f in result.written.files
    ]:
        queue = by_ref.get(w.ref) if w.ref is not None else None
        if queue:
            i = queue.popleft()
            used.add(i)
            result.pairs.append((w, read[i]))
        elif required:
            unpaired.append(w)
    rest = [c for i, c in enumerate(read) if i not in used]
    result.pairs.extend(zip(unpaired, rest, strict=False))
    result.missing = unpaired[len(rest) :]
    result.extra = rest[len(unpaired) :]


def read_or_fail(output: Output) -> Reading:
    """The reading; the test fails when sbomgate refused the file."""
    result = reading(output)
    if result.refused is not None:
        w = result.written
        pytest.fail(
            f"sbomgate refused what {output.tool} wrote ({w.format} {w.spec}, "
            f"{len(w.components)} components): {result.refused}"
        )
    return result


def _label(w: Written) -> str:
    return f"{w.where} ({w.name!r})"


def _fail_on(problems: list[str], what: str, total: int) -> None:
    if problems:
        shown = "\n".join(problems[:SHOWN])
        more = f"\n... and {len(problems) - SHOWN} more" if len(problems) > SHOWN else ""
        pytest.fail(f"{len(problems)} of {total} components: {what} differs:\n{shown}{more}")


def _check_pairs(output: Output, what: str, check: Callable[[Written, Component], str | None]):
    result = read_or_fail(output)
    pairs = list(result.pairs)
    subject = result.sbom.subject if result.sbom is not None else None
    if result.written.subject is not None and subject is not None:
        pairs.insert(0, (result.written.subject, subject))
    problems = [f"{_label(w)}: {msg}" for w, c in pairs if (msg := check(w, c)) is not None]
    _fail_on(problems, what, len(pairs))


# What sbomgate must read, component by component.


def expected_name(w: Written) -> str | None:
    """The ecosystem's spelling of the name the tool wrote: an npm scope joins the name."""
    if w.name is None or w.purl is None or not w.purl.startswith("pkg:npm/"):
        return w.name
    if w.name.startswith("@"):
        return w.name
    scope = w.group or _purl_parts(w.purl).namespace
    if scope:
        return f"{scope}/{w.name}"
    return w.name


def check_name(w: Written, c: Component) -> str | None:
    """The name as written (a namespace that sbomgate keeps apart, as it does for maven's
    group and GitHub's owner, is still part of it)."""
    expected = expected_name(w)
    if c.name == expected or (c.namespace and f"{c.namespace}/{c.name}" == expected):
        return None
    # PyPI names are compared in their PEP 503 form, the one sbomgate gives (the purl spec
    # says so for pypi purls: `PyYAML` is `pkg:pypi/pyyaml`); the tool's spelling stays in the
    # document policies see.
    if c.purl_type == "pypi" and canonicalize_name(expected) == c.name:
        return None
    return f"wrote {expected!r}, read {c.name!r}" + (
        f" (namespace {c.namespace!r})" if c.namespace else ""
    )


def check_version(w: Written, c: Component) -> str | None:
    """The version as written (the purl's when the document has none)."""
    expected = w.version
    if expected is None and w.purl is not None:
        expected = _purl_parts(w.purl).version
    return None if c.version == expected else f"wrote {expected!r}, read {c.version!r}"


@dataclass(frozen=True)
class PurlParts:
    """A purl taken apart as the purl spec says, each part percent-decoded on its own."""

    type: str
    namespace: str | None
    name: str
    version: str | None
    qualifiers: tuple[tuple[str, str], ...]
    subpath: str | None


@lru_cache(maxsize=100_000)
def _purl_parts(purl: str) -> PurlParts:
    rest, _, subpath = purl.partition("#")
    rest, _, query = rest.partition("?")
    scheme, _, rest = rest.partition(":")
    assert scheme.lower() == "pkg", purl
    kind, _, rest = rest.lstrip("/").partition("/")
    version: str | None = None
    if "@" in rest:
        rest, _, version = rest.rpartition("@")
        version = unquote(version)
    segments = [s for s in rest.split("/") if s]  # split before decoding: %2F stays in a segment
    name = unquote(segments[-1])
    namespace = "/".join(unquote(s) for s in segments[:-1]) or None
    kind = kind.lower()
    if kind == "pypi":
        name = re.sub(r"[-_.]+", "-", name).lower()
    elif kind in ("github", "bitbucket"):
        name, namespace = name.lower(), namespace.lower() if namespace else None
    qualifiers = []
    for pair in query.split("&") if query else ():
        key, _, value = pair.partition("=")
        if value:
            qualifiers.append((key.lower(), unquote(value)))
    sub = "/".join(unquote(s) for s in subpath.strip("/").split("/") if s not in ("", ".", ".."))
    return PurlParts(kind, namespace, name, version, tuple(sorted(qualifiers)), sub or None)


def check_purl(w: Written, c: Component) -> str | None:
    """The purl as written, or its canonical form: the same parts."""
    if c.purl == w.purl:
        return None
    if c.purl is not None and w.purl is not None and _purl_parts(c.purl) == _purl_parts(w.purl):
        return None
    return f"wrote {w.purl!r}, read {c.purl!r}"


# SPDX's own list decides equivalence: ids are case-insensitive, and a deprecated id is the id
# that replaced it (BSD-2-Clause-NetBSD is BSD-2-Clause). LicenseRef-s are kept as they are.
_licensing = get_spdx_licensing()


@cache
def _listed() -> frozenset[str]:
    """The SPDX License List's licence and exception ids (lower-cased)."""
    _, licences, exceptions = read_list()
    return frozenset(i.lower() for i, _ in [*licences, *exceptions])


@lru_cache(maxsize=100_000)
def _parsed(expression: str) -> object:
    """An expression parsed for comparison (SPDX ids are case-insensitive); the text itself
    when license-expression cannot parse it."""
    try:
        return _licensing.parse(expression, validate=False).simplify()
    except ExpressionError:
        return expression.lower()


@lru_cache(maxsize=100_000)
def _keys(expression: str) -> frozenset[str]:
    try:
        parsed = _licensing.parse(expression, validate=False)
        return frozenset(k.lower() for k in _licensing.license_keys(parsed, unique=True))
    except ExpressionError:
        return frozenset({expression.lower()})


def _terms(licenses: Iterable[tuple[str, str]]) -> tuple[list[str], list[str]]:
    """(SPDX ids and expressions, free-text names) of what the tool wrote; a trove classifier
    beside an id or expression repeats it."""
    spdx = [text.strip() for kind, text in licenses if kind in ("id", "expression")]
    names = [text.strip() for kind, text in licenses if kind == "name"]
    if spdx:
        names = [n for n in names if not n.startswith(CLASSIFIER)]
    return spdx, names


def _licence_problem(licenses: tuple[tuple[str, str], ...], c: Component) -> str | None:
    spdx, names = _terms(licenses)
    read = c.license
    said = f"read {read!r}" + (f" (error: {c.license_error})" if c.license_error else "")
    if not spdx and not names:
        return None if read is None else f"wrote no licence, {said}"
    if read is None:
        return f"wrote {[*spdx, *names]!r}, {said}"
    written = {k for term in spdx for k in _keys(term)}
    unlisted = written - _listed()
    if names or unlisted:
        # Names, LicenseRef-s and ids that are not on the SPDX list are sbomgate's to resolve
        # (syft's SPDX writes the licence its CycloneDX names `Expat` as LicenseRef-Expat;
        # cdxgen writes Debian's `BSD-3-clause-Cambridge` and `WITH Bison-exception` as if
        # they were SPDX): the listed ids written must all be there.
        lost = written - unlisted - _keys(read)
        return f"wrote {[*spdx, *names]!r}, {said}: lost {sorted(lost)}" if lost else None
    expected = " AND ".join(
        f"({term})" if " " in term and not term.startswith("(") else term for term in spdx
    )
    if _parsed(read) == _parsed(expected):
        return None
    return f"wrote {expected!r}, {said}"


def check_licence(w: Written, c: Component) -> str | None:
    """The licences as written (for cdxgen's SPDX 3, in SPDX terms, or else its extension)."""
    problem = _licence_problem(w.licenses, c)
    if (
        problem is not None
        and not w.licenses
        and w.extension_licenses
        and (c.license is None or _licence_problem(w.extension_licenses, c) is None)
    ):
        return None
    return problem


def written_type(w: Written) -> str | None:
    """The type the tool wrote (cdxgen's SPDX 3: in its extension when SPDX has none)."""
    return w.type or w.extension_type


def check_type(w: Written, c: Component) -> str | None:
    """The type as written; where the document says none, anything but a file. An SPDX 2
    purpose that CycloneDX has no type for (source, archive, install, other) may read as
    none."""
    kind = written_type(w)
    if kind is None:
        return None if c.type != "file" else "wrote no type (a package), read 'file'"
    if c.type == kind or (c.type is None and kind not in CYCLONEDX_TYPES):
        return None
    return f"wrote {kind!r}, read {c.type!r}"


# The tests.


def _ids(output: Output) -> str:
    return output.id


@pytest.mark.parametrize("output", OUTPUTS, ids=_ids)
def test_reads(output: Output) -> None:
    """sbomgate reads the file: its format, spec version, subject and every component."""
    result = read_or_fail(output)
    assert result.sbom is not None
    w = result.written
    assert (result.sbom.format, result.sbom.spec_version) == (w.format, w.spec)
    if w.subject is None:
        assert result.sbom.subject is None, "the document has no subject"
    else:
        assert result.sbom.subject is not None, f"the subject {w.subject.name!r} was not read"
    problems = [f"not read: {_label(w)} {w.type} {w.purl}" for w in result.missing] + [
        f"not in the document: {c.name!r} {c.purl}" for c in result.extra
    ]
    _fail_on(problems, "the list of components", len(w.components))


@pytest.mark.parametrize("output", OUTPUTS, ids=_ids)
def test_names(output: Output) -> None:
    """Each name as written."""
    _check_pairs(output, "the name", check_name)


@pytest.mark.parametrize("output", OUTPUTS, ids=_ids)
def test_versions(output: Output) -> None:
    """Each version as written."""
    _check_pairs(output, "the version", check_version)


@pytest.mark.parametrize("output", OUTPUTS, ids=_ids)
def test_purls(output: Output) -> None:
    """Each purl as written (or its canonical form)."""
    _check_pairs(output, "the purl", check_purl)


@pytest.mark.parametrize("output", OUTPUTS, ids=_ids)
def test_licences(output: Output) -> None:
    """Each component's licences as written."""
    _check_pairs(output, "the licence", check_licence)


@pytest.mark.parametrize("output", OUTPUTS, ids=_ids)
def test_types(output: Output) -> None:
    """Each component's type as written."""
    _check_pairs(output, "the type", check_type)


@pytest.mark.parametrize("output", OUTPUTS, ids=_ids)
def test_packages(output: Output) -> None:
    """What the tool says is a file, data or a cryptographic asset is not judged as a package
    (sbomgate keeps it in `Sbom.others`); a library, framework or application is, and so is a
    component of no stated type."""
    result = read_or_fail(output)
    problems = []
    for w, c in result.pairs:
        judged = id(c) in result.judged
        kind = written_type(w)
        if kind in NOT_PACKAGES and judged:
            problems.append(f"{_label(w)}: a {kind} ({w.purl}), judged as a package")
        elif kind in SOFTWARE and not judged and not _file_of_a_listed_package(w, result):
            problems.append(f"{_label(w)}: a {kind or 'component'} ({w.purl}), not judged")
    _fail_on(problems, "whether it is judged as a package", len(result.pairs))


def _file_of_a_listed_package(w: Written, result: Reading) -> bool:
    """syft's entries for the Windows launchers in pip and setuptools (no purl, found under
    `site-packages/<a PyPI package the same SBOM lists>/`) are files of that package
    (sbomgate.sbom.containment)."""
    listed = {
        c.name.lower()
        for c in result.written.components
        if c.purl and c.purl.startswith("pkg:pypi/") and c.name
    }
    inside = [re.search(r"/site-packages/([^/]+)/.", path) for path in w.locations]
    return (
        w.purl is None
        and bool(inside)
        and all(m is not None and m.group(1).lower() in listed for m in inside)
    )


def _category(kind: str | None) -> str:
    if kind in NOT_PACKAGES:
        return NOT_PACKAGES[kind]
    return "packages" if kind in PACKAGE_TYPES else "other"


KINDS = ("packages", "files", "data", "other")


def _counts(counter: Counter[str]) -> str:
    return ", ".join(f"{counter[k]} {k}" for k in KINDS)


def test_figures() -> None:
    """FIGURE lines: the tools' versions; per tool and format, the SBOMs and their components
    (packages, files, data, other) as written and as sbomgate split them (judged as packages,
    kept apart); then each SBOM's own counts."""
    versions = {tool: tool_version(tool) for tool in pinned_versions()}
    print("\nFIGURE tools: " + ", ".join(f"{t} {v}" for t, v in versions.items()))
    rows: dict[tuple[str, str], Counter[str]] = defaultdict(Counter)
    read_rows: dict[tuple[str, str], Counter[str]] = defaultdict(Counter)
    lines: list[str] = []
    for output in OUTPUTS:
        result = reading(output)
        w = result.written
        written = Counter(_category(written_type(c)) for c in w.components)
        written["files"] += len(w.files)
        row = rows[(output.tool, output.format)]
        row.update(written)
        row["sboms"] += 1
        line = f"FIGURE {output.id} ({w.format} {w.spec}): {written.total()} components ({_counts(written)})"
        if result.sbom is None:
            lines.append(f"{line}; sbomgate refused it")
            continue
        row["read"] += 1
        read = read_rows[(output.tool, output.format)]
        read["judged"] += len(result.sbom.components)
        apart = Counter(_category(c.type) for c in result.sbom.others)
        read.update(apart)
        lines.append(
            f"{line}; sbomgate: {len(result.sbom.components)} judged as packages, "
            f"{len(result.sbom.others)} apart ({_counts(apart)})"
        )
    for key, row in rows.items():
        read = read_rows[key]
        sboms = row.pop("sboms")
        done = row.pop("read", 0)
        print(
            f"FIGURE {' '.join(key)}: {sboms} SBOMs, {row.total()} components ({_counts(row)}); "
            f"sbomgate read {done} of {sboms}: {read.pop('judged', 0)} judged as packages, "
            f"{read.total()} apart ({_counts(read)})"
        )
    print("\n".join(lines))
    for run, seconds in TIMINGS.items():
        print(f"FIGURE made {run} in {seconds:.1f} s")
    assert sum(row["sboms"] for row in rows.values()) == 0  # each was counted, then popped


SPDX_JSON = [o for o in OUTPUTS if o.kind == "spdx-json"]


@pytest.mark.parametrize("output", SPDX_JSON, ids=_ids)
def test_spdx_json_streamed_reads_as_parsed_whole(
    output: Output, monkeypatch: pytest.MonkeyPatch
) -> None:
    """What syft and trivy write is read the same streamed (as documents of 16 MiB and more
    are: files[] read past) as parsed whole."""
    from sbomgate.sbom import parse as parse_module

    path = real_sbom(output)
    whole = load_sbom_file(path)
    monkeypatch.setattr(parse_module, "STREAM_FROM_BYTES", 0)
    streamed = load_sbom_file(path)
    assert streamed == whole
    assert len(streamed.components) == len(whole.components) > 0


@pytest.mark.parametrize("output", [o for o in OUTPUTS if o.kind == "spdx-tag-value"], ids=_ids)
def test_tag_value_reads_as_the_same_runs_json(output: Output) -> None:
    """syft writes both encodings in one run: they read as the same packages."""
    [json_output] = [o for o in SPDX_JSON if (o.tool, o.target) == (output.tool, output.target)]
    as_tag_value = load_sbom_file(real_sbom(output))
    as_json = load_sbom_file(real_sbom(json_output))

    def read(sbom: Sbom) -> list[Component]:
        # syft draws its SPDXIDs' suffixes afresh for each encoding, and orders packages
        # differently in each: all else must agree
        return sorted((replace(c, bom_ref=None) for c in sbom.components), key=repr)

    assert read(as_tag_value) == read(as_json)
    assert len(as_json.components) > 0


@pytest.mark.parametrize(
    "output", [o for o in OUTPUTS if o.kind in ("cyclonedx-json", "spdx-json")], ids=_ids
)
def test_a_decoded_predicate_reads_as_its_bytes(output: Output) -> None:
    """An attestation's SBOM is read from the predicate its statement decoded
    (`parse_sbom_decoded`), and later from the bytes kept in the cache (`parse_sbom`): the
    same SBOM both ways, twice (the second time from the parser's remembered components)."""
    document = orjson.loads(real_sbom(output).read_bytes())
    raw = orjson.dumps(document)
    from_bytes = parse_sbom(raw, source="kept")
    for _ in range(2):
        assert parse_sbom_decoded(document, raw, source="kept") == from_bytes
    assert len(from_bytes.components) > 0


def test_a_decoded_predicate_is_checked_as_bytes_are() -> None:
    """The limits hold for a decoded predicate: too many values, too deep, not an SBOM."""
    deep: Any = {"bomFormat": "CycloneDX", "specVersion": "1.6", "components": []}
    inner = deep
    for _ in range(200):
        inner["x"] = {}
        inner = inner["x"]
    cases = [deep, {"hello": "world"}, [1, 2], "text"]
    for case in cases:
        raw = case.encode() if isinstance(case, str) else orjson.dumps(case)
        with pytest.raises(SbomError) as decoded:
            parse_sbom_decoded(case, raw, source="p")
        with pytest.raises(SbomError) as from_bytes:
            parse_sbom(raw, source="p")
        assert decoded.value.message == from_bytes.value.message


def _statement(predicate: Any) -> bytes:
    """An in-toto statement as cosign writes one, around `predicate`."""
    return orjson.dumps(
        {
            "_type": "https://in-toto.io/Statement/v1",
            "subject": [{"name": "img", "digest": {"sha256": "1" * 64}}],
            "predicateType": "https://cyclonedx.org/bom",
            "predicate": predicate,
        }
    )


@pytest.mark.parametrize(
    "output", [o for o in OUTPUTS if o.kind in ("cyclonedx-json", "spdx-json")], ids=_ids
)
def test_a_predicate_read_with_its_statement_reads_as_its_bytes(output: Output) -> None:
    """An attestation's SBOM checked on the verified statement's bytes
    (`parse_sbom_in_statement`, what the cache keeps) is the SBOM its predicate's own bytes
    give, and its document is the predicate: decoded, and as JSON text when asked for."""
    document = orjson.loads(real_sbom(output).read_bytes())
    payload = _statement(document)
    predicate = orjson.loads(payload)["predicate"]
    from_bytes = parse_sbom(orjson.dumps(document), source="kept")
    in_statement = parse_sbom_in_statement(predicate, payload, source="kept")
    assert replace(in_statement, document={}) == replace(from_bytes, document={})
    assert len(in_statement.components) > 0
    if in_statement.format == "cyclonedx":  # SPDX is converted: kept as it was made
        assert type(in_statement.document) is JsonDocument
        assert dict(in_statement.document) == document
        assert orjson.loads(in_statement.document.json) == document


@pytest.mark.parametrize("indent", [False, True], ids=["compact", "indented"])
@pytest.mark.parametrize(
    "output", [o for o in OUTPUTS if o.kind in ("cyclonedx-json", "spdx-json")], ids=_ids
)
def test_a_statement_decoded_in_pieces_reads_as_orjson_decodes_it(
    output: Output, indent: bool
) -> None:
    """The verifier's path: `parse_statement` decodes a statement over 64 KiB in pieces
    (_internal/jsonpieces.py) and keeps each component's JSON as written, by which the parser's
    memo keys it. Over what the tools really write, compact as cosign writes it and indented:
    the predicate is orjson's, key order and types included, and the SBOM read with the raw
    texts, from a cleared memo and again from a full one, is the SBOM its bytes give."""
    from sbomgate._internal import jsonpieces
    from sbomgate.attest import parse_statement
    from sbomgate.sbom.cyclonedx import clear_memos

    document = orjson.loads(real_sbom(output).read_bytes())
    payload = _statement(document)
    if indent:
        payload = orjson.dumps(orjson.loads(payload), option=orjson.OPT_INDENT_2)
    statement = parse_statement(payload)
    expected = replace(parse_sbom(orjson.dumps(document), source="kept"), document={})
    # Read as the verifier leaves it (a large CycloneDX statement's components not decoded
    # yet: jsonpieces.PartlyDecoded), from a cleared memo and a full one, then completed.
    deferred = type(statement.predicate_source) is jsonpieces.PartlyDecoded
    assert deferred == (len(payload) > jsonpieces.PIECE_BYTES and output.kind == "cyclonedx-json")
    clear_memos()
    for _ in range(2):
        read = parse_sbom_in_statement(
            statement.predicate_source, payload, source="kept", items=statement.items
        )
        assert replace(read, document={}) == expected
    assert orjson.dumps(statement.predicate) == orjson.dumps(orjson.loads(payload)["predicate"])
    if deferred:
        assert statement.items and id(statement.predicate["components"]) in statement.items
    clear_memos()
    for _ in range(2):
        read = parse_sbom_in_statement(
            statement.predicate, payload, source="kept", items=statement.items
        )
        assert replace(read, document={}) == expected


@pytest.mark.parametrize(
    "output",
    # The operating-system scans are the large ones (syft's 1.5 MB, trivy's 180 KB, cdxgen's
    # 690 KB). Chosen by name, not by size: collection must not run the tools (two xdist
    # workers collecting at once would run the same tool into the same files).
    [o for o in OUTPUTS if o.kind == "cyclonedx-json" and o.target == "debian-bookworm"],
    ids=_ids,
)
def test_a_new_build_of_a_real_sbom_reads_as_its_bytes(output: Output) -> None:
    """What the tools write, as a release changes it: the build before read the webhook's way
    (components left undecoded by verification, read a run at a time), then a new build with
    one package in 50 bumped, a package dropped and one added, read from what the first left.
    The new build is the SBOM its bytes give, and only the runs it changed were decoded."""
    from sbomgate._internal import jsonpieces
    from sbomgate.attest import parse_statement
    from sbomgate.sbom.cyclonedx import clear_memos

    path = real_sbom(output)
    assert path.stat().st_size > 70_000, f"{path} is too small for verification to defer"
    document = orjson.loads(path.read_bytes())
    clear_memos()
    first = _statement(document)
    read = parse_statement(first)
    assert type(read.predicate_source) is jsonpieces.PartlyDecoded
    parse_sbom_in_statement(read.predicate_source, first, source="a", items=read.items)
    components = document["components"]
    for index in range(0, len(components), 50):
        item = components[index]
        if isinstance(item.get("version"), str) and isinstance(item.get("purl"), str):
            old, new = item["version"], item["version"] + ".1"
            item["version"], item["purl"] = new, item["purl"].replace(f"@{old}", f"@{new}", 1)
    components.insert(len(components) // 2, components.pop(3))
    payload = _statement(document)
    read = parse_statement(payload)
    decoded: list[int] = []
    real_decode = jsonpieces.RawArray.decode

    def counting(self: Any, start: int = 0, end: int | None = None) -> list[Any]:
        out = real_decode(self, start, end)
        decoded.append(len(out))
        return out

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(jsonpieces.RawArray, "decode", counting)
        sbom = parse_sbom_in_statement(read.predicate_source, payload, source="b", items=read.items)
    expected = parse_sbom(orjson.dumps(document), source="b")
    assert replace(sbom, document={}) == replace(expected, document={}, source="b")
    # Only the runs it changed were decoded (syft and cdxgen list `/usr/bin/[`: a measure that
    # counted brackets in strings too had the whole predicate decoded and walked).
    assert 0 < sum(decoded) < len(components) // 2


def test_a_predicate_read_with_its_statement_is_checked_as_bytes_are() -> None:
    """Its limits are the predicate's: nested as deep as allowed is read (the statement is a
    level deeper, and its subject may be deeper still), one level more is refused with the
    message the bytes get; too many values are refused unread."""
    from sbomgate.sbom.parse import MAX_DOCUMENT_DEPTH, MAX_NESTED_VALUES

    def nested(levels: int) -> dict[str, Any]:
        deep: dict[str, Any] = {"bomFormat": "CycloneDX", "specVersion": "1.6"}
        inner = deep
        for _ in range(levels - 1):
            inner["x"] = {}
            inner = inner["x"]
        return deep

    allowed = nested(MAX_DOCUMENT_DEPTH)
    assert parse_sbom_in_statement(allowed, _statement(allowed), source="p").components == ()
    too_deep = nested(MAX_DOCUMENT_DEPTH + 1)
    with pytest.raises(SbomError) as in_statement:
        parse_sbom_in_statement(too_deep, _statement(too_deep), source="p")
    with pytest.raises(SbomError) as from_bytes:
        parse_sbom(orjson.dumps(too_deep), source="p")
    assert in_statement.value.message == from_bytes.value.message
    # The statement's writer may nest its subject deeper than the predicate may go: the
    # predicate is then measured itself, and read when it is within the limit.
    deep_subject = orjson.loads(_statement(allowed))
    deep_subject["subject"][0]["annotations"] = nested(MAX_DOCUMENT_DEPTH + 20)
    payload = orjson.dumps(deep_subject)
    predicate = orjson.loads(payload)["predicate"]
    assert parse_sbom_in_statement(predicate, payload, source="p").components == ()
    crowded = {"bomFormat": "CycloneDX", "specVersion": "1.6", "x": [[]] * MAX_NESTED_VALUES}
    with pytest.raises(SbomError, match="objects and arrays: refused unread"):
        parse_sbom_in_statement(crowded, _statement(crowded), source="p")


@pytest.mark.parametrize(
    "output", [o for o in OUTPUTS if o.kind in ("cyclonedx-json", "cyclonedx-xml")], ids=_ids
)
def test_the_names_the_reader_gathers_are_the_documents(output: Output) -> None:
    """The CycloneDX reader gathers the names each component states beside its purl as it
    reads (`Sbom.declared`, which spares the engine a second walk of the document): the same,
    in the same order, as `identity.declared_fields` reads from the document, read fresh or
    from the parser's remembered components."""
    from sbomgate.identity import declared_fields
    from sbomgate.sbom.cyclonedx import clear_memos

    clear_memos()
    for _ in range(2):
        sbom = load_sbom_file(real_sbom(output))
        assert sbom.declared == declared_fields(sbom.document)
    assert sbom.declared


def test_names_declared_in_nested_components_count_and_pedigrees_do_not() -> None:
    from sbomgate.identity import declared_fields

    document = {
        "bomFormat": "CycloneDX",
        "specVersion": "1.6",
        "metadata": {"component": {"name": "app", "purl": "pkg:npm/app@1", "components": [
            {"name": "Left-Pad", "purl": "pkg:npm/left-pad@1"},
        ]}},
        "components": [
            {"name": "left-pad", "purl": "pkg:npm/left-pad@1", "pedigree": {"ancestors": [
                {"name": "right-pad", "purl": "pkg:npm/left-pad@1"},
            ]}, "components": [{"name": "lp", "group": "x", "purl": "pkg:npm/left-pad@1"}]},
            {"name": "left-pad", "purl": "pkg:npm/left-pad@1"},
        ],
    }  # fmt: skip
    sbom = parse_sbom(orjson.dumps(document), source="t.json")
    assert sbom.declared == declared_fields(document)
    assert sbom.declared is not None
    assert sbom.declared["pkg:npm/left-pad@1"] == (
        ("Left-Pad", None),
        ("left-pad", None),
        ("lp", "x"),
    )
