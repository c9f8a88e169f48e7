package cloudsmith_test

import rego.v1

import data.cloudsmith

_pkg(format, name, version, purl) := {"v0": {
	"package": {"name": name, "version": version, "format": format, "purl": purl, "license": null},
	"identity": {"namespace": null, "name": name, "version": version, "qualifiers": {}, "format": format},
	"osv": null,
	"repository": null,
	"sbom": null,
}}

_requests := _pkg("python", "requests", "2.31.0", "pkg:pypi/requests@2.31.0")

test_no_data_never_matches if {
	not cloudsmith.match with input as _requests
	count(cloudsmith.reason) == 0 with input as _requests
}

test_exact_version if {
	cloudsmith.match with input as _requests with data.sbomgate.allow as ["python:requests:2.31.0"]
}

test_other_version_not_matched if {
	not cloudsmith.match with input as _requests with data.sbomgate.allow as ["python:requests:2.30.0"]
}

test_all_versions_star if {
	cloudsmith.match with input as _requests with data.sbomgate.allow as ["python:requests:*"]
}

test_all_versions_no_version if {
	cloudsmith.match with input as _requests with data.sbomgate.allow as ["python:requests"]
}

test_purl_type_alias if {
	cloudsmith.match with input as _requests with data.sbomgate.allow as ["pypi:requests:2.31.0"]
}

test_python_name_normalised if {
	inp := _pkg("python", "Typing_Extensions", "4.0.0", "pkg:pypi/typing-extensions@4.0.0")
	cloudsmith.match with input as inp with data.sbomgate.allow as ["python:typing.extensions"]
}

test_other_format_not_matched if {
	not cloudsmith.match with input as _requests with data.sbomgate.allow as ["npm:requests"]
}

test_other_name_not_matched if {
	not cloudsmith.match with input as _requests with data.sbomgate.allow as ["python:request"]
}

test_format_from_purl_when_missing if {
	inp := {"v0": {"package": {"name": "left-pad", "version": "1.3.0", "purl": "pkg:npm/left-pad@1.3.0"}}}
	cloudsmith.match with input as inp with data.sbomgate.allow as ["npm:left-pad:1.3.0"]
}

test_namespaced_maven if {
	inp := {"v0": {
		"package": {"name": "log4j-core", "version": "2.14.1", "format": "maven", "purl": "pkg:maven/org.apache.logging.log4j/log4j-core@2.14.1"},
		"identity": {"namespace": "org.apache.logging.log4j", "name": "log4j-core", "version": "2.14.1", "format": "maven"},
	}}
	cloudsmith.match with input as inp with data.sbomgate.allow as ["maven:org.apache.logging.log4j:log4j-core:2.14.1"]
	cloudsmith.match with input as inp with data.sbomgate.allow as ["maven:org.apache.logging.log4j/log4j-core"]
	not cloudsmith.match with input as inp with data.sbomgate.allow as ["maven:org.apache.logging.log4j:log4j-core:2.17.1"]
}

test_scoped_npm if {
	inp := _pkg("npm", "@evil/pkg", "1.0.0", "pkg:npm/%40evil/pkg@1.0.0")
	cloudsmith.match with input as inp with data.sbomgate.allow as ["npm:@evil/pkg:*"]
}

test_reason if {
	r := cloudsmith.reason with input as _requests with data.sbomgate.allow as ["python:requests:2.31.0", "npm:x"]
	r == {"pkg:pypi/requests@2.31.0 is exempted by the allow list (entry python:requests:2.31.0): later policies are skipped"}
}

test_bad_entries_ignored if {
	not cloudsmith.match with input as _requests with data.sbomgate.allow as [1, null, "", "python", ":", {"a": 1}]
	not cloudsmith.match with input as _requests with data.sbomgate.allow as "python:requests"
}

test_null_package_not_matched if {
	not cloudsmith.match with input as {"v0": {"package": null}} with data.sbomgate.allow as ["python:requests"]
	not cloudsmith.match with input as {} with data.sbomgate.allow as ["python:requests"]
	not cloudsmith.match with input as {"v0": {"package": {"name": null, "version": null, "format": null, "purl": null}}} with data.sbomgate.allow as ["python:requests"]
}

test_blocklist_data_does_not_exempt if {
	not cloudsmith.match with input as _requests with data.sbomgate.blocklist as ["python:requests"]
}

test_image_subject_can_be_exempted if {
	inp := {"v0": {
		"package": {"name": "app", "version": "1.0.0", "format": "docker", "purl": "pkg:docker/app@1.0.0"},
		"sbom": {"bomFormat": "CycloneDX", "components": []},
	}}
	cloudsmith.match with input as inp with data.sbomgate.allow as ["docker:app:1.0.0"]
}
