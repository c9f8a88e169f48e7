"""An in-memory index of OSV exports, matched against package versions.

Sources are OSV's per-ecosystem `all.zip` files (a zip of OSV JSON records) or directories
(searched recursively) of `.json` records and `.zip` exports. Only what matching needs is kept
per `affected[]` entry: the `versions` list and the `ECOSYSTEM`/`SEMVER` ranges with their
events (`GIT` ranges cannot be evaluated against a package version and are dropped). The record
itself is kept as compact JSON bytes and parsed only when it matches.

Results are OSV records (dicts) with, added by us:
- `severity[].numerical_score`: the CVSS base score computed from the vector (V2, V3.x, V4);
  entries whose vector does not parse are left without it;
- `malware: true` when the advisory is a malicious-package report (an `MAL-` id or alias);
- merged `aliases` when several records of the index are one advisory (a GHSA and its CVE, or
  the same id loaded twice): one record is kept, and the others' ids and aliases become its
  aliases;
- `uncertain`: why the package's version could not be compared with the record's affected
  versions (no version, a version the ecosystem's order cannot place, such as `latest`, or
  range events it cannot place). Advisories feed deny rules, and a deny rule never fails open:
  such a record is returned, flagged, rather than dropped. A record whose range covers every
  version (`introduced: 0` and nothing else) matches a package without a version for certain.
Withdrawn records (`withdrawn` set) never match.

Packages are looked up by their canonical identity (`sbomgate.identity`): the purl's name and
version, whatever the SBOM's own fields say.
"""

from __future__ import annotations

import logging
import os
import sys
import threading
import time
import zipfile
import zlib
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

import cvss  # type: ignore[import-untyped]
import orjson

from sbomgate.errors import InputError
from sbomgate.identity import identity_of, pep503
from sbomgate.intel.ecosystems import (
    UncomparableVersion,
    identity_ecosystem,
    normalize_name,
    osv_name,
    osv_version,
    semver_key,
    version_key,
)
from sbomgate.sbom.model import Component

__all__ = [
    "OsvIndex",
    "OsvLoadError",
    "ReloadingOsvIndex",
    "load_osv",
    "numerical_score",
]

log = logging.getLogger(__name__)

MAX_RECORD_BYTES = 16 << 20

# Records are small (~1-3 KiB) and alike: a preset dictionary of OSV's field names and common
# values makes raw deflate shrink them by about a third more than plain zlib.
_ZDICT = (
    b'"credits":[{"name":"","type":"FINDER"}],"database_specific":{"nvd_published_at":'
    b'"github_reviewed_at":"","github_reviewed":true,"severity":"MODERATE","severity":"HIGH",'
    b'"cwe_ids":["CWE-'
    b'{"type":"PACKAGE","url":"https://github.com/"},{"type":"FIX","url":"https://github.com/'
    b'{"type":"REPORT","url":"https://github.com/{"type":"WEB","url":"https://'
    b'"references":[{"type":"ADVISORY","url":"https://nvd.nist.gov/vuln/detail/CVE-'
    b'"ecosystem_specific":{"affected_functions":["'
    b'{"type":"GIT","repo":"https://github.com/'
    b'"ranges":[{"type":"SEMVER","events":[{"introduced":"0"},{"fixed":"'
    b'"affected":[{"package":{"ecosystem":"PyPI","name":"","purl":"pkg:pypi/'
    b'"affected":[{"package":{"ecosystem":"Maven","name":"","purl":"pkg:maven/'
    b'"affected":[{"package":{"ecosystem":"Go","name":"","purl":"pkg:golang/'
    b'"affected":[{"package":{"ecosystem":"npm","name":"","purl":"pkg:npm/'
    b'"severity":[{"type":"CVSS_V4","score":"CVSS:4.0/AV:N/AC:L/AT:N/PR:N/UI:N/VC:H/VI:H/VA:H'
    b'/SC:N/SI:N/SA:N"}],"severity":[{"type":"CVSS_V3","score":"CVSS:3.1/AV:N/AC:L/PR:N/UI:N/'
    b'S:U/C:H/I:H/A:H"}],'
    b'"versions":["'
    b'"ranges":[{"type":"ECOSYSTEM","events":[{"introduced":"0"},{"fixed":"'
    b'{"schema_version":"1.6.0","id":"GHSA-","modified":"","published":"",'
    b'"aliases":["CVE-'
    b'"summary":"","details":"'
)
_ZWBITS, _ZLEVEL, _ZMEM = -12, 1, 5


