"""`sbomgate`: a thin command line over the library.

Exit codes: 0 allowed / all tests passed, 1 denied / a test failed, 2 the input or a policy
could not be loaded. Errors are one line on stderr, never a traceback (SBOMGATE_DEBUG=1 shows
one for bug reports).
"""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Mapping
from dataclasses import replace
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, NoReturn

import typer
from rich.console import Console

from sbomgate._internal.logs import LogLevel
from sbomgate.errors import InputError, SbomgateError

if TYPE_CHECKING:
    from sbomgate.policy import PolicyEngine
    from sbomgate.sbom import Sbom
    from sbomgate.verdict import Verdict

app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    help="sbomgate: verify, then trust. Gate SBOMs with Cloudsmith-compatible Rego policies.",
    pretty_exceptions_enable=False,
)

# 3: nothing was found wrong, but something could not be checked (a registry or repository
# that could not be asked): a fault to retry, not a verdict on the image.
EXIT_ALLOWED, EXIT_DENIED, EXIT_ERROR, EXIT_FAULT = 0, 1, 2, 3


class OutputFormat(StrEnum):
    """The formats `--format` accepts."""

    table = "table"
    json = "json"
    sarif = "sarif"


# Options shared by the commands that evaluate.
PoliciesOption = Annotated[
    Path | None, typer.Option("--policies", help="directory of .rego policies [bundled]")
]
DataOption = Annotated[
    list[Path] | None, typer.Option("--data", help="JSON or YAML data for data.* (repeatable)")
]
FactsOption = Annotated[
    Path | None,
    typer.Option("--facts", help="offline facts snapshot (trusted repositories, advisories)"),
]
FormatOption = Annotated[
    OutputFormat, typer.Option("--output", "-o", "--format", help="output format")
]
OsvOption = Annotated[
    list[Path] | None,
    typer.Option("--osv", help="OSV export: an all.zip or a directory of OSV JSON (repeatable)"),
]
SourceOption = Annotated[
    list[str] | None,
    typer.Option(
        "--source",
        help="trusted repository KIND=URL, kind pypi|npm|maven|go, checked in order "
        "(repeatable); KIND:hosted=URL for one that serves only what you put there "
        "[proxied: it may pass a public registry's names through]",
    ),
]
SourceFileOption = Annotated[
    list[Path] | None,
    typer.Option(
        "--source-file",
        help="YAML or JSON list of trusted repositories, as `trustedSources` in the serve "
        "configuration (a whole serve configuration works too); apt and rpm sources need one "
        "(keyring, suites); asked before --source (repeatable)",
    ),
]
TyposquatOption = Annotated[
    bool,
    typer.Option("--typosquat/--no-typosquat", help="look for near-misses of popular names"),
]
AllowEmptySbomOption = Annotated[
    bool,
    typer.Option(
        "--allow-empty-sbom",
        help="admit an SBOM that lists no packages [refused: it proves nothing]",
    ),
]
# Who refuses an SBOM that lists nothing (not a policy).
EMPTY_SBOM = "sbomgate/empty-sbom"


def fail(message: str) -> NoReturn:
    """Print a one-line error to stderr and exit 2."""
    Console(stderr=True, highlight=False, soft_wrap=True).print(
        "[red]error:[/red] ", message, sep=""
    )
    sys.exit(EXIT_ERROR)


def _sources(texts: list[str]) -> list[dict[str, str]]:
    """`--source KIND[:HOSTING]=URL` flags as trusted-source settings, named in the order given
    (`pypi:hosted=URL`; without a hosting, the source's default: proxied)."""
    configs = []
    for position, text in enumerate(texts):
        kind, sep, url = text.partition("=")
        if not sep:
            raise InputError(f"--source {text!r}: expected KIND=URL (e.g. pypi=https://…/simple/)")
        kind, colon, hosting = kind.partition(":")
        config = {"name": f"source-{position + 1}", "kind": kind, "url": url}
        if colon:
            config["hosting"] = hosting  # checked with the rest (intel.facts.source_configs)
        configs.append(config)
    return configs


# A list of sources is small; the bound keeps a wrong file (an SBOM) from being read whole.
MAX_SOURCE_FILE_BYTES = 1 << 20


