package cloudsmith_test

import rego.v1

import data.cloudsmith

# sbomgate matches data.sbomgate.blocklist in Python (controller/sbomgate/intel/lists.py,
# tests/test_lists.py) and hands the entries naming the package over as input.v0.lists.blocklist.

_pkg(purl, hits) := {"v0": {
	"package": {"name": "requests", "version": "2.31.0", "format": "python", "purl": purl, "license": null},
	"lists": {"allow": [], "blocklist": hits, "quarantine": []},
	"osv": null,
	"repository": null,
	"sbom": null,
}}

_requests(hits) := _pkg("pkg:pypi/requests@2.31.0", hits)

_hit(entry, version, uncertain) := {"entry": entry, "version": version, "reason": null, "uncertain": uncertain}

test_no_hits_never_match if {
	not cloudsmith.match with input as _requests([])
	count(cloudsmith.reason) == 0 with input as _requests([])
}

test_exact_entry if {
	cloudsmith.match with input as _requests([_hit("python:requests:2.31.0", "2.31.0", null)])
}

test_every_version if {
	cloudsmith.match with input as _requests([_hit("python:requests", "*", null)])
}

test_reason if {
	r := cloudsmith.reason with input as _requests([_hit("python:requests:2.31.0", "2.31.0", null)])
	r == {"pkg:pypi/requests@2.31.0 is on the package blocklist (entry python:requests:2.31.0)"}
}

test_uncertain_version_still_denied if {
	why := "the version could not be compared with the entry's 1.3.0 ('latest' is not a valid npm version)"
	inp := _pkg("pkg:npm/left-pad@latest", [_hit("npm:left-pad:1.3.0", "1.3.0", why)])
	r := cloudsmith.reason with input as inp
	r == {"pkg:npm/left-pad@latest is on the package blocklist (entry npm:left-pad:1.3.0; the version could not be compared with the entry's 1.3.0 ('latest' is not a valid npm version), so the entry is taken to apply)"}
}

test_name_when_no_purl if {
	inp := {"v0": {"package": {"name": "x", "version": "1", "purl": null}, "lists": {"blocklist": [_hit("npm:x", "*", null)]}}}
	r := cloudsmith.reason with input as inp
	r == {"x@1 is on the package blocklist (entry npm:x)"}
}

test_data_alone_does_not_match if {
	not cloudsmith.match with input as _requests([]) with data.sbomgate.blocklist as ["python:requests"]
}

test_malformed_hits_ignored if {
	not cloudsmith.match with input as _requests([1, null, "", {"entry": 3}, {"version": "*"}])
	not cloudsmith.match with input as {"v0": {"lists": {"blocklist": "python:requests"}}}
}

test_null_package_not_matched if {
	not cloudsmith.match with input as {"v0": {"package": null}}
	not cloudsmith.match with input as {}
	not cloudsmith.match with input as {"v0": {"lists": null}}
}