def _compress(data: bytes) -> bytes:
    c = zlib.compressobj(_ZLEVEL, zlib.DEFLATED, _ZWBITS, _ZMEM, zlib.Z_DEFAULT_STRATEGY, _ZDICT)
    return c.compress(data) + c.flush()


def _decompress(data: bytes) -> bytes:
    d = zlib.decompressobj(_ZWBITS, _ZDICT)
    return d.decompress(data) + d.flush()


# Event kinds, stored as small ints.
# Ranges are kept as one string per affected[] entry (a few tuples per event would cost
# several hundred bytes a record): ranges separated by RS, each one a type letter followed by
# events, each US + event letter + version.
_INTRODUCED, _FIXED, _LAST_AFFECTED, _LIMIT = "i", "f", "l", "m"
_EVENT_KINDS = {
    "introduced": _INTRODUCED,
    "fixed": _FIXED,
    "last_affected": _LAST_AFFECTED,
    "limit": _LIMIT,
}
_SEMVER_RANGE, _ECOSYSTEM_RANGE = "S", "E"
_RS, _US = "\x1e", "\x1f"
_SEPARATORS = ("\0", _RS, _US)

# (record number, versions as "\0v1\0v2\0" (`"\0" + v + "\0" in s`), encoded ranges)
_Entry = tuple[int, str | None, str | None]


class OsvLoadError(InputError):
    """An export that cannot be read at all (missing, not a zip, ...): the path given is
    wrong, so the user's to fix."""


@lru_cache(maxsize=4096)
def _score(kind: str, vector: str) -> float | None:
    try:
        if kind == "CVSS_V3":
            return float(cvss.CVSS3(vector).base_score)
        if kind == "CVSS_V4":
            return float(cvss.CVSS4(vector).base_score)
        if kind == "CVSS_V2":
            return float(cvss.CVSS2(vector).base_score)
    except Exception:  # the cvss library raises several unrelated types on bad vectors
        return None
    return None


def numerical_score(severity: dict[str, Any]) -> float | None:
    """The CVSS base score of one OSV `severity[]` entry, or None if it does not parse."""
    kind, vector = severity.get("type"), severity.get("score")
    if not isinstance(kind, str) or not isinstance(vector, str):
        return None
    return _score(kind, vector)


def _is_malware(record: dict[str, Any]) -> bool:
    ids = [record.get("id"), *(record.get("aliases") or ())]
    return any(isinstance(i, str) and i.startswith("MAL-") for i in ids)


class _Counter:
    __slots__ = ("skipped",)

    def __init__(self) -> None:
        self.skipped = 0