def _source_file(path: Path) -> list[dict[str, Any]]:
    """The trusted sources a `--source-file` lists (checked later with the rest)."""
    from sbomgate._internal.documents import load_json_or_yaml

    value = load_json_or_yaml(path, what="trusted sources", max_bytes=MAX_SOURCE_FILE_BYTES)
    if isinstance(value, dict) and "trustedSources" in value:
        value = value["trustedSources"]
    if not isinstance(value, list) or not all(isinstance(item, dict) for item in value):
        raise InputError(
            f"{path}: expected a list of trusted sources (mappings with name, kind, url, ...) "
            "or a serve configuration with trustedSources"
        )
    return value


def _all_sources(files: list[Path] | None, flags: list[str] | None) -> list[dict[str, Any]]:
    """`--source-file` entries first, in file order, then `--source` flags."""
    configs: list[dict[str, Any]] = []
    for path in files or []:
        configs.extend(_source_file(path))
    return [*configs, *_sources(flags or [])]


def _emit(verdict: Verdict, output: OutputFormat, source: str, engine: PolicyEngine) -> NoReturn:
    """Print the verdict in the chosen format and exit with its code."""
    from sbomgate.output import PolicyInfo, Report, get_format

    policies = tuple(
        PolicyInfo(name=p.name, title=p.title, description=p.description) for p in engine.policies
    )
    report = Report(verdict=verdict, source=source, policies=policies)
    sys.stdout.write(get_format(output.value).render(report))
    raise typer.Exit(exit_code(verdict))


def exit_code(verdict: Verdict) -> int:
    """0 allowed; 3 when all that stands in the way is faults (something could not be asked:
    retry); 1 denied (a violation, a policy error, an image refused for what it is)."""
    if verdict.allowed:
        return EXIT_ALLOWED
    faults_only = (
        not verdict.violations
        and all(e.fault for e in verdict.errors)
        and all(i.ok or all(p.fault for p in i.problems) for i in verdict.images)
    )
    return EXIT_FAULT if faults_only else EXIT_DENIED


def _show_version(value: bool) -> None:
    if value:
        from sbomgate import __version__

        print(f"sbomgate {__version__}")
        raise typer.Exit(EXIT_ALLOWED)


@app.callback()
def _root(
    version: Annotated[
        bool,
        typer.Option(
            "--version", callback=_show_version, is_eager=True, help="print the version and exit"
        ),
    ] = False,
) -> None:
    """sbomgate: verify, then trust. Gate SBOMs with Cloudsmith-compatible Rego policies."""


@app.command("eval")
def eval_command(
    sbom: Annotated[
        Path,
        typer.Option(
            "--sbom",
            help="CycloneDX (JSON/XML) or SPDX (JSON, tag-value, 3.0 JSON-LD) file, `-` for "
            "stdin, or what `cosign download attestation` prints (its SBOM; not verified: "
            "`verify` verifies)",
        ),
    ],
    policies: PoliciesOption = None,
    data: DataOption = None,
    facts: FactsOption = None,
    osv: OsvOption = None,
    source: SourceOption = None,
    source_file: SourceFileOption = None,
    typosquat: TyposquatOption = True,
    allow_empty_sbom: AllowEmptySbomOption = False,
    output: FormatOption = OutputFormat.table,
) -> None:
    """Evaluate an SBOM against policies: exit 0 allowed, 1 denied, 2 input or policy error,
    3 something could not be checked (a fault: retry)."""
    from sbomgate.intel.facts import prefetch
    from sbomgate.runtime import policy_inputs

    engine, fact_source = policy_inputs(
        policies,
        data or [],
        snapshot=facts,
        osv=osv or [],
        sources=_all_sources(source_file, source),
        typosquat=typosquat,
    )
    document, source_name = _read_sbom(sbom)
    prefetch(fact_source, document.components)
    verdict = engine.evaluate_sbom(document, facts=fact_source)
    if not document.components and not allow_empty_sbom:
        verdict = _refused_as_empty(verdict)
    _emit(verdict, output, source_name, engine)


