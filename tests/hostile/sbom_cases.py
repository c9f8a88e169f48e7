"""Cases that are an SBOM and what the organisation says of its packages, judged by
`sbomgate eval` (sections 5 to 8).

`build` of such a case:
    sbom    the SBOM document (CycloneDX or SPDX JSON)
    data    settings for the bundled policies (under `sbomgate:` in a --data file)
    osv     OSV records (a --osv directory)
    vouch   purls the trusted repository has (a --facts snapshot); default: every purl the
            SBOM names, without qualifiers (so only the rule under test can deny)
    source  True: ask the real pypiserver (tests/support/index_servers.py) instead of a snapshot
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from hostile.content import (
    bare,
    component,
    cyclonedx,
    data_file,
    facts_snapshot,
    purls_in,
    write_json,
)
from hostile.corpus import Case, Outcome, Verdict
from hostile.doors import cli_outcome, run_cli


def eval_case(
    id: str,
    section: int,
    description: str,
    expect: Verdict,
    sbom: Mapping[str, Any] | Sequence[Mapping[str, Any]],
    *,
    data: Mapping[str, Any] | None = None,
    osv: Sequence[Mapping[str, Any]] = (),
    vouch: Sequence[str] | None = None,
    source: bool = False,
    says: tuple[str, ...] = (),
    policy: str | None = None,
) -> Case:
    """An `eval` case; `sbom` is a document, or a list of CycloneDX components."""
    document = dict(sbom) if isinstance(sbom, Mapping) else cyclonedx(*sbom)
    return Case(
        id=f"s{section}-eval-{id}",
        section=section,
        description=description,
        door="eval",
        expect=expect,
        says=says,
        policy=policy,
        build={"sbom": document, "data": data, "osv": list(osv), "vouch": vouch, "source": source},
    )


def one(purl: str | None, **kwargs: Any) -> list[dict[str, Any]]:
    """An SBOM of one component."""
    return [component(purl, **kwargs)]


def quarantine(purl: str, vers: str | None = None) -> dict[str, Any]:
    entry = {"purl": purl, "reason": "hostile corpus"}
    if vers is not None:
        entry["vers"] = vers
    return {"quarantine": [entry]}


def run_eval_case(case: Case, directory: Path, pypi_url: str | None) -> Outcome:
    build = case.build
    directory.mkdir(parents=True, exist_ok=True)
    sbom = write_json(directory / "sbom.json", build["sbom"])
    args = ["eval", "--sbom", str(sbom), "--format", "json"]
    vouch = build.get("vouch")
    if vouch is None:
        vouch = sorted({bare(p) for p in purls_in(build["sbom"])})
    if vouch:
        facts = write_json(directory / "facts.json", facts_snapshot(vouch))
        args += ["--facts", str(facts)]
    if build.get("data"):
        args += ["--data", str(data_file(directory / "data.json", build["data"]))]
    if build.get("osv"):
        for number, record in enumerate(build["osv"]):
            write_json(directory / "osv" / f"{number}-{record['id']}.json", record)
        args += ["--osv", str(directory / "osv")]
    if build.get("source"):
        assert pypi_url, "a case that asks pypiserver needs it running"
        # The organisation's own index (hosted): the cases are about identity, not project age.
        args += ["--source", f"pypi:hosted={pypi_url}"]
    return cli_outcome(run_cli(args))