@dataclass(slots=True, kw_only=True)
class OsvIndex:
    """OSV records indexed by (ecosystem, normalised package name)."""

    _records: list[bytes] = field(default_factory=list)  # compact JSON, raw deflate
    _by_package: dict[tuple[str, str], list[_Entry]] = field(default_factory=dict)
    # Every indexed name, PEP 503-folded: a package whose folded name is not among them has no
    # record in any ecosystem (most packages of an image), and is ruled out before its
    # ecosystem is worked out (about 3 µs a package, 15 ms of a never-seen 5,000-package image).
    # Folding is coarser than every ecosystem's `normalize_name`, so no match is ruled out.
    _folded_names: set[str] = field(default_factory=set)
    skipped: int = 0
    sources: tuple[str, ...] = ()

    def __len__(self) -> int:
        return len(self._records)

    @property
    def package_count(self) -> int:
        """How many (ecosystem, package) pairs have records."""
        return len(self._by_package)

    # --- building ----------------------------------------------------------------------------

    def add_record(self, record: Any, origin: str = "<record>") -> bool:
        """Index one OSV record (a parsed dict). False (and a warning) if it is malformed."""
        try:
            self._add(record)
        except (TypeError, ValueError, KeyError, AttributeError) as exc:
            log.warning("skipping malformed OSV record %s: %s", origin, exc)
            self.skipped += 1
            return False
        return True

    def _add(self, record: Any) -> None:
        if not isinstance(record, dict):
            raise TypeError("not a JSON object")
        rid = record.get("id")
        if not isinstance(rid, str) or not rid:
            raise ValueError("no id")
        aliases = record.get("aliases")
        if aliases is not None and (
            not isinstance(aliases, list) or not all(isinstance(x, str) for x in aliases)
        ):
            raise TypeError("aliases is not a list of strings")
        affected = record.get("affected")
        if affected is None:
            affected = []
        if not isinstance(affected, list):
            raise TypeError("affected is not a list")
        entries: list[tuple[tuple[str, str], _Entry]] = []
        number = len(self._records)
        for aff in affected:
            if not isinstance(aff, dict):
                raise TypeError("affected[] entry is not an object")
            pkg = aff.get("package")
            if not isinstance(pkg, dict):
                continue  # OSV allows affected entries without a package (e.g. GIT-only)
            eco, name = pkg.get("ecosystem"), pkg.get("name")
            if not isinstance(eco, str) or not isinstance(name, str) or not eco or not name:
                raise ValueError("affected[].package lacks ecosystem or name")
            versions = aff.get("versions")
            vset: str | None = None
            if versions:
                if not isinstance(versions, list) or not all(isinstance(v, str) for v in versions):
                    raise TypeError("affected[].versions is not a list of strings")
                if any(c in v for v in versions for c in _SEPARATORS):
                    raise ValueError("control character in a version")
                vset = "\0" + "\0".join(versions) + "\0"
            ranges: list[str] = []
            for rng in aff.get("ranges") or ():
                if not isinstance(rng, dict):
                    raise TypeError("range is not an object")
                rtype = rng.get("type")
                if rtype == "GIT":
                    continue
                if rtype not in ("SEMVER", "ECOSYSTEM"):
                    continue
                events = rng.get("events")
                if not isinstance(events, list) or not events:
                    raise ValueError("range without events")
                evs = [_SEMVER_RANGE if rtype == "SEMVER" else _ECOSYSTEM_RANGE]
                for ev in events:
                    if not isinstance(ev, dict) or len(ev) != 1:
                        raise ValueError(f"bad event {ev!r}")
                    ((k, v),) = ev.items()
                    if not isinstance(v, str) or not v:
                        raise TypeError("event version is not a non-empty string")
                    if any(c in v for c in _SEPARATORS):
                        raise ValueError("control character in an event version")
                    kind = _EVENT_KINDS.get(k)
                    if kind is None:
                        raise ValueError(f"unknown event {k!r}")
                    evs.append(kind + v)
                ranges.append(_US.join(evs))
            if vset is None and not ranges:
                continue
            key = (sys.intern(eco), sys.intern(normalize_name(eco, name)))
            entries.append((key, (number, vset, _RS.join(ranges) if ranges else None)))
        # Commit only once the whole record validated.
        # Compressing also gives an exact-size bytes object: orjson's own output keeps its
        # (several KiB) growth buffer allocated.
        self._records.append(_compress(orjson.dumps(record)))
        for key, entry in entries:
            self._by_package.setdefault(key, []).append(entry)
            self._folded_names.add(pep503(key[1]))

    # --- matching ----------------------------------------------------------------------------

    def match(self, ecosystem: str, name: str, version: str | None) -> tuple[dict[str, Any], ...]:
        """OSV records affecting `name` at `version` in `ecosystem` (exact ecosystem string:
        `Debian:12` records are found under `Debian:12`, not `Debian`). Records that cannot be
        ruled out (see `uncertain` in the module docstring) are returned flagged."""
        entries = self._by_package.get((ecosystem, normalize_name(ecosystem, name)))
        if not entries:
            return ()
        hits: dict[int, bool] = {}  # record number -> certain
        for number, versions, ranges in entries:
            if hits.get(number):
                continue
            affects = _entry_affects(ecosystem, version, versions, ranges)
            if affects is not False:
                hits[number] = hits.get(number, False) or affects is True
        if not hits:
            return ()
        note = None if all(hits.values()) else _uncertainty(ecosystem, version)
        records = []
        for n, certain in hits.items():
            rec = orjson.loads(_decompress(self._records[n]))
            if rec.get("withdrawn"):
                continue
            if not certain:
                rec["uncertain"] = note
            records.append(rec)
        return tuple(_finish(r) for r in _dedupe(records))

    def in_force(self) -> OsvIndex:
        """This index: it never changes once built (`intel.facts.OsvMatcher`)."""
        return self

    def match_component(self, component: Component) -> tuple[dict[str, Any], ...]:
        """OSV records affecting the component, looked up by its canonical identity."""
        identity = identity_of(component)
        if identity is None:
            return ()
        name = osv_name(identity)
        if pep503(name) not in self._folded_names:
            return ()
        ecosystem = identity_ecosystem(identity)
        if ecosystem is None:
            return ()
        return self.match(ecosystem, name, osv_version(identity))


