package cloudsmith_test

import rego.v1

import data.cloudsmith

_pkg(mismatch) := {"v0": {
	"package": {
		"purl": "pkg:pypi/requests@2.32.3",
		"upstream_metadata": {"published_at": null, "checksum_mismatch": mismatch},
	},
	"osv": null,
	"repository": {"name": "pypi-trusted"},
}}

test_mismatch_denies if {
	cloudsmith.match with input as _pkg("sha256 1234 is not one of the 2 hashes of pypi-trusted")
	some msg in cloudsmith.reason with input as _pkg("sha256 1234 is not one of the 2 hashes of pypi-trusted")
	contains(msg, "does not match the trusted repository")
}

test_no_mismatch_passes if {
	not cloudsmith.match with input as _pkg(null)
}

test_missing_metadata_passes if {
	not cloudsmith.match with input as {"v0": {"package": {"purl": "pkg:npm/a@1"}}}
}

test_null_package_passes if {
	not cloudsmith.match with input as {"v0": {"package": null}}
}

test_reason_names_the_package_and_the_mismatch if {
	some msg in cloudsmith.reason with input as _pkg("sha256 abcd is not one of the hashes of pypi-trusted")
	startswith(msg, "pkg:pypi/requests@2.32.3 does not match")
	contains(msg, "sha256 abcd is not one of the hashes of pypi-trusted")
}

test_non_string_mismatch_passes if {
	not cloudsmith.match with input as _pkg(true)
	not cloudsmith.match with input as _pkg({"sha256": "x"})
}

test_missing_upstream_metadata_passes if {
	not cloudsmith.match with input as {"v0": {"package": {"purl": "pkg:npm/a@1", "upstream_metadata": null}}}
}

test_empty_input_passes if {
	not cloudsmith.match with input as {}
}
