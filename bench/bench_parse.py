"""Parse-time benchmark of the SBOM fast path (prints figures; asserts nothing).

    python bench/bench_parse.py [--skip-cyclonedx-lib]

For 5,000- and 20,000-component CycloneDX JSON SBOMs: the median of 5 cold parses (purl and
license caches cleared before each, so the figure is that of an SBOM never seen before) and of
5 warm ones; then one `cyclonedx.model.bom.Bom.from_json` on the 5,000 one for comparison.
"""

from __future__ import annotations

import gc
import statistics
import sys
import time
from pathlib import Path

import orjson

sys.path.insert(0, str(Path(__file__).resolve().parent))

from sbomgate.sbom import licenses, parse_sbom, purl
from sbomgen import make_cyclonedx


def _clear_caches() -> None:
    purl.parse_purl.cache_clear()
    licenses.clear_caches()


def _median_ms(data: bytes, *, cold: bool, runs: int = 5) -> float:
    times = []
    for _ in range(runs):
        if cold:
            _clear_caches()
        gc.collect()  # start each run from the same heap; freeing the last result is untimed
        start = time.perf_counter()
        sbom = parse_sbom(data, source="bench")
        times.append(time.perf_counter() - start)
        del sbom
    return statistics.median(times) * 1000


def main() -> None:
    parse_sbom(orjson.dumps(make_cyclonedx(50, seed=99)), source="warmup")  # imports, licensing
    docs = {}
    for n in (5_000, 20_000):
        data = orjson.dumps(make_cyclonedx(n))
        docs[n] = data
        cold = _median_ms(data, cold=True)
        warm = _median_ms(data, cold=False)
        print(
            f"sbomgate parse_sbom  {n:>6} components ({len(data) / 1e6:.1f} MB): "
            f"{cold:7.1f} ms cold caches, {warm:7.1f} ms warm (median of 5)"
        )
    if "--skip-cyclonedx-lib" in sys.argv:
        return
    from cyclonedx.model.bom import Bom

    data = docs[5_000]
    start = time.perf_counter()
    Bom.from_json(orjson.loads(data))  # type: ignore[attr-defined]
    elapsed = (time.perf_counter() - start) * 1000
    print(f"cyclonedx-python-lib Bom.from_json  5000 components: {elapsed:7.1f} ms (once)")


if __name__ == "__main__":
    main()