def _uncertainty(ecosystem: str, version: str | None) -> str:
    """Why a record could not be ruled out, as a clause the policies show."""
    if version is None:
        why = "the package has no version"
    else:
        try:
            version_key(ecosystem, version)
            why = f"the advisory lists versions that {ecosystem} order cannot place"
        except UncomparableVersion:
            why = f"{version!r} is not a valid {ecosystem} version"
    return f"the version could not be compared with the advisory's affected versions ({why})"


def _listed(ecosystem: str, version: str, versions: str) -> bool | None:
    """Is `version` one of the listed ones? `versions` lists are exact strings, but spellings
    differ (PyPI 1.0 vs 1.0.0, Go v1.2.3 vs 1.2.3): equal in the ecosystem's order counts.
    None when `version` itself cannot be ordered (and is not listed verbatim)."""
    if f"\0{version}\0" in versions:
        return True
    try:
        key = version_key(ecosystem, version)
    except UncomparableVersion:
        return None
    for v in versions.split("\0"):
        if not v:
            continue
        try:
            if version_key(ecosystem, v) == key:
                return True
        except UncomparableVersion:
            continue  # cannot equal an orderable version: the spellings were compared
    return False


def _entry_affects(
    ecosystem: str,
    version: str | None,
    versions: str | None,
    ranges: str | None,
) -> bool | None:
    """True (affected), False (not), or None (cannot tell: a deny rule counts it)."""
    parts = ranges.split(_RS) if ranges is not None else []
    if version is None:
        return True if any(_every_version(r) for r in parts) else None
    uncertain = False
    if versions is not None:
        listed = _listed(ecosystem, version, versions)
        if listed:
            return True
        uncertain = listed is None
    for rng in parts:
        affects = _range_affects(ecosystem, version, rng)
        if affects:
            return True
        uncertain = uncertain or affects is None
    return None if uncertain else False


_ZERO: Any = object()  # `introduced: "0"`: before every version


def _every_version(rng: str) -> bool:
    """`introduced: 0` and nothing that ends it (a `limit: *` changes nothing)."""
    _, *events = rng.split(_US)
    real = [e for e in events if e != _LIMIT + "*"]
    return bool(real) and all(e == _INTRODUCED + "0" for e in real)


