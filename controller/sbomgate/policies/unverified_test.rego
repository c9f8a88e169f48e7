package cloudsmith_test

import rego.v1

import data.cloudsmith

_pkg(purl, repo) := {"v0": {
	"package": {"name": "reqeusts", "version": "2.31.0", "format": "python", "purl": purl, "license": null},
	"identity": {"namespace": null, "name": "reqeusts", "version": "2.31.0", "format": "python", "purl_type": _type_of(purl)},
	"osv": null,
	"repository": repo,
	"sbom": null,
}}

_typo := _pkg("pkg:pypi/reqeusts@2.31.0", null)

# input.v0.identity.purl_type, as sbomgate gives it.
_type_of(purl) := t if {
	is_string(purl)
	startswith(purl, "pkg:")
	t := lower(split(trim_prefix(purl, "pkg:"), "/")[0])
} else := null

test_not_found_matches if {
	cloudsmith.match with input as _typo
}

_pkg_t(purl, repo, t) := {"v0": {
	"package": {"name": "reqeusts", "version": "2.31.0", "format": "python", "purl": purl, "license": null, "typosquat_of": t},
	"identity": {"namespace": null, "name": "reqeusts", "version": "2.31.0", "format": "python", "purl_type": _type_of(purl)},
	"osv": null,
	"repository": repo,
	"sbom": null,
}}

_with_typosquat(t) := _pkg_t("pkg:pypi/reqeusts@2.31.0", null, t)

test_reason_says_what_to_do if {
	r := cloudsmith.reason with input as _typo
	r == {"pkg:pypi/reqeusts@2.31.0 was not found in any trusted repository: add it to the trusted repository after review, or fix the dependency name"}
}

test_reason_typosquat_of_null_or_absent if {
	r := cloudsmith.reason with input as _with_typosquat(null)
	r == {"pkg:pypi/reqeusts@2.31.0 was not found in any trusted repository: add it to the trusted repository after review, or fix the dependency name"}
	r2 := cloudsmith.reason with input as _with_typosquat("")
	r2 == r
	r3 := cloudsmith.reason with input as _with_typosquat(7)
	r3 == r
}

test_reason_did_you_mean if {
	r := cloudsmith.reason with input as _with_typosquat("requests")
	r == {"pkg:pypi/reqeusts@2.31.0 was not found in any trusted repository: add it to the trusted repository after review, or fix the dependency name (did you mean requests? it may be a typosquat or a hallucinated/slopsquatted name)"}
	cloudsmith.match with input as _with_typosquat("requests")
}

test_typosquat_of_ignored_when_found if {
	inp := _pkg_t("pkg:pypi/requests@2.31.0", {"name": "pypi-trusted"}, "requests2")
	not cloudsmith.match with input as inp
}

test_typosquat_of_ignored_without_purl if {
	inp := _pkg_t(null, null, "requests")
	r := cloudsmith.reason with input as inp
	r == {"component reqeusts@2.31.0 has no package URL: it cannot be verified against a trusted repository (add a purl to the SBOM, or set sbomgate.unverified.allow_no_purl)"}
}

test_found_not_matched if {
	not cloudsmith.match with input as _pkg("pkg:pypi/requests@2.31.0", {"name": "pypi-trusted", "url": "http://127.0.0.1:8080/simple"})
}

test_missing_repository_key_not_matched if {
	inp := {"v0": {"package": {"name": "x", "purl": "pkg:pypi/x@1.0.0"}, "sbom": null}}
	not cloudsmith.match with input as inp
}

test_image_subject_not_matched if {
	inp := {"v0": {
		"package": {"name": "app", "version": "sha256:abc", "format": "docker", "purl": "pkg:oci/app@sha256%3Aabc"},
		"repository": null,
		"sbom": {"bomFormat": "CycloneDX", "specVersion": "1.5", "components": []},
		"image_subject": true,
	}}
	not cloudsmith.match with input as inp
}

# Only the flag sbomgate sets says "the image itself", and only as true.
test_image_subject_only_when_flagged_true if {
	subject := {"v0": {"package": {"name": "app", "purl": "pkg:oci/app@sha256%3Aabc"}, "repository": null, "image_subject": true}}
	not cloudsmith.match with input as subject
	cloudsmith.match with input as json.patch(subject, [{"op": "replace", "path": "/v0/image_subject", "value": "true"}])
	cloudsmith.match with input as json.patch(subject, [{"op": "replace", "path": "/v0/image_subject", "value": false}])
	cloudsmith.match with input as json.patch(subject, [{"op": "remove", "path": "/v0/image_subject"}])
}

test_sbom_missing_is_package if {
	inp := {"v0": {"package": {"name": "x", "purl": "pkg:npm/x@1.0.0"}, "repository": null}}
	cloudsmith.match with input as inp
}