def _read_sbom(path: Path) -> tuple[Sbom, str]:
    """The SBOM of a file or stdin (`-`): an SBOM document, or the SBOM attestation among the
    lines `cosign download attestation` printed (said on stderr: it is not verified here)."""
    from sbomgate.attest.download import is_attestation_download, sbom_from_download
    from sbomgate.errors import SbomError
    from sbomgate.sbom import MAX_SBOM_BYTES, parse_sbom

    source = "<stdin>" if str(path) == "-" else str(path)
    try:
        if source == "<stdin>":
            data = sys.stdin.buffer.read(MAX_SBOM_BYTES + 1)
        else:
            with path.open("rb") as f:
                data = f.read(MAX_SBOM_BYTES + 1)
    except OSError as exc:
        raise SbomError(source, f"cannot read: {exc.strerror or exc}") from None
    if len(data) > MAX_SBOM_BYTES:
        raise SbomError(source, f"SBOM is over the {MAX_SBOM_BYTES >> 20} MiB limit")
    if is_attestation_download(data):
        attested = sbom_from_download(data, source)
        Console(stderr=True, highlight=False, soft_wrap=True).print(
            f"note: {source}: the {attested.predicate_type} attestation's SBOM, its signature "
            "not verified (`sbomgate verify` verifies)"
        )
        return parse_sbom(attested.document, source=source), source
    return parse_sbom(data, source=source), source


def _refused_as_empty(verdict: Verdict) -> Verdict:
    """An SBOM that lists nothing proves nothing (as `verify` and the webhook refuse it)."""
    from sbomgate.actions import Action
    from sbomgate.verdict import Finding

    finding = Finding(
        purl=None,
        name=None,
        version=None,
        policy=EMPTY_SBOM,
        title="Empty SBOM",
        action=Action.DENY,
        reasons=(
            "the SBOM lists no packages: an SBOM that lists nothing proves nothing "
            "(--allow-empty-sbom admits it)",
        ),
        subject=True,
    )
    return replace(verdict, violations=(finding, *verdict.violations))


@app.command("verify")
def verify_command(
    images: Annotated[list[str], typer.Argument(help="image references (tag or digest)")],
    trust: Annotated[
        list[Path], typer.Option("--trust", help="TrustPolicy YAML file or directory (repeatable)")
    ],
    policies: PoliciesOption = None,
    data: DataOption = None,
    facts: FactsOption = None,
    osv: OsvOption = None,
    source: SourceOption = None,
    source_file: SourceFileOption = None,
    typosquat: TyposquatOption = True,
    insecure_registry: Annotated[
        list[str] | None,
        typer.Option("--insecure-registry", help="host[:port] spoken to over plain HTTP"),
    ] = None,
    allow_registry: Annotated[
        list[str] | None,
        typer.Option(
            "--allow-registry",
            help="host[:port] or glob that may be contacted [the registries of the images given]",
        ),
    ] = None,
    registry_ca: Annotated[
        list[Path] | None, typer.Option("--registry-ca", help="extra CA bundle (PEM) for TLS")
    ] = None,
    docker_config: Annotated[
        Path | None,
        typer.Option("--docker-config", help="docker config.json with registry credentials"),
    ] = None,
    timeout: Annotated[float, typer.Option("--timeout", help="seconds per image")] = 30.0,
    allow_empty_sbom: AllowEmptySbomOption = False,
    output: FormatOption = OutputFormat.table,
    timings: Annotated[
        bool, typer.Option("--timings", help="print the time of each phase on stderr")
    ] = False,
) -> None:
    """Find, verify and evaluate the signed SBOMs of images: exit 0 allowed, 1 denied (a
    refused or unverifiable image, or a policy violation), 2 input or policy error, 3 only
    faults (a registry or repository that could not be asked: retry)."""
    from sbomgate.attest import load_trust_policies
    from sbomgate.imagecheck import judge_images
    from sbomgate.intel.facts import prefetch
    from sbomgate.registry import parse_reference
    from sbomgate.runtime import (
        default_docker_config,
        image_checker,
        policy_inputs,
        registry_client,
    )

    engine, fact_source = policy_inputs(
        policies,
        data or [],
        snapshot=facts,
        osv=osv or [],
        sources=_all_sources(source_file, source),
        typosquat=typosquat,
    )
    trust_policies = load_trust_policies(trust)
    allowed = list(allow_registry or [])
    if not allowed:
        # The person running the CLI named these images, so their registries are trusted
        # to be contacted (the webhook, facing untrusted references, has no such default).
        for ref in images:
            with contextlib.suppress(InputError):
                allowed.append(parse_reference(ref).registry)
    client = registry_client(
        allowed=allowed,
        insecure=insecure_registry or [],
        ca_files=registry_ca or [],
        docker_config=docker_config or default_docker_config(),
        timeout=timeout,
    )
    checker = image_checker(
        client, trust_policies, timeout=timeout, allow_empty_sbom=allow_empty_sbom
    )
    try:
        results = checker.check_many(images)
    finally:
        client.close()

    def evaluate(sbom: Sbom, image: Mapping[str, Any]) -> Verdict:
        prefetch(fact_source, sbom.components)
        return engine.evaluate_sbom(sbom, facts=fact_source, image=image)

    verdict, evaluate_seconds = judge_images(
        results,
        evaluate,
    )
    if timings:
        err = Console(stderr=True, highlight=False)
        for result in results:
            phases = {**result.seconds}
            parts = ", ".join(f"{k} {v * 1000:.1f} ms" for k, v in phases.items())
            err.print(f"{result.report.ref}: {parts}{' (cached)' if result.cached else ''}")
        err.print(f"evaluate: {evaluate_seconds['evaluate'] * 1000:.1f} ms")
    _emit(verdict, output, ", ".join(images), engine)


