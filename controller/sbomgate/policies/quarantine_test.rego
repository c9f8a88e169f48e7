package cloudsmith_test

import rego.v1

import data.cloudsmith

# sbomgate matches data.sbomgate.quarantine in Python (controller/sbomgate/intel/lists.py,
# tests/test_lists.py) and hands the entries naming the package over as input.v0.lists.quarantine.

_pkg(purl, hits) := {"v0": {
	"package": {"name": "foo", "version": "1.2.3", "format": "python", "purl": purl, "license": null},
	"lists": {"allow": [], "blocklist": [], "quarantine": hits},
	"osv": null,
	"repository": {"name": "trusted"},
	"sbom": null,
}}

_foo(hits) := _pkg("pkg:pypi/foo@1.2.3", hits)

_hit(entry, version, reason, uncertain) := {"entry": entry, "version": version, "reason": reason, "uncertain": uncertain}

test_no_hits_never_match if {
	not cloudsmith.match with input as _foo([])
	count(cloudsmith.reason) == 0 with input as _foo([])
}

test_exact_entry if {
	cloudsmith.match with input as _foo([_hit("pkg:pypi/foo@1.2.3", "1.2.3", null, null)])
}

test_reason_exact if {
	r := cloudsmith.reason with input as _foo([_hit("pkg:pypi/foo@1.2.3", "1.2.3", "typosquat of foo-lib", null)])
	r == {"pkg:pypi/foo@1.2.3 is quarantined by entry pkg:pypi/foo@1.2.3: typosquat of foo-lib"}
}

test_reason_range_default_text if {
	r := cloudsmith.reason with input as _foo([_hit("pkg:pypi/foo vers:pypi/>=1.0.0|<2.0.0", "vers:pypi/>=1.0.0|<2.0.0", null, null)])
	r == {"pkg:pypi/foo@1.2.3 is quarantined by entry pkg:pypi/foo vers:pypi/>=1.0.0|<2.0.0: no reason given"}
}

test_reason_all_versions if {
	r := cloudsmith.reason with input as _foo([_hit("pkg:pypi/foo (all versions)", "*", "compromised maintainer", null)])
	r == {"pkg:pypi/foo@1.2.3 is quarantined by entry pkg:pypi/foo (all versions): compromised maintainer"}
}

test_uncertain_version_still_quarantines if {
	why := "the version could not be compared with the entry's vers:npm/>=3.3.6|<4.0.0 ('latest' is not a valid npm version)"
	inp := _pkg("pkg:npm/event-stream@latest", [_hit("pkg:npm/event-stream vers:npm/>=3.3.6|<4.0.0", "vers:npm/>=3.3.6|<4.0.0", "backdoor", why)])
	cloudsmith.match with input as inp
	r := cloudsmith.reason with input as inp
	r == {"pkg:npm/event-stream@latest is quarantined by entry pkg:npm/event-stream vers:npm/>=3.3.6|<4.0.0: backdoor (the version could not be compared with the entry's vers:npm/>=3.3.6|<4.0.0 ('latest' is not a valid npm version), so the entry is taken to apply)"}
}

test_several_entries if {
	r := cloudsmith.reason with input as _foo([_hit("a", "*", null, null), _hit("b", "1.2.3", "x", null)])
	count(r) == 2
}

test_empty_reason_and_uncertain_are_ignored if {
	r := cloudsmith.reason with input as _foo([_hit("pkg:pypi/foo@1.2.3", "1.2.3", "", "")])
	r == {"pkg:pypi/foo@1.2.3 is quarantined by entry pkg:pypi/foo@1.2.3: no reason given"}
}

test_package_without_purl if {
	inp := {"v0": {"package": {"name": "foo", "purl": null}, "lists": {"quarantine": [_hit("pkg:pypi/foo (all versions)", "*", null, null)]}}}
	r := cloudsmith.reason with input as inp
	r == {"package is quarantined by entry pkg:pypi/foo (all versions): no reason given"}
}

test_data_alone_does_not_match if {
	# the entries are matched by sbomgate, not by this policy
	not cloudsmith.match with input as _foo([]) with data.sbomgate.quarantine as [{"purl": "pkg:pypi/foo"}]
}

test_null_and_missing_inputs if {
	not cloudsmith.match with input as {}
	not cloudsmith.match with input as {"v0": {"package": null}}
	not cloudsmith.match with input as {"v0": {"lists": null}}
	not cloudsmith.match with input as {"v0": {"lists": {"quarantine": null}}}
}

test_malformed_hits_ignored if {
	not cloudsmith.match with input as _foo([null, 1, "pkg:pypi/foo", {"entry": null}, {"entry": 5}, {"version": "*"}])
	not cloudsmith.match with input as {"v0": {"lists": {"quarantine": {"entry": "x"}}}}
}
