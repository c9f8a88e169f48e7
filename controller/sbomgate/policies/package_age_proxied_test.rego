package cloudsmith_test

import rego.v1

import data.cloudsmith

# Ages (first_published_days_ago) are as sbomgate counts them at 2024-06-15T12:00:00Z; how
# timestamps are read is tested with the input builder (tests/unit/policy/test_input_ages.py).

_review := "Review it, then add it to a hosted repository or to sbomgate.allow, or fix the dependency name"

_npm(first, days, hosting) := _input("pkg:npm/left-padz@0.0.1", "npm", first, days, {"name": "npm-proxy", "url": "https://npm.acme.example/", "kind": "npm", "hosting": hosting})

_input(purl, type, first, days, repository) := {"v0": {
	"package": {
		"name": "left-padz",
		"version": "0.0.1",
		"format": type,
		"purl": purl,
		"license": null,
		"upstream_metadata": {"published_at": first, "first_published_at": first, "first_published_days_ago": days},
		"typosquat_of": null,
	},
	"identity": {"canonical": {"type": type, "package": "left-padz", "version": "0.0.1", "origin": {}, "source": null}},
	"osv": null,
	"repository": repository,
	"sbom": null,
}}

_reason(inp) := r if {
	r := cloudsmith.reason with input as inp
}

_refused(inp) if cloudsmith.match with input as inp

test_young_project_through_a_proxy_is_refused if {
	_reason(_npm("2024-06-03T11:00:00Z", 12, "proxied")) == {concat("", [
		"pkg:npm/left-padz@0.0.1: the project was first released 12 days ago (2024-06-03T11:00:00Z) ",
		"and came through npm-proxy, which is not marked hosting: hosted, so may pass a public registry's new names through: ",
		"a project this young may be a slopsquat. ",
		_review, " (projects younger than 30 days are refused through a proxy)",
	])}
}

test_singular_day if {
	r := _reason(_npm("2024-06-14T06:00:00Z", 1, "proxied"))
	some msg in r
	contains(msg, "first released 1 day ago (2024-06-14T06:00:00Z)")
}

test_old_project_through_a_proxy_passes if not _refused(_npm("2019-03-01T10:00:00Z", 1933, "proxied"))

test_boundary_exactly_min_project_days_passes if {
	not _refused(_npm("2024-05-16T12:00:00Z", 30, "proxied"))
	_refused(_npm("2024-05-16T12:00:01Z", 29, "proxied"))
}

test_young_project_in_a_hosted_repository_passes if {
	not _refused(_npm("2024-06-14T00:00:00Z", 1, "hosted"))
	not _refused(_npm(null, null, "hosted"))
}

test_a_repository_that_does_not_say_is_proxied if {
	inp := _input("pkg:pypi/reqeusts@2.31.0", "pypi", "2024-06-10T00:00:00Z", 5, {"name": "pypi-internal"})
	r := _reason(inp)
	some msg in r
	contains(msg, "came through pypi-internal, which is not marked hosting: hosted, so may pass a public registry's new names through")
	_refused(_npm("2024-06-10T00:00:00Z", 5, "Hosted"))
	_refused(_npm("2024-06-10T00:00:00Z", 5, null))
}

test_unknown_first_release_through_a_proxy_is_refused if {
	_reason(_npm(null, null, "proxied")) == {concat("", [
		"pkg:npm/left-padz@0.0.1 came through npm-proxy, which is not marked hosting: hosted, so may pass a public ",
		"registry's new names through, and nothing says when ",
		"the project was first released (PEP 503 HTML pages, and proxies that do not pass upload times on, do not): ",
		"its age cannot be checked. ", _review,
		", or mark the repository hosting: hosted if it serves only what you put there",
	])}
}

test_unreadable_first_release_is_unknown_not_old if {
	every bad in ["yesterday", "2024-02-30T00:00:00Z", "0001-01-01T00:00:00Z", 1718452800, {"x": 1}, ""] {
		some msg in _reason(_npm(bad, null, "proxied"))
		contains(msg, "the date given for the project's first release cannot be read: its age cannot be checked")
	}
}

test_every_unreadable_value_is_refused if {
	every bad in ["yesterday", "2024-02-30T00:00:00Z", "9999-12-31T23:59:59Z", 5, [], true] {
		_refused(_npm(bad, null, "proxied"))
	}
}

test_allow_unknown_first_release if {
	not cloudsmith.match with input as _npm(null, null, "proxied") with data.sbomgate.package_age.allow_unknown_first_release as true
	cloudsmith.match with input as _npm(null, null, "proxied") with data.sbomgate.package_age.allow_unknown_first_release as "yes"

	# a young project is refused all the same
	cloudsmith.match with input as _npm("2024-06-10T00:00:00Z", 5, "proxied") with data.sbomgate.package_age.allow_unknown_first_release as true
}

