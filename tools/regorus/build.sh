#!/usr/bin/env bash
# Build the regorus binding sbomgate runs, into OUT/wheel (the argument):
# gordon-to-regorus 0.13.0's source distribution from PyPI (pinned below by its sha256) with
# sbomgate.patch applied, built by maturin (requirements-build.lock, by hash) and cargo, its
# crates at the versions of the source's own Cargo.lock (--locked).
#
# Why a patched build and not PyPI's wheel: the binding does not expose regorus' non-strict
# builtin errors (OPA's default: a builtin's error makes its call undefined, not the whole
# evaluation an error), and two builtins misbehave when not strict (numbers.range_step with a
# negative step panicked; json.match_schema answered for an invalid schema). The patch says
# what it changes, and the wheel's version carries it as a local label (0.13.0+sbomgate.18).
set -euo pipefail

SDIST_URL=https://files.pythonhosted.org/packages/c8/fc/3d363e54ae3d3a0804b03bbf0dcb047b72f1fc78c16f0710fc95fa1c6c86/gordon_to_regorus-0.13.0.tar.gz
SDIST_SHA256=e34bf5dddd83c939c4689823f073a38aaf908def153148dae43c2d6ad3bf5bfc

here=$(cd "$(dirname "$0")" && pwd)
out=$(mkdir -p "$1" && cd "$1" && pwd)
python=${PYTHON:-python3}

if ! command -v cargo >/dev/null; then
    echo "cargo not found: the regorus binding is built from source; install Rust (rustup.rs) and retry" >&2
    exit 1
fi
rm -rf "$out/maturin" "$out/src" "$out/wheel"
"$python" -m venv "$out/maturin"
"$out/maturin/bin/python" -m pip install -q --require-hashes --only-binary :all: \
    -r "$here/requirements-build.lock"

sdist="$out/$(basename "$SDIST_URL")"
if ! echo "$SDIST_SHA256  $sdist" | sha256sum -c --status 2>/dev/null; then
    curl -fsSL --retry 3 -o "$sdist.part" "$SDIST_URL"
    echo "$SDIST_SHA256  $sdist.part" | sha256sum -c --quiet
    mv "$sdist.part" "$sdist"
fi
mkdir "$out/src"
tar -xzf "$sdist" -C "$out/src" --strip-components=1
patch -s -d "$out/src" -p1 < "$here/sbomgate.patch"
# Crates are downloaded into the project's cache, not the user's ~/.cargo.
export CARGO_HOME="$out/cargo-home" CARGO_TARGET_DIR="$out/target"
(cd "$out/src" && "$out/maturin/bin/maturin" build --release --locked -o "$out/wheel") \
    >"$out/build.log" 2>&1 || { tail -40 "$out/build.log" >&2; exit 1; }
ls "$out"/wheel/gordon_to_regorus-0.13.0+sbomgate.18-*.whl >/dev/null
rm -rf "$out/src" "$out/target"  # half a gigabyte; a new patch builds afresh anyway