@app.command("snapshot")
def snapshot_command(
    sboms: Annotated[list[Path], typer.Argument(help="SBOM files whose packages to look up")],
    source: Annotated[
        list[str],
        typer.Option(
            "--source",
            help="trusted repository KIND=URL, or KIND:hosted=URL (repeatable; as for eval)",
        ),
    ],
    out: Annotated[Path, typer.Option("--out", help="snapshot file to write (.yaml or .json)")],
) -> None:
    """Ask the trusted repositories about every package of the SBOMs and write the answers as
    an offline facts snapshot (`--facts`), for clusters that cannot reach the repositories."""
    from sbomgate.intel.facts import source_configs
    from sbomgate.intel.sources import TrustedSources, export_snapshot
    from sbomgate.sbom import load_sbom_file

    configs = _sources(source)
    components = [c for path in sboms for c in load_sbom_file(path).components if c.purl]
    with TrustedSources(source_configs(configs)) as sources:
        answers = sources.lookup_many(components)
    try:
        written = export_snapshot(answers, out)
    except OSError as exc:  # a directory that does not exist, or is not writable
        raise InputError(f"{out}: cannot write the snapshot: {exc.strerror or exc}") from None
    faults = sum(1 for a in answers if a.error)
    found = sum(1 for a in answers if a.repository is not None)
    Console(stderr=True, highlight=False, soft_wrap=True).print(
        f"{out}: {written} packages ({found} found in a trusted repository"
        + (f"; {faults} could not be asked and were left out" if faults else "")
        + ")"
    )
    raise typer.Exit(EXIT_FAULT if faults else EXIT_ALLOWED)