def _range_affects(ecosystem: str, version: str, rng: str) -> bool | None:
    """OSV's evaluation: walk the events in version order; `introduced` turns affected on,
    `fixed` (at or above) and `last_affected` (above) turn it off; `limit` caps the range.
    Only `<` is used on keys: univers's Alpine/Gentoo versions define `<`, `>` and `==` by
    their own rules but inherit `<=`/`>=` that compare the raw strings.
    None when the version or an event cannot be placed in the order (unless the range covers
    every version)."""
    if _every_version(rng):
        return True
    kind, *events = rng.split(_US)

    def key(v: str) -> Any:
        return semver_key(v) if kind == _SEMVER_RANGE else version_key(ecosystem, v)

    try:
        target = key(version)
        keyed: list[tuple[Any, str]] = []
        limits: list[Any] = []
        for event in events:
            ev_kind, v = event[0], event[1:]
            if ev_kind == _INTRODUCED and v == "0":
                keyed.append((_ZERO, ev_kind))
            elif ev_kind == _LIMIT:
                if v != "*":
                    limits.append(key(v))
            else:
                keyed.append((key(v), ev_kind))
    except UncomparableVersion:
        return None
    if limits and not any(target < lim for lim in limits):
        return False
    zeros = [e for e in keyed if e[0] is _ZERO]
    rest = [e for e in keyed if e[0] is not _ZERO]
    # Stable sort keeps the document order for equal versions.
    rest.sort(key=lambda e: e[0])
    affected = False
    for ev_key, ev_kind in (*zeros, *rest):
        if ev_kind == _INTRODUCED:
            if ev_key is _ZERO or not target < ev_key:
                affected = True
        elif ev_kind == _FIXED:
            if not target < ev_key:
                affected = False
        elif ev_kind == _LAST_AFFECTED and ev_key < target:
            affected = False
    return affected


def _id_rank(rid: str) -> tuple[int, str]:
    # Prefer the advisory that carries package ranges over a bare CVE mirror.
    return (1 if rid.startswith("CVE-") else 0, rid)


