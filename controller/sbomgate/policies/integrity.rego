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

match if count(reason) > 0

reason contains msg if {
	mismatch := input.v0.package.upstream_metadata.checksum_mismatch
	is_string(mismatch)
	msg := sprintf(
		"%s does not match the trusted repository's published artifact (%s): rebuild from the published package, or find out where this one came from",
		[input.v0.package.purl, mismatch],
	)
}
