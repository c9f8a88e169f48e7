"""The SBOMs that real producers write over real targets, made here and cached.

The producers are the ones people sign and attach to images: syft, trivy, cyclonedx-py,
cyclonedx-npm and cdxgen, pinned and installed by `make sbom-tools`. The targets are made by real
tools too (`make sbom-targets`): a Debian 12 minbase root filesystem from debootstrap, a venv with
the pinned packages of tests/fixtures/python-env, and tests/fixtures/node-app with its
node_modules from `npm ci`. Each tool runs over each target it reads, in each format it writes by
default or commonly, offline; the outputs are cached as

    .cache/real-sboms/<tool>-<version>/<target>.<format>

and reused while they are newer than their target (and the tool's version, in the folder name,
is the pinned one). `versions.json` there records what each tool said its version is. A tool
that is missing, reports another version or fails fails the test asking for it, with what to
run or the tail of its stderr: nothing here skips.
"""

from __future__ import annotations

import fcntl
import json
import os
import re
import subprocess
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path

import pytest

from support.paths import ROOT

CACHE = ROOT / ".cache"
CORPUS = CACHE / "real-sboms"
TARGETS_DIR = CACHE / "sbom-targets"
SBOM_TOOLS = CACHE / "sbom-tools"
TOOL_TIMEOUT = 900.0
STDERR_TAIL = 40
_MAKE = "make sbom-tools sbom-targets"


@dataclass(frozen=True)
class Target:
    """Something the producers scan: a directory built by `make sbom-targets`."""

    name: str
    path: Path
    what: str

    @property
    def stamp(self) -> Path:
        """The file `make` touches when the target is complete."""
        return self.path.with_name(self.path.name + ".done")


DEBIAN = Target("debian-bookworm", TARGETS_DIR / "debian-bookworm", "a Debian 12 minbase rootfs")
PYTHON = Target("python-env", TARGETS_DIR / "python-env", "a venv of pinned PyPI packages")
NODE = Target("node-app", TARGETS_DIR / "node-app", "a Node project with node_modules")
TARGETS = {t.name: t for t in (DEBIAN, PYTHON, NODE)}


def _pin(path: Path, pattern: str) -> str:
    match = re.search(pattern, path.read_text(), re.MULTILINE)
    assert match, f"no pin matching {pattern!r} in {path}"
    return match.group(1)


def _npm_pin(package: str) -> str:
    lock = json.loads((ROOT / "tools/sbom-tools/package-lock.json").read_text())
    version: str = lock["packages"][f"node_modules/{package}"]["version"]
    return version


@cache
def pinned_versions() -> dict[str, str]:
    """Each tool's version as the repository pins it (without a leading `v`)."""
    makefile = ROOT / "Makefile"
    return {
        "syft": _pin(makefile, r"^SYFT_VERSION := v(\S+)$"),
        "trivy": _pin(makefile, r"^TRIVY_VERSION := v(\S+)$"),
        "cyclonedx-py": _pin(
            ROOT / "tools/sbom-tools/requirements-cyclonedx-py.lock", r"^cyclonedx-bom==(\S+)"
        ),
        "cyclonedx-npm": _npm_pin("@cyclonedx/cyclonedx-npm"),
        "cdxgen": _npm_pin("@cyclonedx/cdxgen"),
    }


@dataclass(frozen=True)
class Output:
    """One SBOM file: what wrote it, over what, in which format."""

    tool: str
    target: str
    format: str
    kind: str  # cyclonedx-json | cyclonedx-xml | spdx-json | spdx-tag-value | spdx3-jsonld

    @property
    def id(self) -> str:
        """A short name for test ids and messages."""
        return f"{self.tool}:{self.target}:{self.format}"

    @property
    def path(self) -> Path:
        """Where the file is cached."""
        version = pinned_versions()[self.tool]
        return CORPUS / f"{self.tool}-{version}" / f"{self.target}.{self.format}"


@dataclass(frozen=True, eq=False)
class Run:
    """One run of a tool, writing one or more outputs (syft writes all its formats at once)."""

    tool: str
    target: Target
    outputs: tuple[Output, ...]
    argv: Callable[[Mapping[Output, Path]], list[str]]
    env: Mapping[str, str] = field(default_factory=dict)
    cwd: Path | None = None


