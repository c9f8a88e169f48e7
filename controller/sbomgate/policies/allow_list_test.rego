package cloudsmith_test

import rego.v1

import data.cloudsmith

# sbomgate matches data.sbomgate.allow in Python (controller/sbomgate/intel/lists.py,
# tests/test_lists.py) and hands the entries naming the package over as input.v0.lists.allow.

_pkg(purl, hits, osv) := {"v0": {
	"package": {"name": "requests", "version": "2.31.0", "format": "python", "purl": purl, "license": null},
	"lists": {"allow": hits, "blocklist": [], "quarantine": []},
	"osv": osv,
	"repository": null,
	"sbom": null,
}}

_requests(hits) := _pkg("pkg:pypi/requests@2.31.0", hits, null)

_hit(entry, version) := {"entry": entry, "version": version, "reason": null, "uncertain": null}

_mal := {"id": "MAL-2024-1", "summary": "Malicious code in requests"}

test_no_hits_never_match if {
	not cloudsmith.match with input as _requests([])
	count(cloudsmith.reason) == 0 with input as _requests([])
}

test_exact_version if {
	cloudsmith.match with input as _requests([_hit("python:requests:2.31.0", "2.31.0")])
}

test_every_version if {
	cloudsmith.match with input as _requests([_hit("python:requests", "*")])
}

test_reason if {
	r := cloudsmith.reason with input as _requests([_hit("python:requests:2.31.0", "2.31.0")])
	r == {"pkg:pypi/requests@2.31.0 is exempted by the allow list (entry python:requests:2.31.0): later policies are skipped"}
}

test_name_only_entry_does_not_exempt_malware if {
	not cloudsmith.match with input as _pkg("pkg:pypi/requests@2.31.0", [_hit("python:requests", "*")], [_mal])
	alias := {"id": "GHSA-x", "aliases": ["mal-2024-9"]}
	not cloudsmith.match with input as _pkg("pkg:pypi/requests@2.31.0", [_hit("python:requests:*", "*")], [alias])
}

test_pinned_entry_exempts_malware if {
	cloudsmith.match with input as _pkg("pkg:pypi/requests@2.31.0", [_hit("python:requests:2.31.0", "2.31.0")], [_mal])
}

test_name_only_entry_with_other_advisories if {
	cve := {"id": "GHSA-1", "aliases": ["CVE-2024-1"]}
	cloudsmith.match with input as _pkg("pkg:pypi/requests@2.31.0", [_hit("python:requests", "*")], [cve, null, "MAL-1"])
}

test_uncertain_hits_never_exempt if {
	hit := {"entry": "python:requests:2.31.0", "version": "2.31.0", "uncertain": "could not compare"}
	not cloudsmith.match with input as _requests([hit])
}

test_data_alone_does_not_match if {
	not cloudsmith.match with input as _requests([]) with data.sbomgate.allow as ["python:requests"]
}

test_malformed_hits_ignored if {
	not cloudsmith.match with input as _requests([1, null, "", {"entry": 5}, {"version": "*"}])
	not cloudsmith.match with input as {"v0": {"lists": {"allow": "python:requests"}}}
}

test_null_package_not_matched if {
	not cloudsmith.match with input as {"v0": {"package": null}}
	not cloudsmith.match with input as {}
	not cloudsmith.match with input as {"v0": {"lists": null}}
}

test_image_subject_can_be_exempted if {
	inp := {"v0": {
		"package": {"name": "app", "version": "1.0.0", "format": "docker", "purl": "pkg:docker/app@1.0.0"},
		"lists": {"allow": [_hit("docker:app:1.0.0", "1.0.0")]},
		"sbom": {"bomFormat": "CycloneDX", "components": []},
		"image_subject": true,
	}}
	cloudsmith.match with input as inp
}

_from(origin, repository) := {"v0": {
	"package": {"name": "requests", "version": "2.31.0", "format": "python", "purl": "pkg:pypi/requests@2.31.0?x", "license": null},
	"identity": {"canonical": {"origin": origin}},
	"lists": {"allow": [_hit("python:requests:2.31.0", "2.31.0")]},
	"osv": null,
	"repository": repository,
}}

test_a_package_from_another_index_is_not_exempted if {
	not cloudsmith.match with input as _from({"repository_url": "https://evil.example/simple"}, null)
	not cloudsmith.match with input as _from({"download_url": "https://evil.example/r.tgz"}, null)
}

test_a_vouched_for_origin_or_a_distro_is_exempted if {
	cloudsmith.match with input as _from({"download_url": "https://npm.acme.example/r.tgz"}, {"name": "npm-internal"})
	cloudsmith.match with input as _from({"distro": "debian-12"}, null)
	cloudsmith.match with input as _from({}, null)
}