test_custom_min_project_days if {
	cloudsmith.match with input as _npm("2024-01-01T00:00:00Z", 166, "proxied") with data.sbomgate.package_age.min_project_days as 365
	not cloudsmith.match with input as _npm("2024-06-10T00:00:00Z", 5, "proxied") with data.sbomgate.package_age.min_project_days as 3
	cloudsmith.match with input as _npm("2024-06-10T00:00:00Z", 5, "proxied") with data.sbomgate.package_age.min_project_days as "3"
}

test_future_first_release_is_refused if {
	r := _reason(_npm("2024-07-01T00:00:00Z", -16, "proxied"))
	some msg in r
	startswith(msg, "pkg:npm/left-padz@0.0.1: the project's first release is dated in the future (2024-07-01T00:00:00Z) and it came through npm-proxy")
}

test_date_only_and_offsets if {
	_refused(_npm("2024-06-12", 3, "proxied"))
	not _refused(_npm("2020-06-12", 1464, "proxied"))
	_refused(_npm("2024-06-15T13:59:59.123456+02:00", 0, "proxied"))
}

test_did_you_mean if {
	inp := json.patch(_npm("2024-06-10T00:00:00Z", 5, "proxied"), [{"op": "replace", "path": "/v0/package/typosquat_of", "value": "left-pad"}])
	r := _reason(inp)
	some msg in r
	contains(msg, "a project this young may be a slopsquat (did you mean left-pad?). Review it")
}

test_only_pypi_and_npm if {
	maven := _input("pkg:maven/com.acme/lib@1.0", "maven", null, null, {"name": "maven-proxy", "hosting": "proxied"})
	not _refused(maven)
	go := _input("pkg:golang/example.com/mod@v1.0.0", "golang", "2024-06-14T00:00:00Z", 1, {"name": "goproxy"})
	not _refused(go)
	pypi := _input("pkg:pypi/foo@1.0", "pypi", null, null, {"name": "pypi-proxy", "hosting": "proxied"})
	_refused(pypi)
}

# Without a canonical identity, the type is the purl's (input.v0.identity.purl_type, which
# sbomgate gives), not read from the purl itself.
test_type_from_the_purl_type_without_canonical if {
	inp := json.patch(_npm(null, null, "proxied"), [{"op": "replace", "path": "/v0/identity", "value": {"purl_type": "npm", "canonical": null}}])
	_refused(inp)
	maven := json.patch(inp, [{"op": "replace", "path": "/v0/identity/purl_type", "value": "maven"}])
	not _refused(maven)
	no_type := json.patch(inp, [{"op": "replace", "path": "/v0/identity", "value": null}])
	not _refused(no_type)
}

test_unverified_and_image_subject_not_matched if {
	not _refused(json.patch(_npm(null, null, "proxied"), [{"op": "replace", "path": "/v0/repository", "value": null}]))
	not _refused(json.patch(_npm(null, null, "proxied"), [{"op": "replace", "path": "/v0/sbom", "value": {"bomFormat": "CycloneDX"}}, {"op": "add", "path": "/v0/image_subject", "value": true}]))
	not _refused(json.patch(_npm(null, null, "proxied"), [{"op": "remove", "path": "/v0/repository"}]))
	not _refused(json.patch(_npm(null, null, "proxied"), [{"op": "replace", "path": "/v0/repository", "value": "npm-proxy"}]))
}

test_repository_named_by_url_or_not_at_all if {
	by_url := json.patch(_npm(null, null, "proxied"), [{"op": "remove", "path": "/v0/repository/name"}])
	some a in _reason(by_url)
	contains(a, "came through https://npm.acme.example/, which is not marked hosting: hosted")
	bare := json.patch(_npm(null, null, "proxied"), [{"op": "replace", "path": "/v0/repository", "value": {"hosting": "proxied"}}])
	some b in _reason(bare)
	contains(b, "came through the trusted repository, which is not marked hosting: hosted")
}

test_null_and_missing_inputs if {
	not cloudsmith.match with input as {}
	not cloudsmith.match with input as {"v0": null}
	not cloudsmith.match with input as {"v0": {"package": null, "repository": null}}
	missing := {"v0": {"package": {"purl": "pkg:npm/x@1"}, "identity": {"purl_type": "npm"}, "repository": {"name": "r"}}}
	cloudsmith.match with input as missing
}

test_age_not_a_number_is_unknown if {
	some msg in _reason(_npm("2024-06-10T00:00:00Z", "5", "proxied"))
	contains(msg, "the date given for the project's first release cannot be read: its age cannot be checked")
}
