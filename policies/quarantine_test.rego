package cloudsmith_test

import rego.v1

import data.cloudsmith

_pkg(purl, version) := {"v0": {
	"package": {"name": "x", "version": version, "format": "python", "purl": purl, "license": null},
	"osv": null,
	"repository": {"name": "trusted"},
	"sbom": null,
}}

_foo(v) := _pkg(sprintf("pkg:pypi/foo@%s", [v]), v)

_q(inp, entries) if cloudsmith.match with input as inp with data.sbomgate.quarantine as entries

test_no_data_never_matches if {
	not cloudsmith.match with input as _foo("1.2.3")
	count(cloudsmith.reason) == 0 with input as _foo("1.2.3")
}

test_exact_version if {
	_q(_foo("1.2.3"), [{"purl": "pkg:pypi/foo@1.2.3"}])
	not _q(_foo("1.2.4"), [{"purl": "pkg:pypi/foo@1.2.3"}])
}

test_exact_version_non_semver if {
	# exact entries compare strings: no semver needed
	_q(_foo("0.15"), [{"purl": "pkg:pypi/foo@0.15"}])
	_q(_foo("1.0.0rc1"), [{"purl": "pkg:pypi/foo@1.0.0rc1"}])
}

test_other_package_not_matched if {
	not _q(_foo("1.2.3"), [{"purl": "pkg:pypi/foobar@1.2.3"}])
	not _q(_foo("1.2.3"), [{"purl": "pkg:npm/foo@1.2.3"}])
}

test_all_versions if {
	_q(_foo("9.9.9"), [{"purl": "pkg:pypi/foo"}])
}

test_reason_exact if {
	r := cloudsmith.reason with input as _foo("1.2.3") with data.sbomgate.quarantine as [{"purl": "pkg:pypi/foo@1.2.3", "reason": "typosquat of foo-lib"}]
	r == {"pkg:pypi/foo@1.2.3 is quarantined by entry pkg:pypi/foo@1.2.3: typosquat of foo-lib"}
}

test_reason_range_default_text if {
	r := cloudsmith.reason with input as _foo("1.5.0") with data.sbomgate.quarantine as [{"purl": "pkg:pypi/foo", "vers": "vers:pypi/>=1.0.0|<2.0.0"}]
	r == {"pkg:pypi/foo@1.5.0 is quarantined by entry pkg:pypi/foo vers:pypi/>=1.0.0|<2.0.0: no reason given"}
}

test_reason_all_versions if {
	r := cloudsmith.reason with input as _foo("1.5.0") with data.sbomgate.quarantine as [{"purl": "pkg:pypi/foo", "reason": "compromised maintainer"}]
	r == {"pkg:pypi/foo@1.5.0 is quarantined by entry pkg:pypi/foo (all versions): compromised maintainer"}
}

_range := [{"purl": "pkg:pypi/foo", "vers": "vers:pypi/>=1.0.0|<2.0.0"}]

test_range_inside if {
	_q(_foo("1.0.0"), _range)
	_q(_foo("1.9.9"), _range)
}

test_range_outside if {
	not _q(_foo("0.9.0"), _range)
	not _q(_foo("2.0.0"), _range)
	not _q(_foo("2.0.1"), _range)
}

test_range_exclusive_inclusive if {
	e := [{"purl": "pkg:pypi/foo", "vers": "vers:pypi/>1.0.0|<=2.0.0"}]
	not _q(_foo("1.0.0"), e)
	_q(_foo("1.0.1"), e)
	_q(_foo("2.0.0"), e)
}

test_range_constraint_order_irrelevant if {
	_q(_foo("1.5.0"), [{"purl": "pkg:pypi/foo", "vers": "vers:pypi/<2.0.0|>=1.0.0"}])
}

test_enumerated_versions if {
	e := [{"purl": "pkg:npm/left-pad", "vers": "vers:npm/1.2.3|1.2.4"}]
	_q(_pkg("pkg:npm/left-pad@1.2.4", "1.2.4"), e)
	_q(_pkg("pkg:npm/left-pad@1.2.3", "1.2.3"), e)
	not _q(_pkg("pkg:npm/left-pad@1.2.5", "1.2.5"), e)
}

