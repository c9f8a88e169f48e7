# METADATA
# title: Package integrity
# description: >-
#   Refuse a package whose hash in the SBOM differs from every hash the trusted
#   repository lists for that version: the artifact in the image is not the one
#   that was published (a tampered build, a poisoned cache, or a mislabelled
#   package).
# custom:
#   action: Deny
#   precedence: 45
#   terminal: false
package cloudsmith

import rego.v1

default match := false

# `match` reads only what decides it, not the package's name (which only the reason
# shows), so that its outcome is reused across packages (policy/outcomes.py): it holds
# exactly when `reason` has a message (a test checks both on every bundled policy's inputs).
match if is_string(input.v0.package.upstream_metadata.checksum_mismatch)

reason contains msg if {
	mismatch := input.v0.package.upstream_metadata.checksum_mismatch
	is_string(mismatch)
	msg := sprintf(
		"%s does not match the trusted repository's published artifact (%s): rebuild from the published package, or find out where this one came from",
		[_pkg, mismatch],
	)
}

_pkg := p if {
	p := input.v0.package.purl
	is_string(p)
	p != ""
} else := sprintf("%s@%s", [n, v]) if {
	n := input.v0.package.name
	is_string(n)
	v := input.v0.package.version
	is_string(v)
} else := n if {
	n := input.v0.package.name
	is_string(n)
} else := "package"