@app.command("serve")
def serve_command(
    config_file: Annotated[
        Path | None, typer.Option("--config", help="configuration file (YAML); flags override")
    ] = None,
    policies: Annotated[Path | None, typer.Option("--policies", help="policy directory")] = None,
    trust: Annotated[
        list[Path] | None, typer.Option("--trust", help="TrustPolicy file or directory")
    ] = None,
    data: Annotated[list[Path] | None, typer.Option("--data", help="data for data.*")] = None,
    facts: Annotated[Path | None, typer.Option("--facts", help="facts snapshot")] = None,
    tls_cert: Annotated[Path | None, typer.Option("--tls-cert", help="serving certificate")] = None,
    tls_key: Annotated[Path | None, typer.Option("--tls-key", help="its private key")] = None,
    host: Annotated[str | None, typer.Option("--host", help="listen address [0.0.0.0]")] = None,
    port: Annotated[int | None, typer.Option("--port", help="listen port [8443]")] = None,
    mode: Annotated[str | None, typer.Option("--mode", help="Enforce | Warn | Audit")] = None,
    allow_registry: Annotated[
        list[str] | None, typer.Option("--allow-registry", help="registry host or glob")
    ] = None,
    insecure_registry: Annotated[
        list[str] | None, typer.Option("--insecure-registry", help="plain-HTTP registry")
    ] = None,
    registry_ca: Annotated[
        list[Path] | None, typer.Option("--registry-ca", help="extra CA bundle")
    ] = None,
    docker_config: Annotated[
        Path | None, typer.Option("--docker-config", help="registry credentials")
    ] = None,
    exempt_namespace: Annotated[
        list[str] | None, typer.Option("--exempt-namespace", help="namespace not gated")
    ] = None,
    deadline: Annotated[
        float | None, typer.Option("--deadline", help="admission deadline in seconds [8]")
    ] = None,
    image_references: Annotated[
        str | None,
        typer.Option("--image-references", help="Pin | RefuseTags | Resolve [Pin]"),
    ] = None,
    log_level: Annotated[
        LogLevel | None,
        typer.Option("--log-level", case_sensitive=False, help="least level logged [info]"),
    ] = None,
) -> None:
    """Serve the admission webhooks over HTTPS (POST /mutate pins tags, POST /validate); with
    `kubernetes.watch`, also the operator (custom resources, audit, certificate rotation)."""
    from sbomgate.config import ServeConfig, load_config, parse_image_references, parse_mode
    from sbomgate.serving.server import serve

    settings = load_config(config_file) if config_file else ServeConfig()
    config = settings.with_overrides(
        policies=policies,
        trust_policies=tuple(trust or ()),
        data=tuple(data or ()),
        facts=facts,
        tls_cert=tls_cert,
        tls_key=tls_key,
        host=host,
        port=port,
        mode=parse_mode(mode, "--mode") if mode else None,
        allowed_registries=tuple(allow_registry or ()),
        insecure_registries=tuple(insecure_registry or ()),
        registry_ca=tuple(registry_ca or ()),
        docker_config=docker_config,
        exempt_namespaces=tuple(exempt_namespace or ()),
        admission_deadline=deadline,
        image_references=parse_image_references(image_references, "--image-references")
        if image_references
        else None,
        log_level=log_level,
    )
    serve(config)


@app.command("test")
def test_command(
    target: Annotated[
        Path | None,
        typer.Argument(help="a directory or a *_test.rego file [the bundled policies]"),
    ] = None,
    data: Annotated[list[Path] | None, typer.Option("--data", help="JSON or YAML data")] = None,
    verbose: Annotated[
        bool, typer.Option("--verbose/--quiet", "-v/-q", help="a line per test, or failures only")
    ] = True,
) -> None:
    """Run the test_* rules of Rego test files, like `opa test`."""
    from sbomgate._internal.documents import load_data_files
    from sbomgate.policy.testing import Outcome, run_tests
    from sbomgate.runtime import bundled_policies_dir

    target = target if target is not None else bundled_policies_dir()

    merged = load_data_files(data or [])
    console = Console(highlight=False, soft_wrap=True)
    counts = dict.fromkeys(Outcome, 0)
    styles = {
        Outcome.PASS: "green",
        Outcome.FAIL: "red",
        Outcome.ERROR: "red",
        Outcome.SKIP: "yellow",
    }
    for result in run_tests(target, merged):
        counts[result.outcome] += 1
        if verbose or result.outcome is not Outcome.PASS:
            detail = f" ({result.message})" if result.message else ""
            console.print(
                f"{result.file}: data.{result.package}.{result.name}: "
                f"[{styles[result.outcome]}]{result.outcome.value}[/] "
                f"({result.seconds * 1000:.1f} ms){detail}"
            )
    failed = counts[Outcome.FAIL] + counts[Outcome.ERROR]
    console.print("-" * 60)
    console.print(
        f"{counts[Outcome.PASS]} passed, {failed} failed"
        + (f", {counts[Outcome.SKIP]} skipped" if counts[Outcome.SKIP] else "")
    )
    raise typer.Exit(EXIT_DENIED if failed else EXIT_ALLOWED)


def main() -> None:
    """The `sbomgate` entry point: SbomgateErrors as one line and exit 2, a bug as one line unless
    SBOMGATE_DEBUG is set."""
    try:
        app(standalone_mode=True)
    except SbomgateError as exc:
        fail(str(exc))
    except KeyboardInterrupt:
        raise SystemExit(130) from None
    except Exception as exc:  # a bug: one line for the user, the traceback on request
        if os.environ.get("SBOMGATE_DEBUG"):
            raise
        fail(f"internal error: {type(exc).__name__}: {exc} (set SBOMGATE_DEBUG=1 for details)")


if __name__ == "__main__":
    main()