SYFT = CACHE / "bin" / "syft"
TRIVY = CACHE / "bin" / "trivy"
CYCLONEDX_PY = SBOM_TOOLS / "cyclonedx-py" / "bin" / "cyclonedx-py"
CYCLONEDX_NPM = SBOM_TOOLS / "node_modules" / ".bin" / "cyclonedx-npm"
CDXGEN = SBOM_TOOLS / "node_modules" / ".bin" / "cdxgen"

BINARIES = {
    "syft": SYFT,
    "trivy": TRIVY,
    "cyclonedx-py": CYCLONEDX_PY,
    "cyclonedx-npm": CYCLONEDX_NPM,
    "cdxgen": CDXGEN,
}

# syft's format names; `syft scan -o NAME=FILE` several times writes them all in one run.
SYFT_FORMATS = {
    "cyclonedx-json": "cyclonedx-json",
    "cyclonedx-xml": "cyclonedx-xml",
    "spdx-json": "spdx-json",
    "spdx-tag-value": "spdx-tag-value",
}
# trivy's: `--format cyclonedx` (JSON) and `--format spdx-json`.
TRIVY_FORMATS = {"cyclonedx-json": "cyclonedx", "spdx-json": "spdx-json"}
# cyclonedx-py: its default spec version and each one asked for, in JSON and XML.
CYCLONEDX_PY_SPECS = (None, "1.4", "1.5", "1.6", "1.7")

# Nothing may reach the network: no update checks, no telemetry, no vulnerability database,
# no registry look-ups for licences. HOME and the caches point into the corpus folder.
_HOME = CORPUS / ".home"
_TRIVY_OFFLINE = {
    "TRIVY_OFFLINE_SCAN": "true",
    "TRIVY_SKIP_DB_UPDATE": "true",
    "TRIVY_SKIP_JAVA_DB_UPDATE": "true",
    "TRIVY_SKIP_CHECK_UPDATE": "true",
    "TRIVY_SKIP_VEX_REPO_UPDATE": "true",
    "TRIVY_SKIP_VERSION_CHECK": "true",
    "TRIVY_DISABLE_TELEMETRY": "true",
    "TRIVY_NO_PROGRESS": "true",
    "TRIVY_CACHE_DIR": str(CORPUS / ".trivy-cache"),
}
_SYFT_OFFLINE = {
    "SYFT_CHECK_FOR_APP_UPDATE": "false",
    "SYFT_CACHE_DIR": str(CORPUS / ".syft-cache"),
}
# cdxgen fetches licences and package metadata only when asked (FETCH_LICENSE,
# CDXGEN_FETCH_PKG_METADATA), looks jars up on search.maven.org unless told not to, and
# CDXGEN_ALLOWED_HOSTS refuses every host not listed (none resolves here). `-t rootfs` runs
# trivy (ours, through TRIVY_CMD; TRIVY_FORMAT because cdxgen passes no --format).
_CDXGEN_OFFLINE = {
    "FETCH_LICENSE": "false",
    "CDXGEN_FETCH_PKG_METADATA": "false",
    "SEARCH_MAVEN_ORG": "false",
    "CDXGEN_ALLOWED_HOSTS": "offline.invalid",
    "CDXGEN_TEMP_DIR": str(CORPUS / ".cdxgen-tmp"),
    "TRIVY_CMD": str(TRIVY),
    "TRIVY_FORMAT": "cyclonedx",
    **_TRIVY_OFFLINE,
}


def _syft_run(target: Target) -> Run:
    outputs = tuple(Output("syft", target.name, fmt, fmt) for fmt in SYFT_FORMATS)

    def argv(paths: Mapping[Output, Path]) -> list[str]:
        args = [str(SYFT), "scan", f"dir:{target.path}", "-q"]
        for out in outputs:
            args += ["-o", f"{SYFT_FORMATS[out.format]}={paths[out]}"]
        return args

    return Run("syft", target, outputs, argv, _SYFT_OFFLINE)


def _trivy_run(target: Target, fmt: str) -> Run:
    out = Output("trivy", target.name, fmt, fmt)
    # A root filesystem and an installed venv are read as installed packages (`rootfs`:
    # dpkg status, dist-info); a project directory from its lock file (`fs`).
    command = "fs" if target is NODE else "rootfs"

    def argv(paths: Mapping[Output, Path]) -> list[str]:
        return [
            str(TRIVY),
            command,
            "--format",
            TRIVY_FORMATS[fmt],
            "--output",
            str(paths[out]),
            str(target.path),
        ]

    return Run("trivy", target, (out,), argv, _TRIVY_OFFLINE)