test_star if {
	_q(_foo("0.15"), [{"purl": "pkg:pypi/foo", "vers": "vers:pypi/*"}])
}

test_open_ended if {
	lt := [{"purl": "pkg:pypi/foo", "vers": "vers:pypi/<1.0.0"}]
	_q(_foo("0.9.0"), lt)
	not _q(_foo("1.0.0"), lt)
	ge := [{"purl": "pkg:pypi/foo", "vers": "vers:pypi/>=3.0.0"}]
	_q(_foo("3.1.0"), ge)
	not _q(_foo("2.9.0"), ge)
}

test_multiple_intervals if {
	e := [{"purl": "pkg:pypi/foo", "vers": "vers:pypi/<1.0.0|>=2.0.0|<2.5.0|>=3.0.0"}]
	_q(_foo("0.5.0"), e)
	not _q(_foo("1.5.0"), e)
	_q(_foo("2.1.0"), e)
	not _q(_foo("2.7.0"), e)
	_q(_foo("4.0.0"), e)
}

test_not_equal if {
	e := [{"purl": "pkg:pypi/foo", "vers": "vers:pypi/>=1.0.0|!=1.5.0|<2.0.0"}]
	_q(_foo("1.4.0"), e)
	not _q(_foo("1.5.0"), e)
	only := [{"purl": "pkg:pypi/foo", "vers": "vers:pypi/!=1.5.0"}]
	_q(_foo("1.4.0"), only)
	not _q(_foo("1.5.0"), only)
}

test_equal_operator_and_spaces if {
	_q(_foo("1.5.0"), [{"purl": "pkg:pypi/foo", "vers": "vers:pypi/ =1.5.0 | 1.6.0 "}])
}

test_purl_normalisation if {
	_q(_pkg("pkg:pypi/Foo_Bar@1.0.0", "1.0.0"), [{"purl": "pkg:pypi/foo-bar@1.0.0"}])
	_q(_pkg("pkg:pypi/foo.bar@1.0.0?extension=whl#sub", "1.0.0"), [{"purl": "pkg:pypi/FOO_BAR"}])
}

test_scoped_npm if {
	inp := _pkg("pkg:npm/%40acme/util@2.0.0", "2.0.0")
	_q(inp, [{"purl": "pkg:npm/@acme/util@2.0.0"}])
	_q(inp, [{"purl": "pkg:npm/@acme/util", "vers": "vers:npm/>=2.0.0"}])
	not _q(inp, [{"purl": "pkg:npm/util@2.0.0"}])
}

test_namespaced_purl if {
	inp := _pkg("pkg:maven/org.apache.logging.log4j/log4j-core@2.14.1", "2.14.1")
	_q(inp, [{"purl": "pkg:maven/org.apache.logging.log4j/log4j-core", "vers": "vers:maven/>=2.0.0|<2.17.1"}])
	not _q(inp, [{"purl": "pkg:maven/other/log4j-core@2.14.1"}])
}

test_version_from_package_when_purl_has_none if {
	_q(_pkg("pkg:pypi/foo", "1.2.3"), [{"purl": "pkg:pypi/foo@1.2.3"}])
}

test_null_and_missing_inputs if {
	not _q({}, [{"purl": "pkg:pypi/foo"}])
	not _q({"v0": {"package": null}}, [{"purl": "pkg:pypi/foo"}])
	not _q(_pkg(null, null), [{"purl": "pkg:pypi/foo"}])
	not _q(_pkg("not-a-purl", "1.0.0"), [{"purl": "pkg:pypi/foo"}])
}

test_bad_entries_ignored if {
	bad := [null, 1, "pkg:pypi/foo", {"purl": null}, {"purl": 5}, {"purl": "foo"}, {"vers": "vers:pypi/*"}]
	not _q(_foo("1.0.0"), bad)
	not cloudsmith.match with input as _foo("1.0.0") with data.sbomgate.quarantine as {"purl": "pkg:pypi/foo"}
}

test_bad_vers_type_means_all_versions_ignored_vers if {
	# a non-string vers is ignored, so the entry names every version
	_q(_foo("1.0.0"), [{"purl": "pkg:pypi/foo", "vers": 7}])
}