test_no_purl_matches_fail_closed if {
	inp := _pkg(null, null)
	r := cloudsmith.reason with input as inp
	r == {"component reqeusts@2.31.0 has no package URL: it cannot be verified against a trusted repository (add a purl to the SBOM, or set sbomgate.unverified.allow_no_purl)"}
}

test_empty_purl_is_no_purl if {
	cloudsmith.match with input as _pkg("", null)
	cloudsmith.match with input as _pkg("  ", null)
}

test_no_purl_no_name if {
	r := cloudsmith.reason with input as {"v0": {"package": {"name": null, "purl": null}, "repository": null}}
	r == {"component unnamed component has no package URL: it cannot be verified against a trusted repository (add a purl to the SBOM, or set sbomgate.unverified.allow_no_purl)"}
}

test_allow_no_purl if {
	not cloudsmith.match with input as _pkg(null, null) with data.sbomgate.unverified.allow_no_purl as true
	cloudsmith.match with input as _typo with data.sbomgate.unverified.allow_no_purl as true
}

test_allow_no_purl_must_be_boolean if {
	cloudsmith.match with input as _pkg(null, null) with data.sbomgate.unverified.allow_no_purl as "true"
}

test_exempt_formats if {
	not cloudsmith.match with input as _typo with data.sbomgate.unverified.exempt_formats as ["deb", "python"]
	not cloudsmith.match with input as _typo with data.sbomgate.unverified.exempt_formats as ["PyPI"]
	cloudsmith.match with input as _typo with data.sbomgate.unverified.exempt_formats as ["npm"]
}

test_exempt_format_from_purl if {
	inp := {"v0": {"package": {"name": "libc6", "purl": "pkg:deb/debian/libc6@2.36"}, "identity": {"purl_type": "deb"}, "repository": null}}
	not cloudsmith.match with input as inp with data.sbomgate.unverified.exempt_formats as ["deb"]
	cloudsmith.match with input as inp
}

test_null_inputs_never_error if {
	not cloudsmith.match with input as {}
	not cloudsmith.match with input as {"v0": null}
	not cloudsmith.match with input as {"v0": {"package": null}}
	cloudsmith.match with input as _typo with data.sbomgate.unverified.exempt_formats as "python"
}

_unasked := {"v0": {
	"package": {"name": "requests", "version": "2.32.3", "format": "python", "purl": "pkg:pypi/requests@2.32.3", "license": null, "tags": [{"name": "trusted-source-unavailable"}]},
	"identity": {"namespace": null, "name": "requests", "version": "2.32.3", "format": "python"},
	"osv": null,
	"repository": null,
	"sbom": null,
}}

# A repository that could not be asked is a fault (sbomgate denies it as such), not "not found".
test_source_unavailable_is_not_unverified if {
	not cloudsmith.match with input as _unasked
}

test_reason_names_the_purls_origin if {
	inp := {"v0": {
		"package": {"name": "requests", "version": "2.31.0", "format": "python", "purl": "pkg:pypi/requests@2.31.0?repository_url=https://evil.example/simple"},
		"identity": {"purl_type": "pypi", "canonical": {"origin": {"repository_url": "https://evil.example/simple"}}},
		"repository": null,
		"sbom": null,
	}}
	r := cloudsmith.reason with input as inp
	r == {"pkg:pypi/requests@2.31.0?repository_url=https://evil.example/simple was not found in any trusted repository (its purl says it came from repository_url=https://evil.example/simple): add it to the trusted repository after review, or fix the dependency name"}
}

test_empty_or_bad_origin_is_not_named if {
	inp := {"v0": {
		"package": {"name": "reqeusts", "purl": "pkg:pypi/reqeusts@2.31.0"},
		"identity": {"purl_type": "pypi", "canonical": {"origin": {}}},
		"repository": null,
	}}
	r := cloudsmith.reason with input as inp
	r == {"pkg:pypi/reqeusts@2.31.0 was not found in any trusted repository: add it to the trusted repository after review, or fix the dependency name"}
	bad := {"v0": {
		"package": {"name": "reqeusts", "purl": "pkg:pypi/reqeusts@2.31.0"},
		"identity": {"purl_type": "pypi", "canonical": {"origin": {"a": 1}}},
		"repository": null,
	}}
	cloudsmith.reason == r with input as bad
}

# The purl's presence and type are read from input.v0.identity.purl_type (sbomgate's), so that
# `match` does not depend on the package's name; a purl without it is taken as no purl, which
# is still refused unless allow_no_purl is set.
test_a_purl_without_its_type_counts_as_none if {
	inp := {"v0": {"package": {"name": "reqeusts", "purl": "pkg:pypi/reqeusts@2.31.0"}, "repository": null}}
	cloudsmith.match with input as inp
	not cloudsmith.match with input as inp with data.sbomgate.unverified.allow_no_purl as true
}