def _cyclonedx_py_run(spec: str | None, of: str) -> Run:
    fmt = f"cyclonedx{'-' + spec if spec else ''}-{of.lower()}"
    out = Output("cyclonedx-py", PYTHON.name, fmt, f"cyclonedx-{of.lower()}")

    def argv(paths: Mapping[Output, Path]) -> list[str]:
        args = [str(CYCLONEDX_PY), "environment", "--of", of, "-o", str(paths[out])]
        if spec:
            args += ["--sv", spec]
        return [*args, str(PYTHON.path)]

    return Run("cyclonedx-py", PYTHON, (out,), argv)


def _cyclonedx_npm_run(of: str) -> Run:
    fmt = f"cyclonedx-{of.lower()}"
    out = Output("cyclonedx-npm", NODE.name, fmt, fmt)

    def argv(paths: Mapping[Output, Path]) -> list[str]:
        return [str(CYCLONEDX_NPM), "--output-format", of, "--output-file", str(paths[out])]

    return Run("cyclonedx-npm", NODE, (out,), argv, cwd=NODE.path)


CDXGEN_TYPES = {DEBIAN.name: "rootfs", PYTHON.name: "python", NODE.name: "js"}


def _cdxgen_run(target: Target, fmt: str) -> Run:
    kind = "spdx3-jsonld" if fmt == "spdx3-jsonld" else "cyclonedx-json"
    out = Output("cdxgen", target.name, fmt, kind)
    env = dict(_CDXGEN_OFFLINE)
    if target is PYTHON:
        env["VIRTUAL_ENV"] = str(PYTHON.path)  # cdxgen reads an environment through its pip

    def argv(paths: Mapping[Output, Path]) -> list[str]:
        args = [str(CDXGEN), "-t", CDXGEN_TYPES[target.name], "--no-install-deps"]
        if kind == "spdx3-jsonld":
            args += ["--format", "spdx"]  # SPDX 3.0.1 JSON-LD
        return [*args, "-o", str(paths[out]), str(target.path)]

    return Run("cdxgen", target, (out,), argv, env)


@cache
def runs() -> tuple[Run, ...]:
    """Every run, in a fixed order."""
    found: list[Run] = []
    for target in TARGETS.values():
        found.append(_syft_run(target))
        found.extend(_trivy_run(target, fmt) for fmt in TRIVY_FORMATS)
    for spec in CYCLONEDX_PY_SPECS:
        found.extend(_cyclonedx_py_run(spec, of) for of in ("JSON", "XML"))
    found.extend(_cyclonedx_npm_run(of) for of in ("JSON", "XML"))
    for target in TARGETS.values():
        found.extend(_cdxgen_run(target, fmt) for fmt in ("cyclonedx-json", "spdx3-jsonld"))
    return tuple(found)


def outputs() -> tuple[Output, ...]:
    """Every (tool, target, format), known without running anything (for parametrize)."""
    return tuple(out for run in runs() for out in run.outputs)


def _run_of(output: Output) -> Run:
    for run in runs():
        if output in run.outputs:
            return run
    raise KeyError(output)


def _tail(text: str, lines: int = STDERR_TAIL) -> str:
    return "\n".join(text.rstrip().splitlines()[-lines:])


def _need(path: Path, what: str) -> None:
    if not path.exists():
        pytest.fail(f"{what} is missing ({path.relative_to(ROOT)}): run `{_MAKE}`")


# The version each tool prints, and how to read it from what it prints.
_VERSION_COMMANDS: dict[str, tuple[list[str], str]] = {
    "syft": (["version"], r"^Version:\s+(\S+)"),
    "trivy": (["--version"], r"^Version:\s+(\S+)"),
    "cyclonedx-py": (["--version"], r"^(\S+)$"),
    "cyclonedx-npm": (["--version"], r"^(\S+)$"),
    "cdxgen": (["--version"], r"CycloneDX Generator (\S+)"),
}

_lock = threading.Lock()
_done: set[Run] = set()
_failed: dict[Run, str] = {}  # a run that failed fails every test that asks for it, unrun
_versions: dict[str, str] = {}


def _env(extra: Mapping[str, str]) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TRIVY_", "SYFT_", "CDXGEN_"))}
    env.update(HOME=str(_HOME), NO_COLOR="1", **extra)
    return env