def _dedupe(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    if len(records) < 2:
        return records
    groups: list[tuple[set[str], list[dict[str, Any]]]] = []
    for rec in records:
        names = {rec["id"], *(a for a in rec.get("aliases") or () if isinstance(a, str))}
        joined = [g for g in groups if g[0] & names]
        if not joined:
            groups.append((names, [rec]))
            continue
        first = joined[0]
        first[0].update(names)
        first[1].append(rec)
        for g in joined[1:]:
            first[0].update(g[0])
            first[1].extend(g[1])
        if len(joined) > 1:
            groups = [g for g in groups if not any(g is j for j in joined[1:])]
    out = []
    for names, members in groups:
        if len(members) == 1:
            out.append(members[0])
            continue
        members.sort(key=lambda r: (-len(r.get("severity") or ()), _id_rank(r["id"])))
        keep = members[0]
        keep["aliases"] = sorted(names - {keep["id"]})
        if not keep.get("severity"):
            for m in members[1:]:
                if m.get("severity"):
                    keep["severity"] = m["severity"]
                    break
        if any(_is_malware(m) for m in members):
            keep["malware"] = True
        if any("uncertain" not in m for m in members):
            keep.pop("uncertain", None)
        out.append(keep)
    return out


def _finish(record: dict[str, Any]) -> dict[str, Any]:
    for sev in record.get("severity") or ():
        if isinstance(sev, dict):
            score = numerical_score(sev)
            if score is not None:
                sev["numerical_score"] = score
    if _is_malware(record):
        record["malware"] = True
    return record


# --- loading ---------------------------------------------------------------------------------


def _zip_records(path: Path, counter: _Counter) -> Iterator[tuple[Any, str]]:
    try:
        zf = zipfile.ZipFile(path)
    except (OSError, zipfile.BadZipFile) as exc:
        raise OsvLoadError(f"{path}: not a readable zip: {exc}") from exc
    with zf:
        for info in zf.infolist():
            if info.is_dir() or not info.filename.endswith(".json"):
                continue
            origin = f"{path}!{info.filename}"
            if info.file_size > MAX_RECORD_BYTES:
                log.warning("skipping OSV record %s: %d bytes", origin, info.file_size)
                counter.skipped += 1
                continue
            try:
                data = zf.read(info)
            except (OSError, zipfile.BadZipFile, ValueError) as exc:
                raise OsvLoadError(f"{origin}: {exc}") from exc
            try:
                yield orjson.loads(data), origin
            except orjson.JSONDecodeError as exc:
                log.warning("skipping OSV record %s: invalid JSON: %s", origin, exc)
                counter.skipped += 1


def _dir_records(path: Path, counter: _Counter) -> Iterator[tuple[Any, str]]:
    for root, dirs, files in os.walk(path):
        dirs.sort()
        for fname in sorted(files):
            fpath = Path(root) / fname
            if fname.endswith(".zip"):
                yield from _zip_records(fpath, counter)
                continue
            if not fname.endswith(".json"):
                continue
            try:
                if fpath.stat().st_size > MAX_RECORD_BYTES:
                    log.warning("skipping OSV record %s: too large", fpath)
                    counter.skipped += 1
                    continue
                data = fpath.read_bytes()
            except OSError as exc:
                log.warning("skipping OSV record %s: %s", fpath, exc)
                counter.skipped += 1
                continue
            try:
                yield orjson.loads(data), str(fpath)
            except orjson.JSONDecodeError as exc:
                log.warning("skipping OSV record %s: invalid JSON: %s", fpath, exc)
                counter.skipped += 1


def _records(path: Path, counter: _Counter) -> Iterator[tuple[Any, str]]:
    if path.is_dir():
        yield from _dir_records(path, counter)
    elif path.is_file():
        if path.suffix == ".json":
            try:
                yield orjson.loads(path.read_bytes()), str(path)
            except orjson.JSONDecodeError as exc:
                raise OsvLoadError(f"{path}: invalid JSON: {exc}") from exc
        else:
            yield from _zip_records(path, counter)
    else:
        raise OsvLoadError(f"{path}: no such file or directory")


def load_osv(paths: Iterable[str | os.PathLike[str]]) -> OsvIndex:
    """Build an index from OSV exports. Malformed records are skipped with a warning; an
    export that cannot be read at all raises OsvLoadError."""
    index = OsvIndex()
    counter = _Counter()
    sources = []
    for p in paths:
        path = Path(p)
        sources.append(str(path))
        for record, origin in _records(path, counter):
            index.add_record(record, origin)
    index.skipped += counter.skipped
    index.sources = tuple(sources)
    return index


# --- live reloading --------------------------------------------------------------------------

_Fingerprint = tuple[tuple[str, int, int], ...]


def _fingerprint(paths: Sequence[Path]) -> _Fingerprint:
    out: list[tuple[str, int, int]] = []
    for path in paths:
        try:
            if path.is_dir():
                for root, dirs, files in os.walk(path):
                    dirs.sort()
                    for fname in sorted(files):
                        st = (Path(root) / fname).stat()
                        out.append((os.path.join(root, fname), st.st_mtime_ns, st.st_size))
            else:
                st = path.stat()
                out.append((str(path), st.st_mtime_ns, st.st_size))
        except OSError:
            out.append((str(path), -1, -1))
    return tuple(out)


class ReloadingOsvIndex:
    """An OsvIndex that follows its exports on disk.

    At most every `check_interval` seconds (triggered on access, or by `start()`'s thread) a
    background thread compares the files' mtimes and sizes with those of the last load; on a
    change it rebuilds the index while the old one keeps serving, then swaps the new one in
    with one assignment. A rebuild that fails keeps the old index and logs why (and is retried
    only once the files change again). The first load happens in the constructor; if it fails,
    no advisories are served until a later check loads the exports.
    """

    def __init__(
        self,
        paths: Iterable[str | os.PathLike[str]],
        *,
        check_interval: float = 60.0,
        loader: Callable[[Sequence[Path]], OsvIndex] | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.paths: tuple[Path, ...] = tuple(Path(p) for p in paths)
        self.check_interval = check_interval
        self._loader: Callable[[Sequence[Path]], OsvIndex] = loader or load_osv
        self._clock = clock
        self._lock = threading.Lock()
        self._rebuilding: threading.Thread | None = None
        self._stop = threading.Event()
        self._watcher: threading.Thread | None = None
        self.last_error: str | None = None
        self.generation = 0
        self._fp = _fingerprint(self.paths)
        self._last_check = self._clock()
        self._index = OsvIndex()
        try:
            self._index = self._loader(self.paths)
            self.generation = 1
        except Exception as exc:
            self.last_error = str(exc)
            log.error("OSV export could not be loaded, serving no advisories: %s", exc)
            self._fp = ()  # retry on the next check

    @property
    def index(self) -> OsvIndex:
        """The index in force, after a reload check when one is due."""
        self.maybe_reload()
        return self._index

    def match(self, ecosystem: str, name: str, version: str) -> tuple[dict[str, Any], ...]:
        """`OsvIndex.match` on the index in force."""
        return self.index.match(ecosystem, name, version)

    def in_force(self) -> OsvIndex:
        """The index in force (`index`): it is replaced whole when the exports change."""
        return self.index

    def match_component(self, component: Component) -> tuple[dict[str, Any], ...]:
        """`OsvIndex.match_component` on the index in force."""
        return self.index.match_component(component)

    def maybe_reload(self, force: bool = False) -> bool:
        """If the interval passed (or `force`), start a background check: stat the exports and,
        if they changed, rebuild. Never blocks the caller on the disk. True if a check started."""
        now = self._clock()
        if not force and now - self._last_check < self.check_interval:
            return False
        with self._lock:
            if self._rebuilding is not None and self._rebuilding.is_alive():
                return False
            self._last_check = now
            thread = threading.Thread(target=self._check, name="osv-reload", daemon=True)
            self._rebuilding = thread
            thread.start()
            return True

    def wait(self, timeout: float | None = None) -> bool:
        """Wait for a running rebuild; True if none is running afterwards."""
        thread = self._rebuilding
        if thread is not None:
            thread.join(timeout)
            return not thread.is_alive()
        return True

    def _check(self) -> None:
        fp = _fingerprint(self.paths)
        if fp != self._fp:
            self._rebuild(fp)

    def _rebuild(self, fp: _Fingerprint) -> None:
        try:
            new = self._loader(self.paths)
        except Exception as exc:
            self.last_error = str(exc)
            log.error("OSV export reload failed, keeping the previous index: %s", exc)
            self._fp = fp  # do not retry the same broken files until they change again
            return
        self._index = new  # the swap: one assignment
        self._fp = fp
        self.last_error = None
        self.generation += 1
        log.info("OSV index reloaded: %d records, %d skipped", len(new), new.skipped)

    def start(self) -> None:
        """Poll on a daemon thread instead of (as well as) on access."""
        if self._watcher is not None:
            return
        self._stop.clear()

        def loop() -> None:
            while not self._stop.wait(self.check_interval):
                self.maybe_reload(force=True)

        self._watcher = threading.Thread(target=loop, name="osv-watch", daemon=True)
        self._watcher.start()

    def stop(self) -> None:
        """Stop the background reload thread and wait for it."""
        self._stop.set()
        if self._watcher is not None:
            self._watcher.join()
            self._watcher = None