def tool_version(tool: str) -> str:
    """What the installed tool says its version is; the test fails unless it is the pin."""
    with _lock:
        if tool in _versions:
            return _versions[tool]
        binary = BINARIES[tool]
        _need(binary, tool)
        args, pattern = _VERSION_COMMANDS[tool]
        _HOME.mkdir(parents=True, exist_ok=True)
        proc = subprocess.run(
            [str(binary), *args], capture_output=True, text=True, timeout=120, env=_env({})
        )
        text = re.sub(r"\x1b\[[0-9;]*m", "", proc.stdout + proc.stderr)
        match = re.search(pattern, text, re.MULTILINE)
        if proc.returncode != 0 or not match:
            pytest.fail(f"`{binary} {' '.join(args)}` exited {proc.returncode}:\n{_tail(text)}")
        version = match.group(1).removeprefix("v")
        pinned = pinned_versions()[tool]
        if version != pinned:
            pytest.fail(f"{tool} is {version}, the pin is {pinned}: run `{_MAKE}`")
        _versions[tool] = version
        _record_versions()
        return version


def _record_versions() -> None:
    CORPUS.mkdir(parents=True, exist_ok=True)
    path = CORPUS / "versions.json"
    try:
        recorded = json.loads(path.read_text())
    except (OSError, ValueError):
        recorded = {}
    recorded.update(_versions)
    # A name of this process's own: two pytest-xdist workers may record at once.
    tmp = path.with_suffix(f".{os.getpid()}.tmp")
    tmp.write_text(json.dumps(recorded, indent=2, sort_keys=True) + "\n")
    tmp.replace(path)


def _fresh(output: Output, target: Target) -> bool:
    try:
        return output.path.stat().st_mtime > target.stamp.stat().st_mtime
    except OSError:
        return False


def real_sbom(output: Output) -> Path:
    """The cached SBOM file for `output`, made now (with its run's other outputs) if it is
    missing or older than its target. Fails the calling test when the tool fails."""
    run = _run_of(output)
    _need(run.target.stamp, run.target.what)
    tool_version(run.tool)
    with _lock:
        if run in _failed:
            pytest.fail(_failed[run])
        if run not in _done and not all(_fresh(out, run.target) for out in run.outputs):
            # Another pytest-xdist worker may want the same run now (test_debian_image.py and
            # this module's tests land on either): one runs the tool, the other waits and
            # finds the outputs fresh.
            folder = run.outputs[0].path.parent
            folder.mkdir(parents=True, exist_ok=True)
            with open(folder / f".{run.target.name}.lock", "w") as held:
                fcntl.flock(held, fcntl.LOCK_EX)
                if not all(_fresh(out, run.target) for out in run.outputs):
                    failure = _generate(run)
                    if failure is not None:
                        _failed[run] = failure
                        pytest.fail(failure)
        _done.add(run)
    return output.path


TIMINGS: dict[str, float] = {}
"""Seconds each run made this session took, by `tool:target:formats`."""


def _generate(run: Run) -> str | None:
    """Run the tool; None when it wrote every output, else why not (with its stderr tail)."""
    folder = run.outputs[0].path.parent
    folder.mkdir(parents=True, exist_ok=True)
    for extra in ("TRIVY_CACHE_DIR", "CDXGEN_TEMP_DIR", "SYFT_CACHE_DIR"):
        if extra in run.env:
            Path(run.env[extra]).mkdir(parents=True, exist_ok=True)
    _HOME.mkdir(parents=True, exist_ok=True)
    partial = {out: out.path.with_name(out.path.name + ".partial") for out in run.outputs}
    for path in partial.values():
        path.unlink(missing_ok=True)
    argv = run.argv(partial)
    started = time.monotonic()
    proc = subprocess.run(
        argv,
        capture_output=True,
        text=True,
        timeout=TOOL_TIMEOUT,
        env=_env(run.env),
        cwd=run.cwd,
        stdin=subprocess.DEVNULL,
    )
    formats = "+".join(out.format for out in run.outputs)
    TIMINGS[f"{run.tool}:{run.target.name}:{formats}"] = time.monotonic() - started
    missing = [
        str(path) for path in partial.values() if not path.is_file() or not path.stat().st_size
    ]
    if proc.returncode != 0 or missing:
        stderr = re.sub(r"\x1b\[[0-9;]*m", "", proc.stderr or proc.stdout)
        return (
            f"{run.tool} over {run.target.name} exited {proc.returncode}"
            + (f", and wrote no {', '.join(missing)}" if missing else "")
            + f":\n$ {' '.join(argv)}\n{_tail(stderr)}"
        )
    for out, path in partial.items():
        path.replace(out.path)
    return None
